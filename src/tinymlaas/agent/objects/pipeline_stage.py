"""Object 26242, Pipeline Stage, on the agent: the stage's configuration and counters.

A Write of resources 0-9 is applied as a whole by the stage engine (``agent.stage``), which checks
every value first and keeps the previous configuration when one is wrong; the answer is then 4.00
naming the resource. Next Hops and Upstream Keys are written as a whole list: the instances a Write
carries replace the old ones, and a single empty instance clears the list. The counters come from the
engine, which notifies their observers.

Hand-written on the aiocoap-free LwM2M core, as every provider is (see ``objects.base``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from tinymlaas.agent.objects.base import ObjectProvider
from tinymlaas.agent.stage import StageEngine
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import Path, Value
from tinymlaas.lwm2m.core.objects import PIPELINE_STAGE
from tinymlaas.lwm2m.transport import CoapResponse

__all__ = ["CONFIG_PATHS", "PipelineStageProvider"]

_ID = PIPELINE_STAGE.id
_MULTIPLE = (3, 6)
_MAX_INSTANCE_ID = 255  # instance ids a Write may use; the engine bounds how many there are
CONFIG_PATHS = tuple(Path(_ID, 0, resource) for resource in (0, 1, 2, 3, 4, 7, 8, 9, 23))
"""The readable resources a configuration Write may change."""


class PipelineStageProvider(ObjectProvider):
    """``/26242/0`` for the node's one stage."""

    definition = PIPELINE_STAGE
    writable = frozenset(
        {Path(_ID, 0, resource) for resource in (0, 1, 2, 3, 4, 5, 6, 8, 9, 23)}
        | {Path(_ID, 0, resource, index) for resource in _MULTIPLE for index in range(_MAX_INSTANCE_ID + 1)}
    )

    def __init__(self, engine: StageEngine, changed: Callable[[Iterable[Path]], None]) -> None:
        self._engine = engine
        self._changed = changed

    def values(self) -> dict[Path, Value]:
        config = self._engine.config
        counters = self._engine.counters()
        values: dict[Path, Value] = {
            Path(_ID, 0, 0): config.pipeline,
            Path(_ID, 0, 1): config.stage,
            Path(_ID, 0, 2): config.role,
            Path(_ID, 0, 4): config.condition,
            Path(_ID, 0, 7): self._engine.listen_uri,
            Path(_ID, 0, 8): config.hop_link,
            Path(_ID, 0, 9): config.fanout,
            Path(_ID, 0, 10): counters.messages_in,
            Path(_ID, 0, 11): counters.messages_out,
            Path(_ID, 0, 12): counters.passed,
            Path(_ID, 0, 13): counters.filtered,
            Path(_ID, 0, 14): counters.send_failures,
            Path(_ID, 0, 15): counters.outbox,
            Path(_ID, 0, 16): counters.mean_hop_latency_ms,
            Path(_ID, 0, 17): counters.mean_compute_ms,
            Path(_ID, 0, 18): counters.mean_end_to_end_ms,
            Path(_ID, 0, 19): counters.last_result,
            Path(_ID, 0, 20): counters.labelled,
            Path(_ID, 0, 21): counters.correct,
            Path(_ID, 0, 22): counters.messages_per_s,
            Path(_ID, 0, 23): config.forward,
        }
        values.update({Path(_ID, 0, 3, index): uri for index, uri in enumerate(config.next_hops)})
        return values

    async def write(self, values: Mapping[Path, Value]) -> CoapResponse:
        changes: dict[int, object] = {}
        for resource in _MULTIPLE:
            items = sorted(
                (path.resource_instance_id or 0, value)
                for path, value in values.items()
                if path.resource_id == resource
            )
            if items:
                changes[resource] = tuple(value for _, value in items)
        for path, value in values.items():
            if path.resource_id is not None and path.resource_id not in _MULTIPLE:
                changes[path.resource_id] = value
        try:
            await self._engine.configure(changes)
        except InvalidInput as exc:
            return CoapResponse("4.00", exc.detail.encode())
        self._changed(CONFIG_PATHS)
        return CoapResponse("2.04")
