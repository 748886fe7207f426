"""The device side of each LwM2M object the agent serves, one provider per object.

The dispatcher (``tinymlaas.agent.dispatch``) routes each request to the provider that owns the object
id; adding an object to the device means adding a provider here (see ``docs/ARCHITECTURE.md``).
"""

from tinymlaas.agent.objects.base import ObjectProvider
from tinymlaas.agent.objects.connectivity import ConnectivityProvider, bind_host_for
from tinymlaas.agent.objects.device import MANUFACTURER, DeviceProvider
from tinymlaas.agent.objects.software_management import STATE_PATHS, SoftwareManagementProvider
from tinymlaas.agent.objects.tinyml_runtime import TinymlRuntimeProvider

__all__ = [
    "MANUFACTURER",
    "STATE_PATHS",
    "ConnectivityProvider",
    "DeviceProvider",
    "ObjectProvider",
    "SoftwareManagementProvider",
    "TinymlRuntimeProvider",
    "bind_host_for",
]
