"""The REST API under ``/api/v1``: FastAPI routes over the same services the CLI calls."""

from tinymlaas.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
