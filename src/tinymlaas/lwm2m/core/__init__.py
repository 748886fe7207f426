"""The transport-free LwM2M 1.1 core: object model, paths, content formats and registration values.

Nothing under ``lwm2m.core`` imports a network library, storage or the CLI; the transport package adapts
it to CoAP, the way Leshan keeps its LwM2M core free of any CoAP stack.
"""

from tinymlaas.lwm2m.core.linkformat import Link, format_links, object_paths, object_versions, parse_links
from tinymlaas.lwm2m.core.model import (
    ObjectDef,
    ObjectLink,
    ObjectRegistry,
    ResourceDef,
    ResourceType,
    Value,
    coerce_value,
    format_text,
    parse_text,
)
from tinymlaas.lwm2m.core.objects import (
    CONNECTIVITY_MONITORING,
    DEVICE,
    OBJECTS,
    SOFTWARE_MANAGEMENT,
    TINYML_RUNTIME,
)
from tinymlaas.lwm2m.core.objects.software_management import (
    TRANSITIONS,
    UpdateResult,
    UpdateState,
    can_transition,
)
from tinymlaas.lwm2m.core.paths import Path
from tinymlaas.lwm2m.core.registration import (
    InMemoryRegistrationStore,
    Registration,
    RegistrationRequest,
    RegistrationStore,
    RegistrationUpdate,
    parse_registration_query,
    parse_update_query,
)
from tinymlaas.lwm2m.core.security import (
    CREDENTIALS_FILE,
    PSK_BYTES,
    DeviceCredentials,
    SecurityMode,
    check_endpoint_name,
    new_psk,
)
from tinymlaas.lwm2m.core.senml import ContentFormat, Record, decode, decode_records, encode, encode_records

__all__ = [
    "CONNECTIVITY_MONITORING",
    "CREDENTIALS_FILE",
    "DEVICE",
    "OBJECTS",
    "PSK_BYTES",
    "SOFTWARE_MANAGEMENT",
    "TINYML_RUNTIME",
    "TRANSITIONS",
    "ContentFormat",
    "DeviceCredentials",
    "InMemoryRegistrationStore",
    "Link",
    "ObjectDef",
    "ObjectLink",
    "ObjectRegistry",
    "Path",
    "Record",
    "Registration",
    "RegistrationRequest",
    "RegistrationStore",
    "RegistrationUpdate",
    "ResourceDef",
    "ResourceType",
    "SecurityMode",
    "UpdateResult",
    "UpdateState",
    "Value",
    "can_transition",
    "check_endpoint_name",
    "coerce_value",
    "decode",
    "decode_records",
    "encode",
    "encode_records",
    "format_links",
    "format_text",
    "new_psk",
    "object_paths",
    "object_versions",
    "parse_links",
    "parse_registration_query",
    "parse_text",
    "parse_update_query",
]
