"""``tinymlaas serve``: the LwM2M server, the REST API, the dashboard and the job workers in one process."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import typer

from tinymlaas.api.app import API_PREFIX
from tinymlaas.cli._shared import console, err_console, get_context, print_recovered
from tinymlaas.deploy.signing import PUBLIC_KEY_NAME, load_or_create_signing_key
from tinymlaas.errors import Conflict
from tinymlaas.server.fleet import FleetService
from tinymlaas.server.http import HttpServer
from tinymlaas.services.auth import ensure_first_admin
from tinymlaas.services.context import Context


def serve(
    ctx: typer.Context,
    coap_host: str | None = typer.Option(
        None, "--coap-host", help="Address to listen on for LwM2M devices (default 127.0.0.1)."
    ),
    coap_port: int | None = typer.Option(
        None, "--coap-port", min=0, max=65535, help="UDP port for LwM2M over CoAP (default 5683)."
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
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print one JSON line with the server URIs, key file and any new admin token once listening.",
    ),
) -> None:
    """Run the LwM2M server, the REST API, the dashboard and the job workers.

    Devices register over CoAP; people log in to the dashboard at / and clients call /api/v1 with a
    token. On the first start an admin API token is made and printed once; 'tokens create' makes more.
    Devices are set offline when the server stops: their registrations lived in this process.
    """
    context = get_context(ctx)
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
    coap = (
        settings.coap_host if coap_host is None else coap_host,
        settings.coap_port if coap_port is None else coap_port,
    )
    asyncio.run(_serve(context, coap, http, keys / PUBLIC_KEY_NAME, as_json))


async def _serve(
    context: Context, coap: tuple[str, int], http: HttpServer | None, public_key: Path, as_json: bool
) -> None:
    host, port = coap
    try:
        fleet = await FleetService.start(context, host, port)
    except OSError as exc:
        raise Conflict(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        admin_token = None
        if http is not None:
            print_recovered(await http.start())
            admin_token = ensure_first_admin(context)
        _announce(fleet.uri, public_key, http, admin_token, as_json)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if http is not None:
            await http.stop()
        await fleet.stop()
    err_console.print("stopped; registered devices are now offline", style="dim")


def _announce(
    coap_uri: str, public_key: Path, http: HttpServer | None, admin_token: str | None, as_json: bool
) -> None:
    if as_json:
        started = {
            "coap_uri": coap_uri,
            "public_key": str(public_key),
            "http_url": http.url if http else None,
            "admin_token": admin_token,
        }
        typer.echo(json.dumps(started))
    else:
        console.print(f"LwM2M server listening on {coap_uri}", highlight=False, soft_wrap=True)
        console.print(f"package signing public key: {public_key}", highlight=False, soft_wrap=True)
        if http is not None:
            console.print(f"dashboard on {http.url}/", highlight=False, soft_wrap=True)
            console.print(
                f"REST API on {http.url}{API_PREFIX} (docs at {http.url}/docs)",
                highlight=False,
                soft_wrap=True,
            )
        if admin_token is not None:
            console.print(
                f"first admin API token (shown once, keep it): {admin_token}", highlight=False, soft_wrap=True
            )
    err_console.print("press Ctrl-C to stop", style="dim")
