"""The lifecycle as a line of steps, each with a state worked out from what is stored.

Pure functions over the services' plain views. ``pipeline_steps`` reads the whole store (datasets,
models with their variants and modules, campaigns, devices, jobs under way); ``dry_run_steps`` reads
one ``lifecycle`` job, whose log names each phase as it starts ("snapshot …", "train …", ...).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["STEPS", "dry_run_steps", "dry_run_verdicts", "job_active", "pipeline_steps"]

STEPS = ("collect", "label", "train", "squeeze", "compile", "deploy")
_ACTIVE_JOB_STATES = ("queued", "running")
# The lifecycle job's phases, in order, and the step of the line each one works on.
_PHASES = {"snapshot": "label", "train": "train", "squeeze": "squeeze", "compile": "compile"}
_PHASE_TEXT = {
    "snapshot": "freeze the labelled samples",
    "train": "train a model",
    "squeeze": "quantize and measure in TFLM",
    "compile": "compile and check the fit per board",
}
_EPOCH = re.compile(r"^epoch (\d+)/(\d+)")


def _step(key: str, state: str, headline: str, detail: str = "") -> dict[str, Any]:
    return {"key": key, "title": key.capitalize(), "state": state, "headline": headline, "detail": detail}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _state(running: bool, produced: bool, needs_attention: bool = False) -> str:
    if running:
        return "running"
    if needs_attention:
        return "attention"
    return "done" if produced else "waiting"


def job_active(job: dict[str, Any] | None) -> bool:
    return job is not None and job["state"] in _ACTIVE_JOB_STATES


def pipeline_steps(
    datasets: list[dict[str, Any]],
    models: list[dict[str, Any]],
    campaigns: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """collect → label → train → squeeze → compile → deploy, as the store stands.

    ``datasets`` carry ``samples``, ``unlabelled``, ``collected`` and ``snapshots`` counts; ``models``
    are ``show_model`` views; ``jobs`` are the jobs under way. A step is ``done`` once it produced
    something, ``running`` while a job or campaign works on it, ``attention`` when what it produced
    needs a person (unlabelled samples, no module that fits, failed installations), else ``waiting``.
    """
    busy = {job["kind"] for job in jobs if job["state"] == "running"}
    samples = sum(d["samples"] for d in datasets)
    unlabelled = sum(d["unlabelled"] for d in datasets)
    collected = sum(d["collected"] for d in datasets)
    snapshots = sum(d["snapshots"] for d in datasets)
    trained = [m for m in models if m["run"] is not None]
    variants = [v for m in models for v in m["variants"]]
    modules = [x for m in models for x in m["modules"]]
    fitting = [x for x in modules if x["fits"]]
    running = [c for c in campaigns if c["state"] in ("running", "rolling_back")]
    failed = sum(c["counts"].get("failed", 0) for c in campaigns)
    on_model = sum(1 for d in devices if d["model"])

    return [
        _step(
            "collect",
            "done" if samples else "waiting",
            f"{_plural(samples, 'sample')} in {_plural(len(datasets), 'dataset')}",
            f"{collected} uploaded by devices" if samples else "generate, import or collect a dataset",
        ),
        _step(
            "label",
            "waiting" if not samples else "attention" if unlabelled else "done",
            f"{_plural(unlabelled, 'sample')} without a label" if unlabelled else "every sample labelled",
            f"{_plural(snapshots, 'snapshot')} frozen",
        ),
        _step(
            "train",
            _state(bool(busy & {"train", "lifecycle"}), bool(trained)),
            f"{_plural(len(trained), 'training run')}",
            _latest_metric(trained),
        ),
        _step(
            "squeeze",
            _state("squeeze" in busy, bool(variants)),
            f"{_plural(len(variants), 'variant')}",
            ", ".join(sorted({v["quantization"] for v in variants})),
        ),
        _step(
            "compile",
            _state("compile" in busy, bool(modules), bool(modules) and not fitting),
            f"{len(fitting)} of {_plural(len(modules), 'module')} fit their board",
            ", ".join(sorted({x["board"] for x in fitting})),
        ),
        _step(
            "deploy",
            _state(bool(running), bool(campaigns), bool(failed)),
            f"{_plural(len(campaigns), 'campaign')}, {len(running)} under way",
            f"{on_model} of {_plural(len(devices), 'device')} report a model"
            + (f"; {_plural(failed, 'failed installation')}" if failed else ""),
        ),
    ]


def _latest_metric(trained: list[dict[str, Any]]) -> str:
    if not trained:
        return ""
    latest = max(trained, key=lambda m: m["created_at"])
    metric = latest["run"]["metric"]
    return f"latest {latest['name']} v{latest['version']}: {metric['name']} {metric['value']:.3f}"


def _started_phases(log: str) -> list[str]:
    started = [line.removesuffix(" …") for line in log.splitlines()]
    return [phase for phase in _PHASES if phase in started]


def _train_detail(log: str) -> str:
    epochs = [m for m in (_EPOCH.match(line) for line in log.splitlines()) if m]
    return f"epoch {epochs[-1][1]} of at most {epochs[-1][2]}" if epochs else ""


def _phase_state(phase: str, started: list[str], job_state: str) -> str:
    if phase not in started:
        return "waiting" if job_state in _ACTIVE_JOB_STATES else "not reached"
    if phase != started[-1] or job_state == "succeeded":
        return "done"
    return job_state  # running, failed or cancelled in this phase


def dry_run_steps(job: dict[str, Any], dataset: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One lifecycle job as the line of steps: where it stands, phase by phase, from its log.

    ``job`` is a ``show_job`` view (with its log); ``dataset`` the dataset it runs on, if it still
    exists. Deploying is not part of a dry run: it ends with each board's fit verdict.
    """
    started = _started_phases(job.get("log") or "")
    timings = (job["result"] or {}).get("timings_s", {})
    steps = [
        _step(
            "collect",
            "done" if dataset and dataset["samples"] else "attention",
            f"{_plural(dataset['samples'], 'sample')} in {dataset['name']}"
            if dataset
            else f"dataset {job['params']['dataset']} no longer exists",
        )
    ]
    for phase, key in _PHASES.items():
        state = _phase_state(phase, started, job["state"])
        detail = f"{timings[phase]:.1f} s" if phase in timings else ""
        if key == "train" and state == "running":
            detail = _train_detail(job.get("log") or "")
        steps.append(_step(key, state, _PHASE_TEXT[phase], detail))
    verdicts = dry_run_verdicts(job)
    fits = sum(1 for v in verdicts if v["fits"])
    steps.append(
        _step(
            "deploy",
            "fit checked" if verdicts else "not part of a dry run",
            f"{fits} of {_plural(len(verdicts), 'module')} fit their board"
            if verdicts
            else "a dry run ends with each board's fit verdict",
        )
    )
    return steps


def dry_run_verdicts(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The board × variant rows a finished lifecycle job reported, in its order."""
    return list((job["result"] or {}).get("variants", []))
