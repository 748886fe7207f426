"""Sample upload from devices: the ``POST /dc/<dataset>`` resource of the LwM2M server.

Why a resource of our own rather than LwM2M 1.1's Send (``POST /dp``): Send carries the current values
of the client's object resources as SenML, for the server to file under that device's objects. A sensor
window is neither a resource value nor the device's state; it is a training sample bound for a dataset
the operator names, it must be stored exactly once whatever the link does, and it can be far larger
than a resource. So the dataset is in the URI, the body is one CBOR map (``data.upload``) carrying the
device's own sample id, and Block1 (RFC 7959) carries large samples: aiocoap reassembles the blocks
before the handler runs.

Answers: 2.01 Created for a new sample; 2.04 Changed when the sample id (or its exact content) is
already in the dataset, so a device that resends an upload whose answer it lost can forget it; 4.00 for
a body that is not a sample upload; 4.13 above ``MAX_UPLOAD_BYTES``; 4.15 for a Content-Format other
than CBOR; 4.22 for a well-formed sample the dataset cannot take (wrong shape, a label it does not
have). Every error carries a diagnostic payload naming what was wrong, and stores nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tinymlaas.data.types import check_dataset_name
from tinymlaas.data.upload import CBOR_CONTENT_FORMAT, COLLECT_ROOT, MAX_UPLOAD_BYTES, SampleUpload
from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.transport import CoapRequest, CoapResponse
from tinymlaas.services.datasets import DatasetService

__all__ = ["SampleCollector", "Writer"]

T = TypeVar("T")

Writer = Callable[..., Awaitable[Any]]  # runs ``work(*args)`` off the event loop, in the caller's order


async def _in_thread(work: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(work, *args)


class SampleCollector:
    """Stores uploads through ``DatasetService.collect``; ``write`` runs that database work.

    The fleet passes its single database writer, so uploads and device events never contend for SQLite.
    """

    def __init__(self, datasets: DatasetService, write: Writer = _in_thread) -> None:
        self._datasets = datasets
        self._write = write

    async def handle(self, request: CoapRequest) -> CoapResponse:
        if len(request.path) != 2 or request.path[0] != COLLECT_ROOT:
            raise NotFound(f"{request.uri_path}: samples are uploaded to /{COLLECT_ROOT}/<dataset>")
        if request.method != "POST":
            return CoapResponse("4.05", f"{request.method} {request.uri_path}: only POST uploads".encode())
        if request.content_format not in (None, CBOR_CONTENT_FORMAT):
            detail = f"content format {request.content_format}: an upload is CBOR ({CBOR_CONTENT_FORMAT})"
            return CoapResponse("4.15", detail.encode())
        if len(request.payload) > MAX_UPLOAD_BYTES:
            detail = f"a sample upload is at most {MAX_UPLOAD_BYTES} bytes, got {len(request.payload)}"
            return CoapResponse("4.13", detail.encode())
        try:
            check_dataset_name(request.path[1])
            upload = SampleUpload.decode(request.payload)
        except InvalidInput as exc:
            return CoapResponse("4.00", exc.detail.encode())
        try:
            outcome = await self._write(self._datasets.collect, request.path[1], upload)
        except InvalidInput as exc:
            return CoapResponse("4.22", exc.detail.encode())
        return CoapResponse("2.01" if outcome.stored else "2.04", outcome.detail.encode())
