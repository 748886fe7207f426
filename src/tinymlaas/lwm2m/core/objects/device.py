"""Object 3, Device: identity, versions, memory and the reboot switch of the client.

Version 1.0 as in the OMA registry (``version_history/3-1_0_2.xml``); the server reads Manufacturer,
Model Number and Firmware Version to match a device to a board profile.
"""

from __future__ import annotations

from tinymlaas.lwm2m.core.model import ObjectDef, ResourceDef, ResourceType, resource_table

__all__ = ["DEVICE"]

_S = ResourceType.STRING
_I = ResourceType.INTEGER

DEVICE = ObjectDef(
    id=3,
    name="Device",
    version="1.0",
    multiple_instances=False,
    mandatory=True,
    resources=resource_table(
        ResourceDef(0, "Manufacturer", "R", _S),
        ResourceDef(1, "Model Number", "R", _S),
        ResourceDef(2, "Serial Number", "R", _S),
        ResourceDef(3, "Firmware Version", "R", _S),
        ResourceDef(4, "Reboot", "E", None, mandatory=True),
        ResourceDef(5, "Factory Reset", "E", None),
        ResourceDef(6, "Available Power Sources", "R", _I, multiple=True),
        ResourceDef(7, "Power Source Voltage", "R", _I, multiple=True, units="mV"),
        ResourceDef(8, "Power Source Current", "R", _I, multiple=True, units="mA"),
        ResourceDef(9, "Battery Level", "R", _I, units="%"),
        ResourceDef(10, "Memory Free", "R", _I, units="KB"),
        ResourceDef(11, "Error Code", "R", _I, multiple=True, mandatory=True),
        ResourceDef(12, "Reset Error Code", "E", None),
        ResourceDef(13, "Current Time", "RW", ResourceType.TIME),
        ResourceDef(14, "UTC Offset", "RW", _S),
        ResourceDef(15, "Timezone", "RW", _S),
        ResourceDef(16, "Supported Binding and Modes", "R", _S, mandatory=True),
        ResourceDef(17, "Device Type", "R", _S),
        ResourceDef(18, "Hardware Version", "R", _S),
        ResourceDef(19, "Software Version", "R", _S),
        ResourceDef(20, "Battery Status", "R", _I),
        ResourceDef(21, "Memory Total", "R", _I, units="KB"),
        ResourceDef(22, "ExtDevInfo", "R", ResourceType.OBJLNK, multiple=True),
    ),
)
