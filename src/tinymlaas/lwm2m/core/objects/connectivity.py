"""Object 4, Connectivity Monitoring: the bearer and signal a device reports (emulated on agents).

Version 1.0 as in LwM2M TS 1.0/1.1 Appendix E (resources 0-10); the server uses bearer and signal to
explain slow package downloads, never to decide anything.
"""

from __future__ import annotations

from tinymlaas.lwm2m.core.model import ObjectDef, ResourceDef, ResourceType, resource_table

__all__ = ["CONNECTIVITY_MONITORING"]

_S = ResourceType.STRING
_I = ResourceType.INTEGER

CONNECTIVITY_MONITORING = ObjectDef(
    id=4,
    name="Connectivity Monitoring",
    version="1.0",
    multiple_instances=False,
    mandatory=False,
    resources=resource_table(
        # Bearer codes: 0-20 cellular, 21 WLAN, 22 Bluetooth, 23 IEEE 802.15.4, 41 Ethernet, ...
        ResourceDef(0, "Network Bearer", "R", _I, mandatory=True),
        ResourceDef(1, "Available Network Bearer", "R", _I, multiple=True, mandatory=True),
        ResourceDef(2, "Radio Signal Strength", "R", _I, mandatory=True, units="dBm"),
        ResourceDef(3, "Link Quality", "R", _I),
        ResourceDef(4, "IP Addresses", "R", _S, multiple=True, mandatory=True),
        ResourceDef(5, "Router IP Addresses", "R", _S, multiple=True),
        ResourceDef(6, "Link Utilization", "R", _I, units="%"),
        ResourceDef(7, "APN", "R", _S, multiple=True),
        ResourceDef(8, "Cell ID", "R", _I),
        ResourceDef(9, "SMNC", "R", _I),
        ResourceDef(10, "SMCC", "R", _I),
    ),
)
