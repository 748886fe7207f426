"""The REST API under ``/api/v1``: FastAPI routes over the same services the CLI calls.

``tinymlaas.api.app.create_app`` builds the application. This package imports nothing eagerly, so
the dashboard can share its upload handling (``api.uploads``) without importing the whole app.
"""
