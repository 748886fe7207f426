"""libcoap's command-line client as an independent CoAP peer: registration and block-wise downloads
from our server, and reads, Discover and a Write on our device agent.

``coap-client-notls`` exits 0 even on error codes, so every check reads its output or the server's state.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from pathlib import Path

from tinymlaas.agent import Agent
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy import SigningKey
from tinymlaas.lwm2m.server import Lwm2mServer

from .helpers import run

# libcoap is the independent peer these tests exist for; `make setup` installs it (Debian libcoap3-bin),
# so a missing client fails the tests with this name rather than skipping them.
CLIENT = shutil.which("coap-client-notls") or "coap-client-notls (run make setup: Debian libcoap3-bin)"

PACKAGE = bytes((index * 7 + 3) % 256 for index in range(64 * 1024))


async def coap_client(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        CLIENT, "-B", "5", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, output
    return output.decode(errors="replace")


def test_libcoap_registers_and_deregisters() -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0)
        try:
            output = await coap_client(
                "-m", "post", "-t", "40", "-e", "</1/0>,</3/0>", "-v", "6",
                f"coap://127.0.0.1:{server.port}/rd?ep=libcoap-dev&lt=60&lwm2m=1.1",
            )  # fmt: skip
            assert "2.01" in output
            registration = server.store.get_by_endpoint("libcoap-dev")
            assert registration is not None
            assert f"Location-Path:{registration.registration_id}" in output
            assert [str(path) for path in registration.objects] == ["/1/0", "/3/0"]
            assert registration.lwm2m_version == "1.1"

            uri = f"coap://127.0.0.1:{server.port}/rd/{registration.registration_id}"
            assert "4.04" not in await coap_client("-m", "delete", uri)
            assert server.store.get_by_endpoint("libcoap-dev") is None
            assert "4.04" in await coap_client("-m", "delete", uri)

            bad = await coap_client("-m", "post", f"coap://127.0.0.1:{server.port}/rd?lt=60")
            assert "4.00" in bad and "'ep'" in bad
        finally:
            await server.stop()

    run(scenario)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_libcoap_downloads_a_package_published_for_it_block_wise(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0)
        try:
            # Over NoSec the package goes to the address its endpoint registered from, so the client
            # registers and downloads from one fixed local port.
            port = str(_free_udp_port())
            registered = await coap_client(
                "-p", port, "-m", "post", "-e", "</3/0>", "-v", "6",
                f"coap://127.0.0.1:{server.port}/rd?ep=libcoap-dev&lt=60&lwm2m=1.1",
            )  # fmt: skip
            assert "2.01" in registered
            path = server.publish("pkg-1.0", PACKAGE, endpoints=["libcoap-dev"])
            assert path == "/pkg/pkg-1.0"
            target = tmp_path / "package.bin"
            output = await coap_client(
                "-p", port, "-v", "6", "-o", str(target), f"coap://127.0.0.1:{server.port}{path}"
            )
            assert "Block2" in output
            assert target.read_bytes() == PACKAGE

            stranger = await coap_client(f"coap://127.0.0.1:{server.port}{path}")
            assert "4.03" in stranger and "served only to the devices it was published for" in stranger

            server.unpublish("pkg-1.0")
            gone = await coap_client("-p", port, f"coap://127.0.0.1:{server.port}{path}")
            assert "4.04" in gone
        finally:
            await server.stop()

    run(scenario)


def _senml_json(text: str) -> dict[str, object]:
    """SenML JSON records (RFC 8428) resolved to full names: base name plus name, and the value."""
    values: dict[str, object] = {}
    base = ""
    for record in json.loads(text):
        base = record.get("bn", base)
        value = next(record[label] for label in ("v", "vs", "vb", "vd", "vlo") if label in record)
        values[base + record.get("n", "")] = value
    return values


def test_libcoap_reads_discovers_and_writes_on_our_agent(tmp_path: Path) -> None:
    """libcoap stands in for the agent's LwM2M server: it sends from the port the agent was told the
    server has, as the agent answers nobody else (a stranger's port is checked below)."""
    board = load_catalog().board("nano33ble")
    server_port = str(_free_udp_port())

    async def scenario() -> None:
        agent = await Agent.start(
            board,
            "agent-under-libcoap",
            f"coap://127.0.0.1:{server_port}",
            tmp_path / "state",
            SigningKey.generate().public_key_bytes(),
            request_timeout=0.5,
        )
        try:
            assert agent.uri.startswith("coap://127.0.0.1:")

            async def get(path: str, *options: str) -> tuple[str, str]:
                """The client's output and the payload it received."""
                target = tmp_path / "payload"
                target.unlink(missing_ok=True)
                output = await coap_client("-p", server_port, *options, "-o", str(target), agent.uri + path)
                return output, target.read_text() if target.exists() else ""

            stranger = await coap_client("-o", str(tmp_path / "stranger"), agent.uri + "/3/0/0")
            assert "4.03" in stranger, stranger

            assert (await get("/3/0/0"))[1] == "TinyMLaaS emulator"
            assert (await get("/3/0/1", "-A", "0"))[1] == board.id
            assert (await get("/3/0/2"))[1] == "agent-under-libcoap"
            assert (await get("/26241/0/3", "-A", "0"))[1] == str(board.usable_ram_bytes)

            # The whole runtime instance, every supported operator included: more than one block.
            output, payload = await get("/26241/0", "-A", "110", "-v", "6")
            assert "Block2" in output and len(payload) > 1024
            runtime = _senml_json(payload)
            assert runtime["/26241/0/0"] == "tflm"
            assert runtime["/26241/0/3"] == board.usable_ram_bytes
            assert runtime["/26241/0/4"] == board.usable_flash_bytes
            assert runtime["/26241/0/6"] == board.id
            ops = {value for name, value in runtime.items() if name.startswith("/26241/0/2/")}
            assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= ops

            # Discover: GET with Accept application/link-format.
            links = (await get("/3/0", "-A", "40"))[1].split(",")
            assert links[0] == "</3/0>"
            assert {"</3/0/0>", "</3/0/1>", "</3/0/2>", "</3/0/4>", "</3/0/11>;dim=1"} <= set(links)

            # A Write of the inference rate in plain text, read back.
            output = await coap_client(
                "-p", server_port, "-m", "put", "-t", "0", "-e", "2.5", agent.uri + "/26241/0/15"
            )
            assert "4." not in output and "5." not in output, output
            assert (await get("/26241/0/15"))[1] == "2.5"

            # An object the agent does not serve, and a resource its object does not define.
            assert "4.04" in (await get("/5/0"))[0]
            assert "4.04" in (await get("/3/0/999"))[0]
        finally:
            await agent.stop(deregister=False)

    run(scenario)
