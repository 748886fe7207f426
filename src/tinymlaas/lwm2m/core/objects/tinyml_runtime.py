"""Object 26241, TinyML Runtime: what a device can run and how its installed model performs.

Our vendor object, the first id of the reusable private range (26241-32768). One instance per runtime
on the device (TFLM on an MCU; LiteRT and TFLM side by side on a Linux board). The capability resources
(0-6) feed the deploy compatibility gate; the telemetry resources (10-15) feed the fleet dashboard and
are meant to be observed.
"""

from __future__ import annotations

from tinymlaas.lwm2m.core.model import ObjectDef, ResourceDef, ResourceType, resource_table

__all__ = ["TINYML_RUNTIME"]

_S = ResourceType.STRING
_I = ResourceType.INTEGER
_F = ResourceType.FLOAT

TINYML_RUNTIME = ObjectDef(
    id=26241,
    name="TinyML Runtime",
    version="1.0",
    multiple_instances=True,
    mandatory=False,
    resources=resource_table(
        ResourceDef(0, "Runtime Name", "R", _S, mandatory=True),
        ResourceDef(1, "Runtime Version", "R", _S, mandatory=True),
        # Builtin operator names as the runtime spells them, e.g. "CONV_2D", "FULLY_CONNECTED".
        ResourceDef(2, "Supported Ops", "R", _S, multiple=True, mandatory=True),
        ResourceDef(3, "Arena RAM Available", "R", _I, mandatory=True, units="B"),
        ResourceDef(4, "Slot Flash Available", "R", _I, mandatory=True, units="B"),
        ResourceDef(5, "Accelerator", "R", _S),
        ResourceDef(6, "Board", "R", _S, mandatory=True),
        ResourceDef(10, "Inference Count", "R", _I),
        ResourceDef(11, "Mean Latency", "R", _F, units="ms"),
        ResourceDef(12, "P95 Latency", "R", _F, units="ms"),
        ResourceDef(13, "Last Result", "R", _S),
        # One instance per confidence bucket, in order: instance i counts results in [i/n, (i+1)/n).
        ResourceDef(14, "Confidence Histogram", "R", _I, multiple=True),
        ResourceDef(15, "Inference Rate", "RW", _F, units="Hz"),
        # Where Mean and P95 Latency come from: an on-target estimate (and how it was made) or a
        # measurement (of what, where), so a dashboard never passes a host's time off as a board's.
        ResourceDef(16, "Latency Basis", "R", _S),
    ),
)
