"""Over-the-air deployment: signed model packages, their verification, and the compatibility gate.

Devices trust a package only through the server's Ed25519 key, and the server sends a package only
after the gate agrees the device can run it.
"""

from tinymlaas.deploy.gate import DeviceCapabilities, GateVerdict, check_compatibility
from tinymlaas.deploy.package import (
    SIGNATURE_NAME,
    PackageRejected,
    VerifiedPackage,
    sign_package,
    verify_package,
)
from tinymlaas.deploy.signing import (
    SigningKey,
    load_or_create_signing_key,
    load_public_key,
    verify_signature,
)
from tinymlaas.lwm2m.core import UpdateResult

__all__ = [
    "SIGNATURE_NAME",
    "DeviceCapabilities",
    "GateVerdict",
    "PackageRejected",
    "SigningKey",
    "UpdateResult",
    "VerifiedPackage",
    "check_compatibility",
    "load_or_create_signing_key",
    "load_public_key",
    "sign_package",
    "verify_package",
    "verify_signature",
]
