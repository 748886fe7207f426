"""The CoAP transport: the only package that imports aiocoap (docs/ARCHITECTURE.md, Layers).

Callers see frozen ``CoapRequest``/``CoapResponse`` values and a ``CoapEndpoint`` that serves one handler
for every path, sends requests, observes peers and notifies its own observers.
"""

from tinymlaas.lwm2m.transport.coap import (
    DEFAULT_TIMEOUT,
    CoapEndpoint,
    CoapRequest,
    CoapResponse,
    Handler,
    NotificationCallback,
    Observation,
    PeerUnreachable,
    PskLookup,
    same_origin,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "CoapEndpoint",
    "CoapRequest",
    "CoapResponse",
    "Handler",
    "NotificationCallback",
    "Observation",
    "PeerUnreachable",
    "PskLookup",
    "same_origin",
]
