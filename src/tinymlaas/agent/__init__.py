"""The device agent: what runs on a board (or stands in for one) and keeps its model current.

This package must run on a Raspberry Pi or an emulated microcontroller without TensorFlow: it uses
only numpy, the TFLM and LiteRT runtimes and the model description types from ``squeeze``.
Installing follows DESIGN.md section 4: write the package to the inactive A/B slot, run it on
trial, self-test it in the real runtime, then confirm it or roll back to the confirmed model.
"""

from tinymlaas.agent.installer import CRASH_POINTS, Installer, InstallOutcome, package_digest
from tinymlaas.agent.runtime import SelfTestReport, load_model, self_test
from tinymlaas.agent.slots import SlotInfo, SlotStore
from tinymlaas.agent.update import TRANSITIONS, UpdateResult, UpdateState, UpdateTracker

__all__ = [
    "CRASH_POINTS",
    "TRANSITIONS",
    "InstallOutcome",
    "Installer",
    "SelfTestReport",
    "SlotInfo",
    "SlotStore",
    "UpdateResult",
    "UpdateState",
    "UpdateTracker",
    "load_model",
    "package_digest",
    "self_test",
]
