"""schemathesis against ``/openapi.json``: generated requests to every operation never get a 5xx.

Calls carry an admin token, so they reach the routes' own validation and services rather than stopping
at 401; the store is seeded like the other API tests' one. A 5xx here is a bug: bad input must be a 4xx
problem document naming what was wrong.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.conftest import seed_store
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings

# Enough examples per operation to reach its validation edges; the suite stays under a few minutes.
EXAMPLES_PER_OPERATION = 12
_SLOW_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]


# Built at import, since schemathesis parametrizes at collection time; its store is a fresh directory.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="tinymlaas-fuzz-")) / "data"
_CONTEXT = Context(Settings(data_dir=_DATA_DIR, max_upload_bytes=256 * 1024))
seed_store(_CONTEXT)
_TOKEN = create_token(_CONTEXT, Role.ADMIN, "fuzz")[1]
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_CONTEXT))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=_SLOW_OK,
)
def test_no_generated_request_gets_a_server_error(case) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_TOKEN}"})
    case.validate_response(response, checks=[not_a_server_error])
