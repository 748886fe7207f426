"""The FastAPI application: routers under ``/api/v1``, problem-details errors, stable operation ids."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from tinymlaas import __version__
from tinymlaas.api.problems import install_problem_handlers
from tinymlaas.api.routers import (
    boards,
    campaigns,
    cost,
    datasets,
    devices,
    fleet,
    jobs,
    models,
    modules,
    pipeline,
    samples,
    tokens,
    training,
    variants,
)
from tinymlaas.api.schemas import Problem
from tinymlaas.jobs import Executor
from tinymlaas.services.context import Context

__all__ = ["API_PREFIX", "create_api"]

API_PREFIX = "/api/v1"

_PROBLEMS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in (
        (401, "No API token, or an unknown or revoked one."),
        (403, "The token's role may not do this."),
        (404, "No such thing."),
        (409, "Clashes with what is stored."),
        (422, "Invalid input."),
    )
}


def _operation_id(route: APIRoute) -> str:
    # The route function's name: generated clients get list_devices(), not list_devices_api_v1_devices_get().
    return route.name


def create_api(context: Context, executor: Executor | None = None) -> FastAPI:
    """The API alone; without ``executor``, submitted jobs wait QUEUED for a server with one.

    ``server.app.create_app`` mounts the dashboard on it.
    """
    app = FastAPI(
        title="TinyMLaaS",
        version=__version__,
        summary="Collect, train, squeeze, compile and deploy TinyML models to a fleet of boards.",
        generate_unique_id_function=_operation_id,
    )
    app.state.context = context
    app.state.executor = executor
    install_problem_handlers(app)
    for module in (
        boards,
        datasets,
        samples,
        models,
        devices,
        fleet,
        campaigns,
        jobs,
        pipeline,
        training,
        variants,
        modules,
        cost,
        tokens,
    ):
        app.include_router(module.router, prefix=API_PREFIX, responses=_PROBLEMS)
    return app
