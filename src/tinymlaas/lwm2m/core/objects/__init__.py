"""The LwM2M objects this product speaks, one module per object, and the registry of all of them.

``OBJECTS`` lives here rather than in ``model`` because every object module imports ``model``.
"""

from tinymlaas.lwm2m.core.model import ObjectRegistry
from tinymlaas.lwm2m.core.objects.connectivity import CONNECTIVITY_MONITORING
from tinymlaas.lwm2m.core.objects.device import DEVICE
from tinymlaas.lwm2m.core.objects.pipeline_stage import PIPELINE_STAGE
from tinymlaas.lwm2m.core.objects.software_management import SOFTWARE_MANAGEMENT
from tinymlaas.lwm2m.core.objects.tinyml_runtime import TINYML_RUNTIME

__all__ = [
    "CONNECTIVITY_MONITORING",
    "DEVICE",
    "OBJECTS",
    "PIPELINE_STAGE",
    "SOFTWARE_MANAGEMENT",
    "TINYML_RUNTIME",
]

OBJECTS = ObjectRegistry(
    [DEVICE, CONNECTIVITY_MONITORING, SOFTWARE_MANAGEMENT, TINYML_RUNTIME, PIPELINE_STAGE]
)
