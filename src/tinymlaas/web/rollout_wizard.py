"""What the rollout wizard offers: models by name and version, then each board's variants of the chosen one.

Pure functions over the services' model and campaign views. Only modules a campaign may send (built
and fitting their board) are offered. A degraded variant is offered only once the operator allows a
degraded module, and one whose self-test failed (it could not run in its runtime when measured, or
devices reported an installation failure for it, which a failed self-test is reported as) is marked
so; neither is ever chosen by default. Every label names the variant's quantization and method, the
board and the module id, so no two read alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.lwm2m.core import UpdateResult
from tinymlaas.services.campaigns import CampaignView
from tinymlaas.services.models import ModelDetail
from tinymlaas.services.views import ModuleView, VariantView

__all__ = ["chosen_model", "model_choices", "selftest_failures", "variant_choices"]


def selftest_failures(campaigns: Iterable[CampaignView]) -> Counter[str]:
    """Module id -> how many installations of it failed on a device with an installation failure."""
    failed: Counter[str] = Counter()
    for campaign in campaigns:
        failed[campaign.module] += sum(
            1
            for i in campaign.installations
            if i.state == InstallationState.FAILED.value
            and i.update_result == UpdateResult.INSTALLATION_FAILURE
        )
    return +failed


def model_choices(models: list[ModelDetail]) -> list[dict[str, Any]]:
    """Every model, newest first, with how many of its modules a campaign could send."""
    return [
        {
            "id": model.id,
            "label": f"{model.name} v{model.version}",
            "deployable": sum(1 for m in model.modules if m.deployable),
        }
        for model in sorted(models, key=lambda m: m.created_at, reverse=True)
    ]


def chosen_model(models: list[ModelDetail], model_id: str, module_id: str) -> ModelDetail | None:
    """The model asked for by id or, when none is, the one ``module_id`` was compiled from."""
    for model in models:
        if model_id and model.id == model_id:
            return model
    if not model_id and module_id:
        for model in models:
            if any(m.id == module_id for m in model.modules):
                return model
    return None


def _selftest_problem(module: ModuleView, variant: VariantView | None, failures: Counter[str]) -> str:
    if variant is not None and module.runtime in variant.runtime_errors:
        return f"self-test failed: {variant.runtime_errors[module.runtime]}"
    if failures[module.id]:
        count = failures[module.id]
        return f"self-test failed on {count} device{'' if count == 1 else 's'}"
    return ""


def _label(module: ModuleView, variant: VariantView | None, problems: list[str]) -> str:
    kind = "?" if variant is None else variant.quantization
    if variant is not None and variant.method:
        kind += f"·{variant.method}"
    return " · ".join([kind, f"{module.board} ({module.runtime})", *problems, module.id])


def variant_choices(
    model: ModelDetail, failures: Counter[str], *, allow_degraded: bool, wanted: str, board: str = ""
) -> tuple[list[dict[str, Any]], str]:
    """(boards, each with its deployable variants best first; the module chosen).

    The chosen module is ``wanted`` when it is one of them (a degraded one too, so the gate can say
    why it is refused), else the best variant that is neither degraded nor failed its self-test, for
    ``board`` (the board the targets are selected by) when it has one, else for the first board; ""
    when there is none.
    """
    variants = {v.id: v for v in model.variants}
    boards: dict[str, list[dict[str, Any]]] = {}
    for module in reversed(model.modules):  # newest first among equals
        if not module.deployable:
            continue
        variant = variants.get(module.variant)
        degraded = variant is not None and variant.degraded
        selftest = _selftest_problem(module, variant, failures)
        problems = [p for p in ("degraded" if degraded else "", selftest) if p]
        boards.setdefault(module.board, []).append(
            {
                "id": module.id,
                "label": _label(module, variant, problems),
                "degraded": degraded,
                "degraded_reason": variant.degraded_reason if variant is not None else None,
                "selftest": selftest,
                "selectable": allow_degraded or not degraded,
                "clean": not problems,
                "size_bytes": variant.size_bytes if variant is not None else None,
            }
        )
    grouped = [
        {"board": board, "variants": sorted(choices, key=lambda c: (not c["clean"], c["size_bytes"] or 0))}
        for board, choices in sorted(boards.items())
    ]
    offered = [c for group in grouped for c in group["variants"]]
    if any(c["id"] == wanted for c in offered):
        return grouped, wanted
    preferred = [c for group in grouped if group["board"] == board for c in group["variants"]]
    return grouped, next((c["id"] for c in (*preferred, *offered) if c["clean"]), "")
