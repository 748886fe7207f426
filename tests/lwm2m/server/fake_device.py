"""A device for server tests: a few objects served over a real CoAP endpoint, with observable values."""

from __future__ import annotations

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.core import (
    OBJECTS,
    ContentFormat,
    Link,
    Path,
    format_links,
    format_text,
    parse_text,
    senml,
)
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse

INSTANCES = (Path(3, 0), Path(9, 0), Path(26241, 0))


class FakeDevice:
    def __init__(self, endpoint: CoapEndpoint | None = None) -> None:
        self.coap = endpoint
        self.values: dict[Path, object] = {
            Path(3, 0, 0): "Acme",
            Path(3, 0, 1): "M1",
            Path(3, 0, 3): "1.0.0",
            Path(3, 0, 9): 80,
            Path(3, 0, 16): "U",
            Path(9, 0, 0): "kws",
            Path(9, 0, 1): "1",
            Path(9, 0, 7): 0,
            Path(26241, 0, 0): "tflm",
            Path(26241, 0, 1): "1.0",
            Path(26241, 0, 3): 65536,
            Path(26241, 0, 4): 262144,
            Path(26241, 0, 6): "nano33ble",
            Path(26241, 0, 10): 0,
            Path(26241, 0, 11): 1.5,
        }
        self.written: dict[Path, object] = {}
        self.executed: list[tuple[Path, str]] = []
        self.location: tuple[str, ...] = ()

    @classmethod
    async def start(cls) -> FakeDevice:
        device = cls()
        device.coap = await CoapEndpoint.bind("127.0.0.1", 0, device.handle)
        return device

    async def close(self) -> None:
        await self.coap.close()

    async def register(self, server_uri: str, name: str = "dev1", lifetime: int = 60) -> CoapResponse:
        response = await self.coap.request(
            "POST",
            server_uri + "/rd",
            format_links(INSTANCES).encode(),
            content_format=ContentFormat.LINK_FORMAT,
            query=(f"ep={name}", f"lt={lifetime}", "lwm2m=1.1", "b=U"),
            timeout=5,
        )
        self.location = response.location_path
        return response

    def below(self, path: Path) -> dict[Path, object]:
        return {key: value for key, value in self.values.items() if key.ids[: len(path.ids)] == path.ids}

    def bump(self, path: Path) -> int:
        self.values[path] = int(self.values[path]) + 1
        return self.coap.notify(str(path))

    async def handle(self, request: CoapRequest) -> CoapResponse:
        path = Path.parse(request.uri_path)
        if request.method == "GET":
            found = self.below(path)
            if not found:
                raise NotFound(f"{path} is not here")
            if request.accept == ContentFormat.LINK_FORMAT:
                links = [Link(str(path))] + [Link(str(key)) for key in sorted(found) if key != path]
                payload = ",".join(str(link) for link in links).encode()
                return CoapResponse("2.05", payload, ContentFormat.LINK_FORMAT)
            if request.accept in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
                return CoapResponse("2.05", senml.encode(found, request.accept), request.accept)
            resource = OBJECTS.resource(path)
            return CoapResponse(
                "2.05", format_text(resource.type, found[path]).encode(), ContentFormat.TEXT_PLAIN
            )
        resource = OBJECTS.resource(path)
        if request.method == "PUT":
            if request.content_format != ContentFormat.TEXT_PLAIN:
                raise InvalidInput(f"content format {request.content_format} unsupported")
            self.written[path] = parse_text(resource.type, request.payload.decode())
            return CoapResponse("2.04")
        if request.method == "POST" and resource.executable:
            self.executed.append((path, request.payload.decode()))
            return CoapResponse("2.04")
        return CoapResponse("4.05")
