"""Where jobs run: an executor interface, and the default that runs each job in a local process."""

from __future__ import annotations

import multiprocessing
import signal
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from tinymlaas.jobs.records import move
from tinymlaas.jobs.recovery import SERVER_STOPPED, Recovered, recover
from tinymlaas.jobs.states import JobState
from tinymlaas.jobs.worker import run_job
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings

__all__ = ["Executor", "LocalProcessExecutor", "Worker"]

# The worker entry point: (settings, job id). Module-level, so a "spawn" child can import it by name.
Worker = Callable[[Settings, str], None]


class Executor(ABC):
    """Runs stored jobs. A distributed engine implements the same three calls; the job row, not the
    executor, is the source of truth, so any implementation reports through the database."""

    # What ``recover`` did with the jobs a previous server left, when this executor was created.
    recovered: Recovered

    @abstractmethod
    def submit(self, job_id: str) -> None:
        """Run the QUEUED job ``job_id`` when there is room."""

    @abstractmethod
    def cancel(self, job_id: str) -> bool:
        """Stop the job and mark it CANCELLED; False when it had already ended."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop taking work; running jobs are stopped and marked FAILED, queued ones stay QUEUED."""


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the worker process was killed by {name} (exit code {exitcode})"
    return f"the worker process ended with exit code {exitcode} before the job finished"


class LocalProcessExecutor(Executor):
    """At most ``max_workers`` jobs at a time, each in its own "spawn" child process.

    Spawn, not fork: TensorFlow's threads do not survive a fork, and a fresh interpreter per job means
    a crash or a leak in one job cannot touch the server or the next job. Children write their own
    progress and outcome, so this side only starts them, watches for deaths and cancels.
    Creating the executor runs ``recover`` first, so jobs a previous server left behind never stay stuck.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        max_workers: int = 2,
        worker: Worker = run_job,
        poll_s: float = 0.2,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.settings = settings
        self.max_workers = max_workers
        self._ctx = Context(settings)
        self._worker = worker
        self._poll_s = poll_s
        self._spawn = multiprocessing.get_context("spawn")
        self._lock = threading.Condition()
        self._pending: deque[str] = deque()
        self._running: dict[str, BaseProcess] = {}
        self._stopping = False
        self.recovered: Recovered = recover(self._ctx)
        self._pending.extend(self.recovered.queued)
        self._thread = threading.Thread(target=self._loop, name="tinymlaas-jobs", daemon=True)
        self._thread.start()

    def submit(self, job_id: str) -> None:
        with self._lock:
            if self._stopping:
                raise RuntimeError("the executor is shut down")
            if job_id not in self._pending and job_id not in self._running:
                self._pending.append(job_id)
            self._lock.notify()

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            if job_id in self._pending:
                self._pending.remove(job_id)
            moved = move(self._ctx, job_id, JobState.CANCELLED, message="cancelled")
            process = self._running.pop(job_id, None)
            if process is not None:
                self._stop(process)
            return moved

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            running, self._running = self._running, {}
            for job_id, process in running.items():
                move(self._ctx, job_id, JobState.FAILED, error=SERVER_STOPPED, message="failed")
                self._stop(process)
            self._lock.notify()
        self._thread.join()

    def running(self) -> dict[str, int | None]:
        """Job id -> worker pid of the processes this executor has alive now."""
        with self._lock:
            return {job_id: process.pid for job_id, process in self._running.items()}

    @staticmethod
    def _stop(process: BaseProcess) -> None:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()

    def _loop(self) -> None:
        with self._lock:
            while not self._stopping:
                self._reap()
                while self._pending and len(self._running) < self.max_workers:
                    job_id = self._pending.popleft()
                    process = self._spawn.Process(
                        target=self._worker, args=(self.settings, job_id), name=f"tinymlaas-job-{job_id}"
                    )
                    process.start()
                    self._running[job_id] = process
                self._lock.wait(self._poll_s)

    def _reap(self) -> None:
        for job_id, process in list(self._running.items()):
            if process.is_alive():
                continue
            process.join()
            del self._running[job_id]
            # A no-op when the worker recorded an outcome: only QUEUED and RUNNING can move to FAILED.
            move(self._ctx, job_id, JobState.FAILED, error=_death(process.exitcode), message="failed")
