"""The device agent: what runs on a board (or stands in for one) and keeps its model current.

This package must run on a Raspberry Pi or an emulated microcontroller without TensorFlow: it uses
numpy, the TFLM and LiteRT runtimes, the model description types from ``squeeze``, the LwM2M core and
CoAP transport, and package verification from ``deploy``. ``Agent`` is the LwM2M client that ties
slots, updates, sensors and the inference loop together. Installing follows ``docs/ARCHITECTURE.md``:
write the package to the inactive A/B slot, run it on trial, self-test it in the real runtime, then
confirm it or roll back to the confirmed model.
"""

from tinymlaas.agent.client import Agent
from tinymlaas.agent.download import PackageDownload
from tinymlaas.agent.events import AgentEvent, EventCallback
from tinymlaas.agent.inference import InferenceLoop, Telemetry, fit_window
from tinymlaas.agent.installer import CRASH_POINTS, Installer, InstallOutcome, package_digest
from tinymlaas.agent.runtime import SelfTestReport, load_model, self_test
from tinymlaas.agent.sensors import DirectoryWatcher, GestureStream, ReplaySource, SensorSource
from tinymlaas.agent.slots import SlotInfo, SlotStore
from tinymlaas.agent.update import TRANSITIONS, UpdateResult, UpdateState, UpdateTracker
from tinymlaas.agent.uploader import Collection, CollectStats, SampleUploader

__all__ = [
    "CRASH_POINTS",
    "TRANSITIONS",
    "Agent",
    "AgentEvent",
    "CollectStats",
    "Collection",
    "DirectoryWatcher",
    "EventCallback",
    "GestureStream",
    "InferenceLoop",
    "InstallOutcome",
    "Installer",
    "PackageDownload",
    "ReplaySource",
    "SampleUploader",
    "SelfTestReport",
    "SensorSource",
    "SlotInfo",
    "SlotStore",
    "Telemetry",
    "UpdateResult",
    "UpdateState",
    "UpdateTracker",
    "fit_window",
    "load_model",
    "package_digest",
    "self_test",
]
