"""The FastAPI application: routers under ``/api/v1``, problem-details errors, stable operation ids."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from fastapi.routing import APIRoute

from tinymlaas import __version__
from tinymlaas.api.deps import bearer_refusal
from tinymlaas.api.problems import install_problem_handlers
from tinymlaas.api.routers import (
    audit,
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
    pipelines,
    provisioning,
    samples,
    searches,
    splits,
    tokens,
    training,
    variants,
)
from tinymlaas.api.schemas import Problem
from tinymlaas.httpio.audit import AuditTrail
from tinymlaas.httpio.bounds import BoundedBodies
from tinymlaas.httpio.headers import SecurityHeaders
from tinymlaas.httpio.ratelimit import RateLimit
from tinymlaas.jobs import Executor
from tinymlaas.services.context import Context

__all__ = ["API_PREFIX", "create_api"]

API_PREFIX = "/api/v1"

_PROBLEMS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in (
        (401, "No API token, or an unknown, revoked or expired one."),
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
    settings = context.settings
    app = FastAPI(
        title="TinyMLaaS",
        version=__version__,
        summary="Collect, train, squeeze, compile and deploy TinyML models to a fleet of boards.",
        generate_unique_id_function=_operation_id,
        form_limits={
            "max_files": settings.max_form_files,
            "max_fields": settings.max_form_fields,
            "max_part_size": settings.max_form_part_bytes,
        },
    )
    app.state.context = context
    app.state.executor = executor
    install_problem_handlers(app)
    # Added innermost first: bodies are bounded inside the rate limit, and every answer, refusals
    # included, gets the security headers and its audit event.
    app.add_middleware(
        BoundedBodies,
        body_limit=settings.max_body_bytes,
        upload_limit=settings.max_upload_bytes,
        check_bearer=partial(bearer_refusal, context),
    )
    app.add_middleware(
        RateLimit, rate=settings.api_rate_per_s, burst=settings.api_rate_burst, prefix=API_PREFIX
    )
    app.add_middleware(SecurityHeaders, api_prefix=API_PREFIX, docs_paths=("/docs", "/redoc"))
    app.add_middleware(AuditTrail)
    for module in (
        boards,
        datasets,
        samples,
        models,
        devices,
        provisioning,
        fleet,
        campaigns,
        jobs,
        pipeline,
        pipelines,
        splits,
        searches,
        training,
        variants,
        modules,
        cost,
        tokens,
        audit,
    ):
        app.include_router(module.router, prefix=API_PREFIX, responses=_PROBLEMS)
    return app
