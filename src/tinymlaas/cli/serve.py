"""``tinymlaas serve``: the LwM2M server for a fleet of devices, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import typer

from tinymlaas.cli._shared import console, err_console, get_context
from tinymlaas.deploy.signing import PUBLIC_KEY_NAME, load_or_create_signing_key
from tinymlaas.errors import Conflict
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import FleetService


def serve(
    ctx: typer.Context,
    coap_host: str | None = typer.Option(
        None, "--coap-host", help="Address to listen on for LwM2M devices (default 127.0.0.1)."
    ),
    coap_port: int | None = typer.Option(
        None, "--coap-port", min=0, max=65535, help="UDP port for LwM2M over CoAP (default 5683)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON line with the server URI and key file once listening."
    ),
) -> None:
    """Run the LwM2M server: devices register, report what they can run, and appear in 'devices list'.

    Devices are set offline when the server stops: their registrations lived in this process.
    """
    context = get_context(ctx)
    host = context.settings.coap_host if coap_host is None else coap_host
    port = context.settings.coap_port if coap_port is None else coap_port
    # Created on first start, so agents can be provisioned with the key that will sign their packages.
    keys = context.settings.data_dir / "keys"
    load_or_create_signing_key(keys)
    asyncio.run(_serve(context, host, port, keys / PUBLIC_KEY_NAME, as_json))


async def _serve(context: Context, host: str, port: int, public_key: Path, as_json: bool) -> None:
    try:
        fleet = await FleetService.start(context, host, port)
    except OSError as exc:
        raise Conflict(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if as_json:
            typer.echo(json.dumps({"coap_uri": fleet.uri, "public_key": str(public_key)}))
        else:
            console.print(f"LwM2M server listening on {fleet.uri}", highlight=False, soft_wrap=True)
            console.print(f"package signing public key: {public_key}", highlight=False, soft_wrap=True)
        err_console.print("press Ctrl-C to stop", style="dim")
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await fleet.stop()
    err_console.print("stopped; registered devices are now offline", style="dim")
