"""``tinymlaas serve``: the LwM2M server, the REST API, the dashboard and the job workers in one process."""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import typer

from tinymlaas import heap
from tinymlaas.api.app import API_PREFIX
from tinymlaas.cli._shared import console, err_console, get_context, print_recovered
from tinymlaas.deploy.signing import PUBLIC_KEY_NAME, load_or_create_signing_key
from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.server.fleet import FleetService
from tinymlaas.server.http import HttpServer
from tinymlaas.services.auth import ensure_first_admin
from tinymlaas.services.context import Context


class ExecutorKind(StrEnum):
    """What runs background jobs (``Settings.executor``)."""

    LOCAL = "local"
    RAY = "ray"


def serve(
    ctx: typer.Context,
    coap_host: str | None = typer.Option(
        None, "--coap-host", help="Address to listen on for LwM2M devices (default 127.0.0.1)."
    ),
    coaps_port: int | None = typer.Option(
        None, "--coaps-port", min=0, max=65535, help="UDP port for LwM2M over DTLS (default 5684)."
    ),
    coap_port: int | None = typer.Option(
        None,
        "--coap-port",
        min=0,
        max=65535,
        help="UDP port for plain CoAP, opened only with TINYMLAAS_ALLOW_NOSEC=1 (default 5683).",
    ),
    http_host: str | None = typer.Option(
        None, "--http-host", help="Address to serve the REST API on (default 127.0.0.1)."
    ),
    http_port: int | None = typer.Option(
        None, "--http-port", min=0, max=65535, help="TCP port for the REST API (default 8000; 0 picks one)."
    ),
    no_http: bool = typer.Option(
        False, "--no-http", help="Serve LwM2M only: no REST API, dashboard or background jobs."
    ),
    executor: ExecutorKind | None = typer.Option(
        None,
        "--executor",
        help="What runs background jobs: local worker processes or Ray tasks (default local; "
        "TINYMLAAS_EXECUTOR).",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        metavar="ADDR",
        help="The Ray cluster for --executor ray: auto, ray://host:10001 or host:6379; empty starts Ray "
        "on this machine (TINYMLAAS_RAY_ADDRESS).",
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print one JSON line with the server URIs, key file and any new admin token once listening.",
    ),
) -> None:
    """Run the LwM2M server, the REST API, the dashboard and the job workers.

    Devices register over DTLS with the key 'devices provision' made them; people log in to the
    dashboard at / and clients call /api/v1 with a token. On the first start an admin API token is
    made and printed once; 'tokens create' makes more.
    Devices are set offline when the server stops: their registrations lived in this process.
    """
    context = _with_executor(get_context(ctx), executor, ray_address)
    settings = context.settings
    # Created on first start, so agents can be provisioned with the key that will sign their packages.
    keys = settings.keys_dir
    load_or_create_signing_key(keys)
    http = None
    if not no_http:
        http = HttpServer(
            context,
            settings.http_host if http_host is None else http_host,
            settings.http_port if http_port is None else http_port,
        )
    coap = Listen(
        settings.coap_host if coap_host is None else coap_host,
        settings.coaps_port if coaps_port is None else coaps_port,
        (settings.coap_port if coap_port is None else coap_port) if settings.allow_nosec else None,
    )
    asyncio.run(_serve(context, coap, http, keys / PUBLIC_KEY_NAME, as_json))


def _with_executor(context: Context, executor: ExecutorKind | None, ray_address: str | None) -> Context:
    """The context whose settings the executor flags changed: the executor reads them, not the flags."""
    overrides: dict[str, str] = {}
    if executor is not None:
        overrides["executor"] = executor.value
    if ray_address is not None:
        overrides["ray_address"] = ray_address.strip()
    if not overrides:
        return context
    settings = context.settings.model_copy(update=overrides)
    if ray_address is not None and settings.executor != ExecutorKind.RAY:
        raise InvalidInput("--ray-address is for Ray: add --executor ray (or set TINYMLAAS_EXECUTOR=ray)")
    return Context(settings)


@dataclass(frozen=True)
class Listen:
    """Where the LwM2M server listens: DTLS always, plain CoAP only in development."""

    host: str
    port: int
    nosec_port: int | None


async def _serve(
    context: Context, coap: Listen, http: HttpServer | None, public_key: Path, as_json: bool
) -> None:
    try:
        fleet = await FleetService.start(context, coap.host, coap.port, nosec_port=coap.nosec_port)
    except OSError as exc:
        ports = f"{coap.port}" + (f" and {coap.nosec_port}" if coap.nosec_port is not None else "")
        raise Conflict(
            f"cannot listen on {coap.host} UDP {ports}: {exc.strerror or exc} "
            "(another server there? choose others with --coaps-port / --coap-port)"
        ) from exc
    if fleet.nosec_uri is not None:
        err_console.print(
            f"WARNING: plain CoAP (NoSec) is open on {fleet.nosec_uri}: any device there can claim any "
            "name that was never provisioned. A development setting: unset TINYMLAAS_ALLOW_NOSEC in the "
            "field.",
            style="bold yellow",
            soft_wrap=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        admin_token = None
        if http is not None:
            print_recovered(await http.start(fleet.link))
            admin_token = ensure_first_admin(context)
        _announce(
            fleet.uri,
            fleet.nosec_uri,
            fleet.server_id,
            context.settings.campaign_lease_s,
            public_key,
            http,
            admin_token,
            as_json,
        )
        heap.settle()
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if http is not None:
            await http.stop()
        await fleet.stop()
    err_console.print("stopped; registered devices are now offline", style="dim")


def _announce(
    coap_uri: str,
    nosec_uri: str | None,
    server_id: str,
    lease_s: float,
    public_key: Path,
    http: HttpServer | None,
    admin_token: str | None,
    as_json: bool,
) -> None:
    if as_json:
        started = {
            "coap_uri": coap_uri,
            "nosec_uri": nosec_uri,
            "server_id": server_id,
            "public_key": str(public_key),
            "http_url": http.url if http else None,
            "admin_token": admin_token,
        }
        typer.echo(json.dumps(started))
    else:
        console.print(f"LwM2M server listening on {coap_uri} as {server_id}", highlight=False, soft_wrap=True)
        console.print(f"package signing public key: {public_key}", highlight=False, soft_wrap=True)
        if http is not None:
            console.print(f"dashboard on {http.url}/", highlight=False, soft_wrap=True)
            console.print(
                f"REST API on {http.url}{API_PREFIX} (docs at {http.url}/docs)",
                highlight=False,
                soft_wrap=True,
            )
        if http is not None:
            console.print(f"background jobs run as {http.jobs_run_as}", highlight=False, soft_wrap=True)
        if admin_token is not None:
            console.print(
                f"first admin API token (shown once, keep it): {admin_token}", highlight=False, soft_wrap=True
            )
    if as_json and http is not None:
        err_console.print(f"background jobs run as {http.jobs_run_as}", style="dim", soft_wrap=True)
    err_console.print(
        f"campaigns and pipelines are driven by whichever server on this store holds the campaign lease; "
        f"another takes it over {lease_s:g} s after its holder stops",
        style="dim",
        soft_wrap=True,
    )
    err_console.print("press Ctrl-C to stop", style="dim")
