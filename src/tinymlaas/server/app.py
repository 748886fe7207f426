"""The whole HTTP application: the REST API with the dashboard mounted beside it.

The API and the dashboard are sibling adapters; neither imports the other, so they meet here.
"""

from __future__ import annotations

from fastapi import FastAPI

from tinymlaas.api.app import create_api
from tinymlaas.jobs import Executor
from tinymlaas.services.context import Context
from tinymlaas.services.device_link import DeviceLink
from tinymlaas.web import mount_dashboard

__all__ = ["create_app"]


def create_app(
    context: Context, executor: Executor | None = None, devices: DeviceLink | None = None
) -> FastAPI:
    """The API and the dashboard; without ``executor``, submitted jobs wait QUEUED for a server with one,
    and without ``devices`` (the LwM2M server of this process) the pages cannot reach a device."""
    app = create_api(context, executor)
    app.state.devices = devices
    # After the API: the dashboard's error handler hands paths under /api to the API's handler.
    mount_dashboard(app)
    return app
