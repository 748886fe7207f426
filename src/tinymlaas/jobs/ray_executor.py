"""Jobs as Ray tasks: the executor contract of ``LocalProcessExecutor`` on a Ray instance or cluster.

The only module that imports Ray, so a server on the default local executor never loads it.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import ray
from ray._private.services import canonicalize_bootstrap_address
from ray.exceptions import (
    OutOfMemoryError,
    RayError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)

from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.jobs.executor import Executor, Worker
from tinymlaas.jobs.records import move
from tinymlaas.jobs.recovery import SERVER_STOPPED, Recovered, recover
from tinymlaas.jobs.states import JobState
from tinymlaas.jobs.worker import run_job
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import JobRepository

__all__ = ["RayExecutor"]

# Ray's own connect retries for a GCS address where nothing answers for minutes; a TCP check first
# turns a wrong address into an error within seconds.
CONNECT_TIMEOUT_S = 5.0
# How long a cancelled or stopped task may take to end before this side stops waiting on it.
STOP_TIMEOUT_S = 10.0
# Jobs return nothing through Ray (results go to the job row), so a local instance needs only Ray's
# minimum object store, not the default share of the machine's memory.
OBJECT_STORE_BYTES = 80 * 1024 * 1024
RAY_CLIENT_PORT = 10001
_RAY_CLIENT = "ray://"


def _endpoint(address: str) -> tuple[str, int]:
    """Host and port to check before connecting: ``ray://host[:10001]`` or a GCS ``host:port``."""
    rest = address.removeprefix(_RAY_CLIENT)
    host, sep, port = rest.rpartition(":")
    if not sep:
        host, port = rest, str(RAY_CLIENT_PORT) if address.startswith(_RAY_CLIENT) else ""
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(
            f"Ray address {address!r} is not 'auto', 'ray://host:port' or 'host:port' "
            "(TINYMLAAS_RAY_ADDRESS or --ray-address; empty starts Ray on this machine)"
        )
    return host.strip("[]"), int(port)


def _resolve(address: str) -> str:
    """``auto`` as Ray reads it (RAY_ADDRESS, else the cluster ``ray start`` made on this machine)."""
    if address != "auto":
        return address
    try:
        found = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as exc:
        found, reason = None, str(exc)
    else:
        reason = "RAY_ADDRESS is unset and no 'ray start' cluster runs on this machine"
    if found is None:
        raise Conflict(f"cannot reach Ray at 'auto': {reason}")
    return found


@contextmanager
def _signals_kept() -> Iterator[None]:
    """Keep this process's SIGTERM and SIGINT handlers across ``ray.init``.

    Ray installs a native failure handler for SIGTERM that prints a stack and kills the process, which
    would cut short a server's orderly stop (jobs marked, devices set offline).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            if handler is not None:
                signal.signal(signum, handler)


def _connect(address: str, workers: int) -> str:
    """Start a local Ray instance (``address`` empty) or connect to one; the address jobs run at."""
    if not address:
        # "local": a new instance even where RAY_ADDRESS or a `ray start` cluster would be picked up.
        with _signals_kept():
            started = ray.init(
                address="local",
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                object_store_memory=OBJECT_STORE_BYTES,
                ignore_reinit_error=True,
            )
        return str(started.address_info["gcs_address"])
    target = _resolve(address)
    host, port = _endpoint(target)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise Conflict(
            f"cannot reach Ray at {address!r} ({host}:{port}): {exc.strerror or exc}; start the cluster "
            "or set another address with --ray-address or TINYMLAAS_RAY_ADDRESS"
        ) from exc
    try:
        with _signals_kept():
            ray.init(
                address=target, log_to_driver=False, logging_level=logging.WARNING, ignore_reinit_error=True
            )
    except (ConnectionError, RuntimeError, RayError) as exc:
        raise Conflict(f"cannot connect to Ray at {address!r}: {str(exc).splitlines()[0]}") from exc
    return target


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _ended(ref: ray.ObjectRef) -> str:
    """What became of a finished task, for a job it left without an outcome."""
    try:
        ray.get(ref, timeout=0)
    except OutOfMemoryError as exc:
        return f"Ray killed the worker process because its node ran out of memory ({_first_line(exc)})"
    except WorkerCrashedError as exc:
        return (
            "the Ray worker process died before the job finished: killed, out of memory or a crash "
            f"in native code ({_first_line(exc)})"
        )
    except TaskCancelledError:
        return "the Ray task was cancelled outside this server before the job finished"
    except RayTaskError as exc:
        return f"the job's Ray task raised {_first_line(exc.cause)}"
    except RayError as exc:
        return f"the Ray task ended before the job finished ({_first_line(exc)})"
    return "the Ray task returned before the job finished"


class RayExecutor(Executor):
    """At most ``max_workers`` jobs at a time, each one Ray task in a fresh worker process.

    ``max_calls=1`` gives every job its own process, as the local executor's spawn does, so a crash or
    a leak in one job cannot touch the next; ``max_retries=0`` because a job that died once must be
    seen as failed, not run again behind the user's back. Jobs wait QUEUED in this executor until a
    slot frees, so Ray never holds more than ``max_workers`` of them and a job is RUNNING only once a
    worker took it. Workers write their own progress and outcome; one thread watches the task refs and
    fails the job of a task that ended without one. On a cluster, every node needs this package
    installed and must reach the database and the blob store in ``settings``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        max_workers: int | None = None,
        worker: Worker = run_job,
        poll_s: float = 0.2,
    ) -> None:
        workers = settings.job_workers if max_workers is None else max_workers
        if workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.settings = settings
        self.max_workers = workers
        self._ctx = Context(settings)
        self._poll_s = poll_s
        # First, as the local executor does: jobs RUNNING now belong to a server that is gone, whether
        # or not Ray can be reached; QUEUED ones stay QUEUED until a worker takes them.
        self.recovered: Recovered = recover(self._ctx)
        # A process already connected to Ray keeps its connection; this executor ends only its own.
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            self.address = _connect(settings.ray_address, workers)
        else:
            self.address = ray.get_runtime_context().gcs_address
        self._task = ray.remote(max_calls=1, max_retries=0, num_cpus=1)(worker)
        self._lock = threading.Condition()
        self._pending: deque[str] = deque()
        self._running: dict[str, ray.ObjectRef] = {}
        self._jobs: dict[ray.ObjectRef, str] = {}
        self._stopping = False
        self._pending.extend(self.recovered.queued)
        self._thread = threading.Thread(target=self._loop, name="tinymlaas-ray-jobs", daemon=True)
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
            ref = self._running.pop(job_id, None)
            if ref is not None:
                del self._jobs[ref]
                self._stop([ref])
            return moved

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            running, self._running = self._running, {}
            self._jobs.clear()
            self._stop(list(running.values()))
            # A task Ray had not started yet leaves its job QUEUED for the next server.
            for job_id in self._pids(JobState.RUNNING).keys() & running.keys():
                move(self._ctx, job_id, JobState.FAILED, error=SERVER_STOPPED, message="failed")
            self._lock.notify()
        self._thread.join()
        if self._owns_ray:
            ray.shutdown()

    def running(self) -> dict[str, int | None]:
        """Job id -> worker pid (None until a worker took it) of the tasks handed to Ray and not ended."""
        with self._lock:
            job_ids = list(self._running)
        pids = self._pids(JobState.QUEUED, JobState.RUNNING)
        return {job_id: pids.get(job_id) for job_id in job_ids}

    def _pids(self, *states: JobState) -> dict[str, int | None]:
        """Job id -> worker pid of the stored jobs in ``states``: few, since only active states are asked."""
        with self._ctx.session() as session:
            rows = JobRepository(session).jobs(states=[s.value for s in states])
            return {row.id: row.worker_pid for row in rows}

    @staticmethod
    def _stop(refs: list[ray.ObjectRef]) -> None:
        """Kill the tasks' worker processes (a task not started yet is dropped) and wait for them."""
        for ref in refs:
            ray.cancel(ref, force=True)
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=STOP_TIMEOUT_S, fetch_local=False)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                while self._pending and len(self._running) < self.max_workers:
                    job_id = self._pending.popleft()
                    ref = self._task.options(name=f"tinymlaas-job-{job_id}").remote(self.settings, job_id)
                    self._running[job_id] = ref
                    self._jobs[ref] = job_id
                refs = list(self._jobs)
                if not refs:
                    self._lock.wait(self._poll_s)
                    continue
            # Outside the lock, so submit and cancel are not held up by this wait.
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._poll_s, fetch_local=False)
            with self._lock:
                for ref in ready:
                    ended = self._jobs.pop(ref, None)
                    if ended is None:
                        continue  # cancelled or stopped while this thread waited
                    del self._running[ended]
                    # A no-op when the worker recorded an outcome: only QUEUED and RUNNING can fail.
                    move(self._ctx, ended, JobState.FAILED, error=_ended(ref)[:4096], message="failed")
