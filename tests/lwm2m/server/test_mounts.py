"""Resources mounted on the LwM2M server's endpoint by the layers that own them."""

from __future__ import annotations

import pytest

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.server import Lwm2mServer
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse

from .helpers import run


def test_a_mounted_handler_serves_its_root_and_errors_keep_their_code() -> None:
    seen: list[CoapRequest] = []

    async def echo(request: CoapRequest) -> CoapResponse:
        seen.append(request)
        if request.path[-1] == "bad":
            raise InvalidInput("nothing good here")
        return CoapResponse("2.01", b"%d" % len(request.payload))

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, resources={"dc": echo})
        client = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            created = await client.request("POST", f"{server.uri}/dc/field", b"x" * 3000, timeout=5)
            assert (created.code, created.payload) == ("2.01", b"3000")  # reassembled from Block1 blocks
            refused = await client.request("POST", f"{server.uri}/dc/bad", timeout=5)
            assert (refused.code, refused.diagnostic) == ("4.00", "nothing good here")
            elsewhere = await client.request("POST", f"{server.uri}/other", timeout=5)
            assert elsewhere.code == "4.04"
            assert [request.path for request in seen] == [("dc", "field"), ("dc", "bad")]
            for root in ("rd", "pkg", "a/b", ""):
                with pytest.raises(InvalidInput, match="cannot mount"):
                    server.mount(root, echo)
        finally:
            await client.close()
            await server.stop()

    run(scenario)
