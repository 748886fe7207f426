"""The HTTP side of a server process: REST API, dashboard and job executor on one uvicorn server.

``serve`` and ``demo`` both run it inside their own event loop beside the LwM2M server, and say
themselves what the executor recovered at start-up: this module prints nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from tinymlaas.errors import Conflict
from tinymlaas.jobs import Executor, LocalProcessExecutor, Recovered
from tinymlaas.server.app import create_app
from tinymlaas.services.context import Context
from tinymlaas.services.device_link import DeviceLink
from tinymlaas.services.sweep import sweep_leftovers
from tinymlaas.settings import Settings

__all__ = ["HttpServer"]


class _EmbeddedServer(uvicorn.Server):
    """uvicorn sharing ``serve``'s event loop: ``serve`` owns SIGINT/SIGTERM and stops both servers.

    Left to itself uvicorn would replace those handlers and re-raise the signal after its own shutdown,
    which would kill the process before the LwM2M server marks its devices offline.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _start_executor(settings: Settings) -> tuple[Executor, str]:
    """The executor ``settings.executor`` names, and where it runs jobs, said for people.

    Ray is imported here, on demand, so a server on the default local executor never loads it.
    """
    workers = settings.job_workers
    if settings.executor == "ray":
        from tinymlaas.jobs.ray_executor import RayExecutor

        on_ray = RayExecutor(settings, max_workers=workers)
        started = "" if settings.ray_address else "a Ray instance started for this server, "
        return on_ray, f"Ray tasks on {started}{on_ray.address} ({workers} at once)"
    return LocalProcessExecutor(settings, max_workers=workers), f"local worker processes ({workers} at once)"


class HttpServer:
    """The REST API and dashboard on a socket bound up front, so a busy port fails before anything prints.

    The job executor lives with it: jobs are submitted over HTTP, and starting the executor first
    marks jobs a previous server left running as failed and takes up those it left queued.
    """

    def __init__(self, context: Context, host: str, port: int) -> None:
        try:
            self.sock = socket.create_server((host, port), reuse_port=False)
        except OSError as exc:
            raise Conflict(
                f"cannot listen for HTTP on {host}:{port}: {exc.strerror or exc}; choose another port with "
                "--http-port N (make demo DEMO_ARGS='--http-port N') or TINYMLAAS_HTTP_PORT=N"
            ) from exc
        bound_host, bound_port = self.sock.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.context = context
        self.executor: Executor | None = None
        # Where background jobs run, said for people; set once the executor started.
        self.jobs_run_as = ""
        self.server: _EmbeddedServer | None = None
        self.task: asyncio.Task[None] | None = None
        self.app: FastAPI | None = None

    async def start(self, devices: DeviceLink | None = None) -> Recovered:
        """Sweep what earlier processes left behind, start the executor, then serve; the caller tells
        what became of a previous server's jobs. The sweep logs what it removed. ``devices`` is the
        LwM2M server of this process, through which the dashboard reads and executes on devices."""
        await asyncio.to_thread(sweep_leftovers, self.context)
        self.executor, self.jobs_run_as = _start_executor(self.context.settings)
        app = self.app = create_app(self.context, self.executor, devices)
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
        self.server = _EmbeddedServer(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                await self.task  # startup failed: raise its error here
                raise Conflict(f"the HTTP server on {self.url} stopped while starting")
            await asyncio.sleep(0.01)
        return self.executor.recovered

    def attach_devices(self, devices: DeviceLink | None) -> None:
        """Let the running dashboard reach the devices of an LwM2M server started after it (the demo
        starts its fleet once the models are trained), or no longer (``None``, as it stops)."""
        if self.app is not None:
            self.app.state.devices = devices

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.task is not None:
            await self.task
        self.sock.close()
        if self.executor is not None:
            # Joins the executor's thread and stops running workers (their jobs are marked failed).
            await asyncio.to_thread(self.executor.shutdown)
