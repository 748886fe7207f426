"""The running LwM2M server's requests to registered devices, for callers outside its event loop.

``serve`` runs the LwM2M server and the HTTP server on one event loop, but the dashboard's page
handlers run in worker threads: a page that reads or executes a resource hands the request to the
server's loop and waits for the device's answer there. A process with no LwM2M server (the REST API
alone, a test app) has no link, and pages say so rather than pretend to reach a device.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from tinymlaas.lwm2m.core import Path, Value
from tinymlaas.lwm2m.server import ClientRequests
from tinymlaas.lwm2m.transport import DEFAULT_TIMEOUT, PeerUnreachable

__all__ = ["DeviceLink"]

T = TypeVar("T")

# Beyond the server's own request timeout, how long a caller waits for the loop to hand the answer back.
_HANDOVER_S = 5.0


class DeviceLink:
    """Read, Execute and the live observations of ``requests``, callable from any thread but its loop's."""

    def __init__(
        self,
        requests: ClientRequests,
        loop: asyncio.AbstractEventLoop,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._requests = requests
        self._loop = loop
        self._wait_s = request_timeout + _HANDOVER_S

    def _call(self, request: Coroutine[Any, Any, T], what: str) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            request.close()
            raise RuntimeError("a DeviceLink call would block its own event loop; await the requests instead")
        future = asyncio.run_coroutine_threadsafe(request, self._loop)
        try:
            return future.result(self._wait_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PeerUnreachable(f"{what}: no answer within {self._wait_s:g} s") from None

    def read(self, endpoint: str, path: Path) -> dict[Path, Value]:
        """The values the device answers for an object, instance or resource."""
        return self._call(self._requests.read(endpoint, path), f"read {endpoint} {path}")

    def execute(self, endpoint: str, path: Path) -> None:
        """Execute one resource; the device's error code, if any, raises as ``ClientRequests`` says."""
        self._call(self._requests.execute(endpoint, path), f"execute {endpoint} {path}")

    def observed(self, endpoint: str) -> frozenset[Path]:
        """The paths the server observes on the device now, read on the loop that changes them."""

        async def paths() -> frozenset[Path]:
            return frozenset(item.path for item in self._requests.observations(endpoint))

        return self._call(paths(), f"observations of {endpoint}")
