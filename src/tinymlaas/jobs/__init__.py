"""Background jobs: training, squeezing, compiling and whole lifecycles, run outside the caller.

A job is a row (``storage.tables.JobRow``) that moves through ``JOB_TRANSITIONS``; an ``Executor``
runs it, and the worker writes progress, log and outcome to that row, so every process sees the same
state and a restart finds it. Callers submit and cancel through ``tinymlaas.jobs.service``, and
ask for jobs checked against what they name through ``tinymlaas.jobs.requests``.
"""

from tinymlaas.jobs.executor import Executor, LocalProcessExecutor, Worker
from tinymlaas.jobs.recovery import SERVER_STOPPED, Recovered, recover
from tinymlaas.jobs.states import JOB_TRANSITIONS, TERMINAL_STATES, JobKind, JobState

__all__ = [
    "JOB_TRANSITIONS",
    "SERVER_STOPPED",
    "TERMINAL_STATES",
    "Executor",
    "JobKind",
    "JobState",
    "LocalProcessExecutor",
    "Recovered",
    "Worker",
    "recover",
]
