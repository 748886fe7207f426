"""Object 9, LWM2M Software Management: one instance per ML model package on a device.

Version 1.0 (OMA-TS-LWM2M_SwMgmt-V1_0, resources 0-18). The server writes Package URI, the agent pulls
the package over CoAP block-wise transfer and walks the Update State machine below; Install, Activate
and Deactivate are what the server executes to put a model into service.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType

from tinymlaas.lwm2m.core.model import ObjectDef, ResourceDef, ResourceType, resource_table

__all__ = ["SOFTWARE_MANAGEMENT", "TRANSITIONS", "UpdateResult", "UpdateState", "can_transition"]

_S = ResourceType.STRING
_I = ResourceType.INTEGER
_B = ResourceType.BOOLEAN
_L = ResourceType.OBJLNK

SOFTWARE_MANAGEMENT = ObjectDef(
    id=9,
    name="LWM2M Software Management",
    version="1.0",
    multiple_instances=True,
    mandatory=False,
    resources=resource_table(
        ResourceDef(0, "PkgName", "R", _S, mandatory=True),
        ResourceDef(1, "PkgVersion", "R", _S, mandatory=True),
        ResourceDef(2, "Package", "W", ResourceType.OPAQUE),
        ResourceDef(3, "Package URI", "W", _S),
        ResourceDef(4, "Install", "E", None, mandatory=True),
        ResourceDef(5, "Checkpoint", "R", _L),
        # Argument 1 ("ForUpdate") keeps the slot ready for a newer package instead of removing it.
        ResourceDef(6, "Uninstall", "E", None, mandatory=True),
        ResourceDef(7, "Update State", "R", _I, mandatory=True),
        ResourceDef(8, "Update Supported Objects", "RW", _B),
        ResourceDef(9, "Update Result", "R", _I, mandatory=True),
        ResourceDef(10, "Activate", "E", None, mandatory=True),
        ResourceDef(11, "Deactivate", "E", None, mandatory=True),
        ResourceDef(12, "Activation State", "R", _B, mandatory=True),
        ResourceDef(13, "Package Settings", "RW", _L),
        ResourceDef(14, "User Name", "W", _S),
        ResourceDef(15, "Password", "W", _S),
        ResourceDef(16, "Status Reason", "R", _S),
        ResourceDef(17, "Software Component Link", "R", _L, multiple=True),
        ResourceDef(18, "Software Component tree length", "R", _I),
    ),
)


class UpdateState(IntEnum):
    """Resource 9/x/7: where one package is in its download-and-install life (the Package Installation
    State Machine of the SwMgmt spec, §5.1.2)."""

    # Nothing downloaded; also where every failure and every Uninstall lands.
    INITIAL = 0
    # A Package or Package URI was written and the transfer is under way.
    DOWNLOAD_STARTED = 1
    # Every byte arrived; integrity not yet verified.
    DOWNLOADED = 2
    # Integrity verified, ready for Install; a failed Install leaves the package here.
    DELIVERED = 3
    # Installed; Activate/Deactivate now move the separate activation state, Uninstall goes to INITIAL.
    INSTALLED = 4


TRANSITIONS: Mapping[UpdateState, frozenset[UpdateState]] = MappingProxyType(
    {
        # Writing Package or Package URI starts the download.
        UpdateState.INITIAL: frozenset({UpdateState.DOWNLOAD_STARTED}),
        # Download complete, or failed (out of storage/memory, connection lost, invalid URI).
        UpdateState.DOWNLOAD_STARTED: frozenset({UpdateState.DOWNLOADED, UpdateState.INITIAL}),
        # Integrity check passed, or failed (bad hash/signature, unsupported package type).
        UpdateState.DOWNLOADED: frozenset({UpdateState.DELIVERED, UpdateState.INITIAL}),
        # Install succeeded, or Uninstall dropped the delivered package.
        UpdateState.DELIVERED: frozenset({UpdateState.INSTALLED, UpdateState.INITIAL}),
        # Uninstall goes to INITIAL. DOWNLOAD_STARTED: a new Package URI on an installed instance is the
        # spec's Uninstall "ForUpdate" followed by a download; A/B slots keep the installed model running.
        # INSTALLED: with A/B slots, Uninstall hands over to the fallback slot, whose package passed its
        # self-test when it was installed, so the instance stays INSTALLED with that package's name.
        UpdateState.INSTALLED: frozenset(
            {UpdateState.INITIAL, UpdateState.DOWNLOAD_STARTED, UpdateState.INSTALLED}
        ),
    }
)


def can_transition(current: UpdateState, target: UpdateState) -> bool:
    """Whether the state machine lets ``current`` become ``target``."""
    return target in TRANSITIONS[current]


class UpdateResult(IntEnum):
    """Resource 9/x/9: the outcome of the last download, install or uninstall (SwMgmt 1.0 codes)."""

    INITIAL = 0
    DOWNLOADING = 1
    INSTALLED = 2
    DOWNLOADED_VERIFIED = 3
    NOT_ENOUGH_STORAGE = 50
    OUT_OF_MEMORY = 51
    CONNECTION_LOST = 52
    INTEGRITY_CHECK_FAILURE = 53
    UNSUPPORTED_PACKAGE_TYPE = 54
    INVALID_URI = 56
    UPDATE_ERROR = 57
    INSTALLATION_FAILURE = 58
    UNINSTALLATION_FAILURE = 59
