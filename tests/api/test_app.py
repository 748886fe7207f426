"""What every route shares: the OpenAPI document, problem details, and bearer-token checks."""

from __future__ import annotations

import httpx

from tinymlaas.services.auth import Role, authenticate, list_tokens

OPERATION_IDS = {
    "list_boards", "show_board",
    "list_datasets", "show_dataset", "create_dataset", "update_dataset", "import_dataset",
    "list_snapshots", "create_snapshot",
    "list_samples", "show_sample", "show_sample_preview", "upload_sample",
    "set_sample_label", "label_samples",
    "list_training_runs", "show_training_run", "create_training_run",
    "list_models", "show_model", "import_model", "list_model_variants", "squeeze_model",
    "show_variant", "download_variant", "compile_variant",
    "list_modules", "show_module", "show_module_fit", "download_module_package",
    "list_jobs", "show_job", "create_job", "cancel_job",
    "show_pipeline", "delete_dry_run",
    "list_node_pipelines", "create_node_pipeline", "show_node_pipeline", "apply_node_pipeline",
    "stop_node_pipeline", "plan_split", "list_splits", "show_split",
    "search_models", "list_searches", "show_search",
    "list_devices", "show_device", "show_device_telemetry", "list_device_history", "fleet_health",
    "acknowledge_alert",
    "list_provisioned_devices", "provision_a_device", "revoke_a_device",
    "list_campaigns", "show_campaign", "preview_campaign", "create_campaign", "cancel_campaign",
    "rollback_campaign",
    "show_cost_defaults", "estimate_costs",
    "list_tokens", "create_token", "revoke_token",
    "list_audit_events",
}  # fmt: skip


def test_openapi_lists_every_operation_by_its_stable_id(api, problem) -> None:
    document = httpx.get(api.client.base_url.join("/openapi.json")).json()
    ids = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert ids == OPERATION_IDS
    assert all(path.startswith("/api/v1/") for path in document["paths"])
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_an_unknown_route_is_a_problem_document(api, problem) -> None:
    body = problem(api.client.get("/nothing-here"), 404)
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"


def test_a_missing_or_unknown_token_is_401_with_a_bearer_challenge(api, problem) -> None:
    for headers in ({}, {"Authorization": "Bearer tmls_not-a-token"}):
        response = api.client.get("/datasets", headers=headers)
        problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_is_stored_hashed_and_its_use_is_recorded(api, problem) -> None:
    api.client.get("/devices", headers=api.auth(Role.OPERATOR))
    tokens = {t["name"]: t for t in list_tokens(api.context)}
    assert tokens["test operator"]["last_used_at"] is not None
    assert api.tokens[Role.OPERATOR] not in repr(tokens)
    assert authenticate(api.context, api.tokens[Role.VIEWER])["role"] == "viewer"
