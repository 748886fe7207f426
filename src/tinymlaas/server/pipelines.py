"""The pipeline runner: the part of ``serve`` that turns an applied pipeline into configured nodes.

``services.pipelines.apply_pipeline`` gates every node and starts the stage campaigns; this runner
waits for them, then writes each node's Pipeline Stage object (26242) over LwM2M, last stage first:
a node told which upstream nodes may send to it (with their keys) starts listening and reports its
Listen URI, which becomes the Next Hops of the stage before it. While a pipeline runs, the runner
reads every node's counters back and stores them, so the API and dashboard show what the nodes
reported, never a figure of the server's own. Stopping clears the nodes' configuration. Of several
servers on one store only the holder of the campaign lease (``server.campaigns.CampaignLease``) drives
pipelines, as it drives the campaigns they start.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

from tinymlaas.deploy.pipelines import PipelineSpec, PipelineState
from tinymlaas.errors import TinymlaasError
from tinymlaas.lwm2m.core import Path, Value
from tinymlaas.lwm2m.server import Lwm2mServer
from tinymlaas.server.campaigns import CampaignLease, Write, run_passes
from tinymlaas.services._reports import resources
from tinymlaas.services.context import Context
from tinymlaas.services.pipelines import (
    campaigns_outcome,
    pipeline_snapshot,
    pipelines_to_drive,
    record_progress,
)

__all__ = ["PipelineRunner"]

_log = logging.getLogger(__name__)

STAGE = Path(26242, 0)
_LATENCY_BASIS = Path(26241, 0, 16)
_LISTEN = 7
# Counter resources of object 26242 and the names the store and API use for them.
_COUNTERS = {
    10: "messages_in",
    11: "messages_out",
    12: "passed",
    13: "filtered",
    14: "send_failures",
    15: "outbox",
    16: "hop_latency_ms",
    17: "compute_ms",
    18: "end_to_end_ms",
    19: "last_result",
    20: "labelled",
    21: "correct",
    22: "messages_per_s",
}


# What stopping writes: no pipeline, no role, no next hops or upstream keys (the listener closes).
CLEARED: dict[Path, Value] = {
    Path(26242, 0, 0): "",
    Path(26242, 0, 1): "",
    Path(26242, 0, 2): "",
    Path(26242, 0, 3, 0): "",
    Path(26242, 0, 4): "",
    Path(26242, 0, 5): "",
    Path(26242, 0, 6, 0): "",
}


def stage_values(
    spec: PipelineSpec, stage_index: int, keys: dict[str, str], next_hops: list[str]
) -> dict[Path, Value]:
    """The Write that configures one stage's node: every configuration resource, in one request."""
    stage = spec.stages[stage_index]
    upstream = spec.stages[stage_index - 1].nodes if stage_index > 0 else []
    values: dict[Path, Value] = {
        Path(26242, 0, 0): spec.name,
        Path(26242, 0, 1): stage.name,
        Path(26242, 0, 2): "source" if stage_index == 0 else "relay",
        Path(26242, 0, 4): stage.condition,
        Path(26242, 0, 8): stage.link or "",
        Path(26242, 0, 9): stage.fanout,
        # A split head passes its cut tensor on; a cascade's model passes the window it looked at.
        Path(26242, 0, 23): "output" if stage.part == "head" else "input",
    }
    # One empty instance clears a list resource on the node.
    for i, uri in enumerate(next_hops or [""]):
        values[Path(26242, 0, 3, i)] = uri
    for i, entry in enumerate([f"{node}={keys[node]}" for node in upstream] or [""]):
        values[Path(26242, 0, 6, i)] = entry
    return values


class PipelineRunner:
    """Advances applying pipelines, reads running ones, clears stopped ones, every ``interval`` s;
    with a ``lease``, only in passes where this process holds it."""

    def __init__(
        self,
        context: Context,
        server: Lwm2mServer,
        write: Write,
        *,
        interval: float = 1.0,
        lease: CampaignLease | None = None,
    ) -> None:
        self.context = context
        self.server = server
        self._write = write
        self.interval = interval
        self.lease = lease

    async def run(self) -> None:
        await run_passes(self.run_once, self.interval, "pipeline")

    async def run_once(self) -> None:
        if self.lease is not None and not await self.lease.hold():
            return
        for pipeline_id, state in await self._write(pipelines_to_drive, self.context):
            if state is PipelineState.APPLYING:
                await self._applying(pipeline_id)
            elif state is PipelineState.RUNNING:
                await self._read(pipeline_id)
            elif state is PipelineState.STOPPED:
                await self._clear(pipeline_id)

    async def _update(self, pipeline_id: str, expect: PipelineState, **changes: Any) -> None:
        await self._write(partial(record_progress, self.context, pipeline_id, expect, **changes))

    async def _applying(self, pipeline_id: str) -> None:
        spec, applied = await self._write(pipeline_snapshot, self.context, pipeline_id)
        done, failure = await self._write(campaigns_outcome, self.context, applied)
        if failure is not None:
            await self._update(
                pipeline_id,
                PipelineState.APPLYING,
                state=PipelineState.FAILED.value,
                error=failure,
            )
            return
        if not done:
            return
        keys: dict[str, str] = applied.get("keys", {})
        configured: list[str] = []
        listen: dict[str, str] = {}
        next_hops: list[str] = []
        try:
            for index in reversed(range(len(spec.stages))):
                stage = spec.stages[index]
                hops = []
                for node in stage.nodes:
                    values = stage_values(spec, index, keys, next_hops)
                    values[Path(26242, 0, 5)] = keys[node] if next_hops else ""
                    await self.server.devices.write(node, STAGE, values)
                    configured.append(node)
                    if index > 0:
                        found = resources(await self.server.devices.read(node, Path(26242, 0, _LISTEN)))
                        uri = str(found.get(_LISTEN) or "")
                        if not uri:
                            raise TinymlaasError(
                                f"{node} reports no Listen URI after its upstream keys were written"
                            )
                        listen[node] = uri
                        hops.append(uri)
                next_hops = hops
        except TinymlaasError as exc:
            await self._update(
                pipeline_id,
                PipelineState.APPLYING,
                state=PipelineState.FAILED.value,
                error=f"configuring the nodes failed: {exc.detail}",
                applied={"configured": configured},
            )
            return
        nodes = {node: {"listen": uri} for node, uri in listen.items()}
        await self._update(
            pipeline_id,
            PipelineState.APPLYING,
            state=PipelineState.RUNNING.value,
            applied={"configured": configured, "nodes": nodes},
        )

    async def _read(self, pipeline_id: str) -> None:
        spec, applied = await self._write(pipeline_snapshot, self.context, pipeline_id)
        nodes: dict[str, Any] = dict(applied.get("nodes", {}))
        now = datetime.now(UTC).isoformat()
        for stage in spec.stages:
            for node in stage.nodes:
                entry = dict(nodes.get(node, {}))
                online = self.server.store.get_by_endpoint(node) is not None
                entry["online"] = online
                if online:
                    try:
                        found = resources(await self.server.devices.read(node, STAGE))
                        basis = resources(await self.server.devices.read(node, _LATENCY_BASIS))
                    except TinymlaasError as exc:
                        entry["error"] = exc.detail
                    else:
                        entry["counters"] = {name: found.get(rid) for rid, name in _COUNTERS.items()}
                        entry["latency_basis"] = str(basis.get(16) or "")
                        entry["read_at"] = now
                        entry["reported_listen"] = str(found.get(_LISTEN) or "")
                        entry.pop("error", None)
                nodes[node] = entry
        await self._follow_moved_listeners(spec, nodes)
        await self._update(pipeline_id, PipelineState.RUNNING, applied={"nodes": nodes})

    async def _follow_moved_listeners(self, spec: PipelineSpec, nodes: dict[str, Any]) -> None:
        """A node that restarted may listen on another port: tell the stage before it where it is now.

        Until then the upstream nodes keep the messages for it in their outboxes, so nothing is lost;
        a node whose new address cannot be written yet is tried again on the next pass.
        """
        for index in range(1, len(spec.stages)):
            stage = spec.stages[index]
            moved = [
                n
                for n in stage.nodes
                if nodes.get(n, {}).get("reported_listen")
                and nodes[n]["reported_listen"] != nodes[n].get("listen")
            ]
            if not moved:
                continue
            hops = [nodes[n].get("reported_listen") or nodes[n].get("listen", "") for n in stage.nodes]
            values: dict[Path, Value] = {Path(26242, 0, 3, i): uri for i, uri in enumerate(hops) if uri}
            try:
                for upstream in spec.stages[index - 1].nodes:
                    await self.server.devices.write(upstream, STAGE, values)
            except TinymlaasError as exc:
                _log.info("pointing stage %s at its moved nodes failed: %s", stage.name, exc.detail)
                continue
            for n in moved:
                nodes[n]["listen"] = nodes[n]["reported_listen"]

    async def _clear(self, pipeline_id: str) -> None:
        _spec, applied = await self._write(pipeline_snapshot, self.context, pipeline_id)
        left = []
        for node in applied.get("configured", []):
            try:
                await self.server.devices.write(node, STAGE, CLEARED)
            except TinymlaasError as exc:
                _log.warning("clearing %s's pipeline stage failed: %s", node, exc.detail)
                left.append(node)
        await self._update(pipeline_id, PipelineState.STOPPED, applied={"configured": left})
