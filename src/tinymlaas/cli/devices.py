"""``tinymlaas devices list|show|tag|health|ack|provision|revoke|credentials``: devices and their keys.

What devices reported is readable with no server running; provisioning writes the store the server reads.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, fmt_bytes, get_context, print_json
from tinymlaas.lwm2m.core import CREDENTIALS_FILE
from tinymlaas.services.audit import CLI_ACTOR, NO_ROLE, record
from tinymlaas.services.fleet import DeviceView, list_devices_page, show_device, tag_device
from tinymlaas.services.fleet_health import FleetAlert, acknowledge_alert, fleet_health
from tinymlaas.services.provisioning import provision_device, provisioned_page, revoke_device

app = typer.Typer(help="Devices: what each one reported, and what happened to it.", no_args_is_help=True)


def _when(moment: str | None) -> str:
    return "—" if moment is None else moment[:19].replace("T", " ")


def _last_result(device: DeviceView) -> str:
    result = device.last_result or "—"
    reason = device.installed.get("status_reason")
    return f"{result}: {reason}" if reason else result


def _inference(device: DeviceView) -> str:
    telemetry = device.telemetry
    if "inference_count" not in telemetry:
        return "—"
    mean = telemetry.get("mean_latency_ms")
    return f"{telemetry['inference_count']}" + (f" @ {mean:.2f} ms" if isinstance(mean, float) else "")


def devices_table(devices: list[DeviceView], title: str = "Devices", *, presence: bool = True) -> Table:
    """One row per device, every cell as the device reported it over LwM2M.

    ``presence`` adds the online flag and the last-seen time; the demo leaves them out, its devices
    being online while it prints.
    """
    table = Table(title=title)
    columns = ["endpoint", "board", "runtime", "model", "last result", "inferences"]
    if presence:
        columns[2:2] = ["online"]
        columns.append("last seen (UTC)")
    for column in columns:
        table.add_column(column, overflow="fold")
    for device in devices:
        cells = [
            device.endpoint,
            device.board or "—",
            device.capabilities.get("runtime") or "—",
            device.model or "—",
            _last_result(device),
            _inference(device),
        ]
        if presence:
            cells[2:2] = ["[green]yes[/]" if device.online else "[dim]no[/]"]
            cells.append(_when(device.last_seen))
        table.add_row(*cells)
    return table


@app.command("list")
def list_(
    ctx: typer.Context,
    tag: str | None = typer.Option(None, help="Only devices carrying this tag."),
    limit: int | None = typer.Option(None, min=1, help="At most this many devices (default: all)."),
    offset: int = typer.Option(0, min=0, help="Skip this many devices first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List known devices by endpoint name, online or not."""
    devices, count = list_devices_page(get_context(ctx), tag=tag, limit=limit, offset=offset)
    if as_json:
        print_json(devices)
        return
    shown = "" if len(devices) == count else f" ({len(devices)} of {count} from {offset + 1})"
    console.print(devices_table(devices, title=f"Devices{shown}"))


@app.command("show")
def show(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="Device endpoint name, see 'devices list'."),
    events: int = typer.Option(20, min=1, help="How many recent events to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one device: what it reported (capabilities, installed package, telemetry) and recent events."""
    device = show_device(get_context(ctx), endpoint, events)
    if as_json:
        print_json(device)
        return
    table = Table(title=device.endpoint, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    capabilities = device.capabilities
    rows = {
        "board": device.board or "—",
        "online": "yes" if device.online else "no",
        "address": device.address or "—",
        "registered": _when(device.registered_at),
        "last seen": _when(device.last_seen),
        "runtime": " ".join(str(capabilities[k]) for k in ("runtime", "runtime_version") if k in capabilities)
        or "—",
        "arena RAM": fmt_bytes(capabilities.get("arena_bytes_available")),
        "slot flash": fmt_bytes(capabilities.get("slot_flash_bytes")),
        "ops": ", ".join(capabilities.get("ops", [])) or "—",
        "model": device.model or "—",
        "last result": _last_result(device),
        "telemetry": ", ".join(f"{k}={v}" for k, v in device.telemetry.items()) or "—",
        "tags": ", ".join(device.tags) or "—",
    }
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)
    history = Table(title="Recent events")
    for column in ("at (UTC)", "kind", "detail"):
        history.add_column(column)
    for event in device.events:
        detail = ", ".join(f"{k}={v}" for k, v in event["detail"].items())
        history.add_row(_when(event["at"]), event["kind"], detail)
    console.print(history)


@app.command("tag")
def tag(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="Device endpoint name."),
    tags: list[str] = typer.Argument(None, help="The device's new tags (none clears them)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Replace a device's tags, the labels devices are grouped by (e.g. rollout waves)."""
    device = tag_device(get_context(ctx), endpoint, tags or [])
    if as_json:
        print_json(device)
        return
    console.print(f"{device['endpoint']}: {', '.join(device['tags']) or 'no tags'}", highlight=False)


@app.command("health")
def health(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the fleet's health: presence, alerts, silent devices and inferences in the last hour."""
    report = fleet_health(get_context(ctx))
    if as_json:
        print_json(report)
        return
    inferences = sum(point.inferences for point in report.activity)
    console.print(
        f"{report.devices} devices: {report.online} online, {report.offline} offline, "
        f"{report.silent_count} silent; {inferences} inferences since {_when(report.since)} UTC",
        highlight=False,
    )
    title = "Alerts"
    if report.alerts_total > len(report.alerts):
        title = f"Alerts: {len(report.alerts)} of {report.alerts_total} listed"
    console.print(_alerts_table(title, report.alerts) if report.alerts else "no alerts")
    if report.resolved:
        console.print(_alerts_table("Resolved in the last 7 days", report.resolved))


def _alerts_table(title: str, alerts: list[FleetAlert]) -> Table:
    table = Table(title=title)
    columns = ("id", "kind", "device", "campaign", "detail", "at (UTC)", "resolved (UTC)", "acknowledged")
    for column in columns:
        table.add_column(column)
    for alert in alerts:
        table.add_row(
            alert.id,
            f"[yellow]{alert.kind}[/]" if alert.active else alert.kind,
            alert.endpoint,
            alert.campaign or "—",
            alert.detail or "—",
            _when(alert.at),
            f"{_when(alert.resolved_at)}: {alert.resolution}" if not alert.active else "—",
            f"{alert.acknowledged_by} at {_when(alert.acknowledged_at)}" if alert.acknowledged_by else "—",
        )
    return table


@app.command("ack")
def ack(
    ctx: typer.Context,
    alert_id: str = typer.Argument(..., help="The alert's id, as 'devices health' lists it."),
    by: str = typer.Option(
        "", "--by", help="Who takes the alert on (default: the user running this command)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Acknowledge an alert: record who has taken it on. It stays active until its condition ends."""
    context = get_context(ctx)
    actor = f"{CLI_ACTOR} {by or getpass.getuser()}"
    alert = acknowledge_alert(context, alert_id, actor)
    record(
        context,
        actor=actor,
        role=NO_ROLE,
        action="cli:devices ack",
        target=alert.id,
        detail={"kind": alert.kind, "endpoint": alert.endpoint, "outcome": "ok"},
    )
    if as_json:
        print_json(alert)
        return
    console.print(
        f"{alert.id} ({alert.kind}, {alert.endpoint}) acknowledged by {alert.acknowledged_by}",
        highlight=False,
    )


@app.command("provision")
def provision(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="The device's LwM2M endpoint name."),
    board: str = typer.Option(..., "--board", help="Board id the device is, see 'boards list'."),
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        help="Write the credentials here, for 'tinymlaas agent --state-dir' on this machine.",
    ),
    server: str | None = typer.Option(
        None, "--server", help="The coaps:// URI the device reaches the server at (default: this host's)."
    ),
    rotate: bool = typer.Option(False, "--rotate", help="Replace the key of a device provisioned before."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the key included)."),
) -> None:
    """Make a device's DTLS key: the server then takes this endpoint name from that key only.

    The key is shown once (or only written to --state-dir); keep it on the device.
    """
    made = provision_device(
        get_context(ctx), endpoint, board, server_uri=server, state_dir=state_dir, rotate=rotate
    )
    if as_json:
        print_json(
            {
                "endpoint": made.endpoint,
                "server_uri": made.server_uri,
                "psk_identity": made.identity,
                "psk_key": made.key.decode(),
                "written_to": str(state_dir / CREDENTIALS_FILE) if state_dir else None,
            }
        )
        return
    console.print(f"{made.endpoint} provisioned for {made.server_uri}", highlight=False, soft_wrap=True)
    if state_dir is not None:
        console.print(f"credentials written to {state_dir / CREDENTIALS_FILE} (0600)", highlight=False)
        return
    console.print(f"PSK identity: {made.identity}", highlight=False)
    console.print(f"PSK key (shown once, keep it on the device): {made.key.decode()}", highlight=False)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="The device's LwM2M endpoint name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """End a device's access: its key opens no new DTLS session and its registrations are refused."""
    revoked = revoke_device(get_context(ctx), endpoint)
    if as_json:
        print_json(revoked)
        return
    console.print(f"{revoked.endpoint}: key revoked", highlight=False)


@app.command("credentials")
def credentials(
    ctx: typer.Context,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Show at most this many."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List provisioned devices (never their keys)."""
    items, count = provisioned_page(get_context(ctx), limit=limit, offset=offset)
    if as_json:
        print_json({"items": items, "count": count})
        return
    table = Table(title=f"Provisioned devices ({len(items)} of {count})")
    for column in ("endpoint", "board", "PSK identity", "provisioned (UTC)", "state"):
        table.add_column(column)
    for item in items:
        state = "active" if item.active else f"revoked {_when(item.revoked_at.isoformat())}"
        table.add_row(
            item.endpoint, item.board or "—", item.identity, _when(item.created_at.isoformat()), state
        )
    console.print(table)
