"""Object 26242, Pipeline Stage: one node's part in a pipeline of models spread over devices.

Our second vendor object, next to 26241 in the reusable private range. A node runs one stage, so the
object has one instance. Hand-written on the core model like every object here, because no Python
library provides LwM2M objects over aiocoap.

The configuration (0-9 and 23) arrives in one Write and is applied as a whole or not at all, so a node never
forwards under half a configuration. Hop Key and Upstream Keys are write-only: a server can replace a
key but nobody can read one back. The counters (10-22) are meant to be observed.
"""

from __future__ import annotations

from tinymlaas.lwm2m.core.model import ObjectDef, ResourceDef, ResourceType, resource_table

__all__ = ["PIPELINE_STAGE"]

_S = ResourceType.STRING
_I = ResourceType.INTEGER
_F = ResourceType.FLOAT

PIPELINE_STAGE = ObjectDef(
    id=26242,
    name="Pipeline Stage",
    version="1.0",
    multiple_instances=False,
    mandatory=False,
    resources=resource_table(
        ResourceDef(0, "Pipeline", "RW", _S),
        ResourceDef(1, "Stage", "RW", _S),
        # "source": runs on the sensor's windows; "relay": runs on tensors received from upstream.
        ResourceDef(2, "Role", "RW", _S),
        # coaps://host:port of each next node; none: this is the last stage.
        ResourceDef(3, "Next Hops", "RW", _S, multiple=True),
        # "" always forward; "not:<label>", "label:<label>" on the top label; "score>=<t>" on its score.
        ResourceDef(4, "Condition", "RW", _S),
        # Hex PSK towards the next hops; the PSK identity is this node's endpoint name.
        ResourceDef(5, "Hop Key", "W", _S),
        # "identity=hexkey", one per upstream node allowed to send here.
        ResourceDef(6, "Upstream Keys", "W", _S, multiple=True),
        ResourceDef(7, "Listen URI", "R", _S),
        # A link profile name (lwm2m.linkemu) emulated on outgoing hops; "" none.
        ResourceDef(8, "Hop Link", "RW", _S),
        # "round-robin": each message to one next hop, by sequence number; "all": to every next hop.
        ResourceDef(9, "Fan-out", "RW", _S),
        ResourceDef(10, "Messages In", "R", _I),
        # Acknowledged by the next node.
        ResourceDef(11, "Messages Out", "R", _I),
        ResourceDef(12, "Passed", "R", _I),
        # Stopped here by the condition, by design.
        ResourceDef(13, "Filtered", "R", _I),
        ResourceDef(14, "Send Failures", "R", _I),
        # Messages waiting for a next hop, on disk.
        ResourceDef(15, "Outbox", "R", _I),
        # Handed to CoAP until acknowledged, over the last 100 sends.
        ResourceDef(16, "Mean Hop Latency", "R", _F, units="ms"),
        # This node's stage over the last 100 runs, on the runtime's latency basis (26241/0/16).
        ResourceDef(17, "Mean Compute", "R", _F, units="ms"),
        # Origin's sensor window to the result here; the last stage only, last 100 results.
        ResourceDef(18, "Mean End-to-End", "R", _F, units="ms"),
        ResourceDef(19, "Last Result", "R", _S),
        # Results whose message carried a ground-truth label, and those whose top label equals it.
        ResourceDef(20, "Labelled", "R", _I),
        ResourceDef(21, "Correct", "R", _I),
        ResourceDef(22, "Messages/s", "R", _F, units="1/s"),
        # What goes on: "output" (a split model's head passes its cut tensor) or "input" (a cascade
        # passes the window it looked at, for the next model to look at too).
        ResourceDef(23, "Forward", "RW", _S),
    ),
)
