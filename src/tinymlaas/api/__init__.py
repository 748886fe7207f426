"""The REST API under ``/api/v1``: FastAPI routes over the same services the CLI calls.

``tinymlaas.api.app.create_api`` builds it; ``tinymlaas.server.app`` mounts the dashboard beside it.
"""
