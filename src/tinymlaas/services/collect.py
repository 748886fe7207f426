"""Sample upload from devices: the ``POST /dc/<dataset>`` resource of the LwM2M server.

Why a resource of our own rather than LwM2M 1.1's Send (``POST /dp``): Send carries the current values
of the client's object resources as SenML, for the server to file under that device's objects. A sensor
window is neither a resource value nor the device's state; it is a training sample bound for a dataset
the operator names, it must be stored exactly once whatever the link does, and it can be far larger
than a resource. So the dataset is in the URI, the body is one CBOR map (``data.upload``) carrying the
device's own sample id, and Block1 (RFC 7959) carries large samples: aiocoap reassembles the blocks
before the handler runs.

A sample is training data, so who sent it matters: only a device the security layer authenticated
(``CoapRequest.peer``) may upload, and the sample is recorded as that device's. Over NoSec there is no
such device, and uploads are refused unless the ``allow_nosec`` development setting is on, in which case
the endpoint name the body claims is taken at its word. Each device has a token bucket
(``upload_rate_per_s``, ``upload_burst``), so one device cannot flood a dataset.

Answers: 2.01 Created for a new sample; 2.04 Changed when the sample id (or its exact content) is
already in the dataset, so a device that resends an upload whose answer it lost can forget it; 4.00 for
a body that is not a sample upload; 4.01 for an unauthenticated sender; 4.03 for a body naming another
endpoint than the authenticated one; 4.04 for a dataset that does not exist (devices never create one);
4.13 above ``MAX_UPLOAD_BYTES``; 4.15 for a Content-Format other than CBOR; 4.22 for a well-formed
sample the dataset cannot take (wrong shape, a label it does not have); 4.29 for a device over its
upload rate. Every error carries a diagnostic payload naming what was wrong, and stores nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tinymlaas.data.types import check_dataset_name
from tinymlaas.data.upload import CBOR_CONTENT_FORMAT, COLLECT_ROOT, MAX_UPLOAD_BYTES, SampleUpload
from tinymlaas.errors import Forbidden, InvalidInput, NotFound
from tinymlaas.lwm2m.transport import CoapRequest, CoapResponse
from tinymlaas.ratelimit import TokenBuckets
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.provisioning import authorize_endpoint

__all__ = ["SampleCollector", "Writer"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

Writer = Callable[..., Awaitable[Any]]  # runs ``work(*args)`` off the event loop, in the caller's order


async def _in_thread(work: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(work, *args)


class SampleCollector:
    """Stores uploads through ``DatasetService.collect``; ``write`` runs that database work.

    The fleet passes its single database writer, so uploads and device events never contend for SQLite.
    """

    def __init__(self, datasets: DatasetService, write: Writer = _in_thread) -> None:
        settings = datasets.ctx.settings
        self._datasets = datasets
        self._write = write
        self._allow_nosec = settings.allow_nosec
        self._rate = TokenBuckets(rate=settings.upload_rate_per_s, burst=settings.upload_burst)

    async def handle(self, request: CoapRequest) -> CoapResponse:
        if len(request.path) != 2 or request.path[0] != COLLECT_ROOT:
            raise NotFound(f"{request.uri_path}: samples are uploaded to /{COLLECT_ROOT}/<dataset>")
        if request.method != "POST":
            return CoapResponse("4.05", f"{request.method} {request.uri_path}: only POST uploads".encode())
        if request.content_format not in (None, CBOR_CONTENT_FORMAT):
            detail = f"content format {request.content_format}: an upload is CBOR ({CBOR_CONTENT_FORMAT})"
            return CoapResponse("4.15", detail.encode())
        if request.peer is None and not self._allow_nosec:
            detail = "sample uploads need an authenticated device (DTLS); this server takes none over NoSec"
            return CoapResponse("4.01", detail.encode())
        # Over NoSec (development only) the sender's address stands in for the device it claims to be.
        wait = self._rate.take(request.peer or request.remote)
        if wait:
            detail = (
                f"over the upload rate of {self._rate.rate:g}/s (burst {self._rate.burst}); "
                f"send again in {wait:.1f} s"
            )
            return CoapResponse("4.29", detail.encode())
        if len(request.payload) > MAX_UPLOAD_BYTES:
            detail = f"a sample upload is at most {MAX_UPLOAD_BYTES} bytes, got {len(request.payload)}"
            return CoapResponse("4.13", detail.encode())
        try:
            check_dataset_name(request.path[1])
            upload = SampleUpload.decode(request.payload)
        except InvalidInput as exc:
            return CoapResponse("4.00", exc.detail.encode())
        if request.peer is not None and upload.endpoint != request.peer:
            detail = (
                f"sample upload: 'ep' {upload.endpoint!r} is not the authenticated device {request.peer!r}"
            )
            return CoapResponse("4.03", detail.encode())
        try:
            # Over NoSec, never in the name of a provisioned device: that one proves itself over DTLS.
            authorize_endpoint(self._datasets.ctx, upload.endpoint, request.peer)
        except Forbidden as exc:
            return CoapResponse("4.03", exc.detail.encode())
        try:
            outcome = await self._write(self._datasets.collect, request.path[1], upload)
        except NotFound as exc:
            return CoapResponse("4.04", exc.detail.encode())
        except InvalidInput as exc:
            return CoapResponse("4.22", exc.detail.encode())
        if outcome.dropped_label is not None:
            _log.info("%s: %s", upload.endpoint, outcome.detail)
        return CoapResponse("2.01" if outcome.stored else "2.04", outcome.detail.encode())
