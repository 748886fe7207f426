"""libcoap's command-line client as an independent CoAP peer: registration and block-wise downloads.

``coap-client-notls`` exits 0 even on error codes, so every check reads its output or the server's state.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tinymlaas.lwm2m.server import Lwm2mServer

from .helpers import run

CLIENT = shutil.which("coap-client-notls")
pytestmark = pytest.mark.skipif(CLIENT is None, reason="libcoap3-bin (coap-client-notls) is not installed")

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


def test_libcoap_downloads_a_published_package_block_wise(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0)
        try:
            path = server.publish("pkg-1.0", PACKAGE)
            assert path == "/pkg/pkg-1.0"
            target = tmp_path / "package.bin"
            output = await coap_client("-v", "6", "-o", str(target), f"coap://127.0.0.1:{server.port}{path}")
            assert "Block2" in output
            assert target.read_bytes() == PACKAGE

            server.unpublish("pkg-1.0")
            gone = await coap_client(f"coap://127.0.0.1:{server.port}{path}")
            assert "4.04" in gone
        finally:
            await server.stop()

    run(scenario)
