"""Background jobs: training, squeezing, compiling and whole lifecycles, run outside the caller.

A job is a row (``storage.tables.JobRow``) that moves through ``JOB_TRANSITIONS``; an ``Executor``
runs it, and the worker writes progress, log and outcome to that row, so every process sees the same
state and a restart finds it. Callers submit and cancel through ``tinymlaas.jobs.service``, and
ask for jobs checked against what they name through ``tinymlaas.jobs.requests``.

``RayExecutor`` (``tinymlaas.jobs.ray_executor``) runs jobs on Ray; it is exported lazily, so only a
process that asks for it imports Ray.
"""

from typing import TYPE_CHECKING, Any

from tinymlaas.jobs.executor import Executor, LocalProcessExecutor, Worker
from tinymlaas.jobs.recovery import SERVER_STOPPED, Recovered, recover
from tinymlaas.jobs.states import JOB_TRANSITIONS, TERMINAL_STATES, JobKind, JobState

if TYPE_CHECKING:
    from tinymlaas.jobs.ray_executor import RayExecutor

__all__ = [
    "JOB_TRANSITIONS",
    "SERVER_STOPPED",
    "TERMINAL_STATES",
    "Executor",
    "JobKind",
    "JobState",
    "LocalProcessExecutor",
    "RayExecutor",
    "Recovered",
    "Worker",
    "recover",
]


def __getattr__(name: str) -> Any:
    """``RayExecutor`` on first use: importing Ray costs a second and memory a local server never needs."""
    if name == "RayExecutor":
        from tinymlaas.jobs.ray_executor import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
