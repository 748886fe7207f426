"""A published package goes only to the endpoints it was published for; anyone else gets 4.03."""

from __future__ import annotations

import pytest

from tinymlaas.errors import Forbidden, InvalidInput
from tinymlaas.lwm2m.core import ContentFormat
from tinymlaas.lwm2m.server import Lwm2mServer
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest

from .helpers import run

PACKAGE = bytes(index % 251 for index in range(5000))  # several blocks


async def _registered(server: Lwm2mServer, endpoint: str) -> CoapEndpoint:
    """A device's CoAP endpoint, registered as ``endpoint`` from its own address."""
    device = await CoapEndpoint.bind("127.0.0.1", 0)
    response = await device.request(
        "POST",
        f"{server.uri}/rd",
        b"</3/0>,</9/0>",
        content_format=ContentFormat.LINK_FORMAT,
        query=(f"ep={endpoint}", "lt=60", "lwm2m=1.1"),
        timeout=5,
    )
    assert response.code == "2.01", response
    return device


def test_only_a_device_the_package_was_published_for_downloads_it() -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0)
        target = await _registered(server, "dev-target")
        other = await _registered(server, "dev-other")
        stranger = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            uri = server.uri + server.publish("campaign-1.mod", PACKAGE, endpoints=["dev-target", "dev-away"])
            fetched = await target.request("GET", uri, timeout=5)
            assert (fetched.code, fetched.payload) == ("2.05", PACKAGE)

            for outsider in (other, stranger):  # registered for something else, or not at all
                refused = await outsider.request("GET", uri, timeout=5)
                assert refused.code == "4.03"
                assert refused.diagnostic.startswith(
                    "package 'campaign-1.mod' is served only to the devices it was published for, and no "
                    "such device is registered from coap://127.0.0.1:"
                )
                assert "dev-target" not in refused.diagnostic  # a stranger learns no endpoint names

            # Re-registering from another address moves the right to download with the registration.
            moved = await _registered(server, "dev-target")
            assert (await moved.request("GET", uri, timeout=5)).code == "2.05"
            assert (await target.request("GET", uri, timeout=5)).code == "4.03"
            await moved.close()

            server.unpublish("campaign-1.mod")
            gone = await target.request("GET", uri, timeout=5)
            assert (gone.code, gone.diagnostic) == ("4.04", "package 'campaign-1.mod' is not published")
        finally:
            for endpoint in (target, other, stranger):
                await endpoint.close()
            await server.stop()

    run(scenario)


def test_over_dtls_the_authenticated_endpoint_decides_not_the_address() -> None:
    """A request as the DTLS layer hands it over: ``peer`` is the endpoint its PSK identity is bound to."""

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0)
        try:
            path = server.publish("secure.mod", PACKAGE, endpoints=["dev-target"])
            token_path = tuple(path.strip("/").split("/"))
            own = CoapRequest("GET", token_path, remote="coaps://127.0.0.1:40001", peer="dev-target")
            assert (await server._handle(own)).payload == PACKAGE
            # An authenticated device of another campaign is refused even from an address nobody holds.
            with pytest.raises(Forbidden, match="not published for endpoint 'dev-other'"):
                await server._handle(
                    CoapRequest("GET", token_path, remote="coaps://127.0.0.1:40002", peer="dev-other")
                )
        finally:
            await server.stop()

    run(scenario)


def test_a_package_is_published_for_at_least_one_endpoint() -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0)
        try:
            with pytest.raises(InvalidInput, match="published for no endpoint"):
                server.publish("nobody.mod", PACKAGE, endpoints=[])
        finally:
            await server.stop()

    run(scenario)
