"""Attack the device side of a running fleet server the way a stranger on the same network could.

One ``FleetService`` (DTLS-PSK on one port, no plain CoAP) over a fresh store with one provisioned
device, then, from this process over loopback:

1. fuzz: ``--datagrams`` random datagrams at the DTLS port, a quarter of them shaped like DTLS records
   (handshake and application-data headers with random epochs, sequence numbers and lengths), one at
   a time with the server's loop let through after each, so the server reads them rather than the
   kernel dropping them;
2. flood: ``--plain`` plain-CoAP Register requests for made-up endpoints at the DTLS port (what took
   over devices before), and ``--handshakes`` DTLS handshakes under unknown PSK identities;
3. impersonation: a handshake under the provisioned device's identity with a wrong key, and a second
   provisioned device registering under the first one's name.

After each step the provisioned device must still register (the server is alive and answers), and the
store must hold no device but it. Reported: datagrams sent, wall time, the server process's RSS
before and after (this process: server and attackers share it, so it is an upper bound), devices
stored, and what each impersonation got. Writes ``bench/results/device_attacks.json`` and a table.

    python bench/device_attacks.py [--datagrams 40000] [--plain 3000] [--handshakes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tinymlaas.lwm2m.core import DeviceCredentials
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse, PeerUnreachable
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices
from tinymlaas.services.provisioning import provision_device
from tinymlaas.settings import Settings

RESULTS = Path(__file__).parent / "results"
console = Console()


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def _refuse(request: CoapRequest) -> CoapResponse:
    return CoapResponse("4.03", b"")


async def _register(uri: str, credentials: DeviceCredentials, endpoint: str, timeout: float = 5.0) -> str:
    client = await CoapEndpoint.connect_secure(uri, credentials.identity, credentials.key, _refuse)
    try:
        answer = await client.request(
            "POST", f"{uri}/rd", b"</3/0>", query=(f"ep={endpoint}",), timeout=timeout
        )
        return answer.code
    except PeerUnreachable:
        return "no answer"
    finally:
        await client.close()


def _dtls_like(rng: random.Random) -> bytes:
    content = rng.choice([20, 21, 22, 23])
    epoch = rng.choice([0, 0, 1, rng.randrange(65536)])
    length = rng.randrange(0, 600)
    header = bytes([content, 0xFE, 0xFD]) + epoch.to_bytes(2, "big") + rng.randbytes(6)
    return header + length.to_bytes(2, "big") + rng.randbytes(rng.randrange(0, length + 1))


async def _fuzz(port: int, count: int, seed: int) -> float:
    rng = random.Random(seed)
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for index in range(count):
            data = _dtls_like(rng) if index % 4 == 0 else rng.randbytes(rng.randrange(1, 1400))
            while True:
                try:
                    sock.sendto(data, ("127.0.0.1", port))
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.001)
            await asyncio.sleep(0)  # the server, in this loop, reads what arrived
    return time.monotonic() - started


async def _plain_registers(port: int, count: int) -> float:
    started = time.monotonic()
    client = await CoapEndpoint.bind("127.0.0.1", 0)
    try:
        for start in range(0, count, 100):
            batch = [
                client.request(
                    "POST", f"coap://127.0.0.1:{port}/rd", b"</3/0>", query=(f"ep=fake-{n}",), timeout=0.5
                )
                for n in range(start, min(start + 100, count))
            ]
            await asyncio.gather(*batch, return_exceptions=True)
    finally:
        await client.close()
    return time.monotonic() - started


async def _unknown_handshakes(uri: str, count: int) -> float:
    started = time.monotonic()
    for start in range(0, count, 50):
        batch = [
            _register(uri, DeviceCredentials(f"ghost-{n}", uri, f"ghost-{n}", b"x" * 16), f"ghost-{n}", 1.0)
            for n in range(start, min(start + 50, count))
        ]
        await asyncio.gather(*batch)
    return time.monotonic() - started


async def _run(args: argparse.Namespace, store: Path) -> dict[str, Any]:
    context = Context(Settings(data_dir=store))
    fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
    own = provision_device(context, "pico-1", "pico", server_uri=fleet.uri)
    other = provision_device(context, "pico-2", "pico", server_uri=fleet.uri)
    steps: list[dict[str, Any]] = []

    async def check(step: str, seconds: float, sent: int) -> None:
        alive = await _register(fleet.uri, own, "pico-1")
        stored = sorted(device.endpoint for device in list_devices(context))
        steps.append(
            {"step": step, "sent": sent, "seconds": round(seconds, 1), "rss_mib": _rss_mib(),
             "device_registers_after": alive, "devices_stored": stored}
        )  # fmt: skip
        console.print(
            f"{step}: {sent} in {seconds:.1f} s; pico-1 then {alive}; stored {stored}", highlight=False
        )

    try:
        rss_before = _rss_mib()
        await check("baseline", 0.0, 0)
        await check("fuzz datagrams", await _fuzz(fleet.port, args.datagrams, args.seed), args.datagrams)
        await check("plain-CoAP registers", await _plain_registers(fleet.port, args.plain), args.plain)
        await check(
            "unknown-identity handshakes",
            await _unknown_handshakes(fleet.uri, args.handshakes),
            args.handshakes,
        )
        forged = DeviceCredentials("pico-1", fleet.uri, "pico-1", b"y" * 16)
        impersonation = {
            "right name, wrong key": await _register(fleet.uri, forged, "pico-1", 2.0),
            "another device's key and name": await _register(fleet.uri, other, "pico-1"),
        }
        await check("impersonations", 0.0, 2)
    finally:
        await fleet.stop()
    return {"rss_before_mib": rss_before, "steps": steps, "impersonation": impersonation}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datagrams", type=int, default=40_000)
    parser.add_argument("--plain", type=int, default=3_000)
    parser.add_argument("--handshakes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "device_attacks.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinymlaas-attacks-") as tmp:
        results = asyncio.run(_run(args, Path(tmp)))
    results["host_cpus"] = os.cpu_count()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    table = Table(title="Attacks on the device side (one process: server and attackers)")
    for column in ("step", "sent", "seconds", "RSS MiB", "pico-1 registers after", "devices stored"):
        table.add_column(column)
    for step in results["steps"]:
        table.add_row(
            step["step"], str(step["sent"]), str(step["seconds"]), str(step["rss_mib"]),
            step["device_registers_after"], ", ".join(step["devices_stored"]) or "none",
        )  # fmt: skip
    console.print(table)
    for attempt, code in results["impersonation"].items():
        console.print(f"impersonation, {attempt}: {code}", highlight=False)


if __name__ == "__main__":
    main()
