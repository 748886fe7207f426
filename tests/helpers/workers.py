"""Stand-in workers that take time without TensorFlow, so executor mechanics test in seconds.

They live in an importable module (not a test file) because a "spawn" child imports its target by name.
"""

from __future__ import annotations

import os
import time

from tinymlaas.jobs.records import JobCancelled, JobReporter, move
from tinymlaas.jobs.states import JobState
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings

TICKS = 600  # x 0.1 s: far longer than any test waits


def slow(settings: Settings, job_id: str) -> None:
    ctx = Context(settings)
    if not move(ctx, job_id, JobState.RUNNING, worker_pid=os.getpid()):
        return
    reporter = JobReporter(ctx, job_id)
    try:
        for tick in range(TICKS):
            reporter.report(f"tick {tick}", tick / TICKS)
            time.sleep(0.1)
    except JobCancelled:
        return
    move(ctx, job_id, JobState.SUCCEEDED, progress=1.0, result={})
