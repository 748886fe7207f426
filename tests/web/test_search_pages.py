"""The Search pages: a stored search's trials drawn per board against RAM and latency with the front
joined and labelled, the front's table naming its models, pruned and failed trials with why, the
sentence of a search nothing fitted, and the form to start one, for those who may."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers.pages import figure, texts
from helpers.seeding import csrf_token, logged_in_client
from tinymlaas.jobs import JobKind
from tinymlaas.jobs.service import list_jobs
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.search import show_search
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import SearchRepository
from tinymlaas.storage.tables import SearchRow
from tinymlaas.web.search_summaries import board_sections

BOARD = "nano33ble"
QEMU = "estimate: 41,234 instructions counted in QEMU mps2-an386 × 1.1 cycles per instruction ÷ 64 MHz"
MACS = "rough MAC-based estimate: 9,000 MACs × 4 cycles per MAC (1–10) ÷ 64 MHz; no instruction count"


def _accuracy(value: float, n: int = 60) -> dict[str, Any]:
    return {"name": "accuracy", "value": value, "n": n, "low": value - 0.1, "high": min(1.0, value + 0.08)}


def _measured(
    number: int, config: dict[str, Any], value: float, ram: int, latency: float, *, within: bool, basis: str
) -> dict[str, Any]:
    return {
        "trial": number,
        "state": "measured",
        "config": config,
        "accuracy": _accuracy(value),
        "boards": {
            BOARD: {
                "runtime": "native",
                "ram_bytes": ram,
                "flash_bytes": 3 * ram,
                "latency_ms": latency,
                "latency_low": latency / 2,
                "latency_high": latency * 2,
                "latency_basis": basis,
                "within_budget": within,
                "excess": 0.0 if within else 0.5,
                "over": [] if within else [f"RAM {ram:,} B over 16,384 B"],
            }
        },
    }


TRIALS = [
    _measured(1, {"width": 0.25, "depth": 1}, 0.72, 4_096, 0.8, within=True, basis=QEMU),
    _measured(2, {"width": 0.5, "depth": 2}, 0.86, 9_216, 1.9, within=True, basis=QEMU),
    _measured(3, {"width": 0.5, "depth": 1}, 0.70, 8_192, 2.5, within=True, basis=MACS),
    _measured(4, {"width": 2.0, "depth": 3}, 0.93, 40_960, 7.5, within=False, basis=QEMU),
    {
        "trial": 5,
        "state": "pruned",
        "config": {"width": 4.0, "depth": 4},
        "reason": "nano33ble: estimated flash 4,100,000 B over 262,144 B",
    },
    {"trial": 6, "state": "failed", "config": {"width": 1.0, "depth": 2}, "error": "ValueError: arena"},
]
MODELS = {
    "1": {"id": "mdl_front1", "name": "gestures-search", "version": 1, "variant": "var_f1"},
    "2": {"id": "mdl_front2", "name": "gestures-search", "version": 2, "variant": "var_f2"},
}
NOTHING = (
    "No trial met the budget on nano33ble: of 2 trials, 1 were pruned and 0 failed; the closest was "
    "trial 1 (width 1, depth 2), nano33ble: RAM 30,000 B over 1,024 B."
)


def seed_searches(context: Context) -> None:
    """A search with a front on nano33ble, and an older one where nothing met the budget."""
    now = datetime.now(UTC)
    common = {"dataset": "gestures", "snapshot_id": "snap_seed", "arch": "cnn1d", "boards": [BOARD]}
    with context.session() as session:
        repo = SearchRepository(session)
        repo.add(
            SearchRow(
                id="srch_front",
                **common,
                budget={"max_ram": 16 * 1024, "max_flash": None, "max_latency_ms": 5.0},
                trials_planned=6,
                workers=2,
                epochs=3,
                state="succeeded",
                trials=TRIALS,
                fronts={BOARD: {"ram": [1, 2], "latency": [1, 2], "models": MODELS}},
                summary={
                    "counts": {"measured": 4, "pruned": 1, "failed": 1},
                    "closest": [],
                    "sentence": None,
                    "notes": [],
                    "wall_s": 42.0,
                    "ray": "a local Ray with 2 CPUs",
                },
                created_at=now,
                finished_at=now,
            )
        )
        repo.add(
            SearchRow(
                id="srch_none",
                **common,
                budget={"max_ram": 1024, "max_flash": None, "max_latency_ms": None},
                trials_planned=2,
                workers=1,
                epochs=1,
                state="succeeded",
                trials=[
                    {**_measured(1, {"width": 1.0, "depth": 2}, 0.8, 30_000, 3.0, within=False, basis=QEMU)},
                    {**TRIALS[4], "trial": 2},
                ],
                fronts={BOARD: {"ram": [], "latency": [], "models": {}}},
                summary={
                    "counts": {"measured": 1, "pruned": 1, "failed": 0},
                    "closest": [1, 2],
                    "sentence": NOTHING,
                    "notes": [],
                },
                created_at=now - timedelta(hours=1),
                finished_at=now - timedelta(hours=1),
            )
        )


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("search-pages") / "data"))
    DatasetService(context).generate("gestures", "gestures", samples=40, seed=5)
    seed_searches(context)
    return context


@pytest.fixture(scope="module")
def viewer(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.VIEWER) as client:
        yield client


@pytest.fixture(scope="module")
def scientist(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.DATA_SCIENTIST, landing="/searches") as client:
        yield client


def test_the_list_shows_each_search_with_its_counts_and_best_accuracy_within_budget(viewer) -> None:  # type: ignore[no-untyped-def]
    page = viewer.get("/searches").text
    assert '<a href="/searches" class="current">Search</a>' in page
    rows = texts(page, "search-row")
    assert len(rows) == 2 and "srch_front" in rows[0] and "srch_none" in rows[1]  # newest first
    assert "RAM ≤ 16.0 KiB, latency ≤ 5 ms" in rows[0] and "succeeded 4 1 1" in rows[0]
    # Trial 4 is the most accurate but over the budget: the best within it is trial 2.
    assert texts(page, "search-best") == [
        "86.0 % ± 9.0 (n=60, trial 2, on nano33ble)",
        "nothing met the budget",
    ]
    assert texts(page, "search-jobs-none") == ["No search is running."]
    assert "search-form" not in page and 'name="csrf_token"' not in page.split("</header>")[1]


def test_each_board_draws_every_measured_trial_against_ram_and_latency_with_the_front(viewer) -> None:  # type: ignore[no-untyped-def]
    page = viewer.get("/searches/srch_front").text
    measured = [t for t in TRIALS if t["state"] == "measured"]
    for axis, key, scale in (("ram", "ram_bytes", 1024), ("latency", "latency_ms", 1)):
        chart = figure(page, f"chart-search-{BOARD}-{axis}")
        within, over, front = chart["data"]
        assert within["name"] == "within budget (3)" and over["name"] == "over budget (1)"
        assert over["marker"]["symbol"] == "x" and within["marker"]["symbol"] == "circle"
        drawn = sorted(zip(within["x"] + over["x"], within["y"] + over["y"], strict=True))
        expected = [
            (round(t["boards"][BOARD][key] / scale, 4), round(100 * t["accuracy"]["value"], 2))
            for t in measured
        ]
        assert drawn == sorted(expected)
        assert front["line"]["shape"] == "hv" and front["text"] == ["gestures-search:1", "gestures-search:2"]
        assert front["y"] == [72.0, 86.0]
        [budget] = chart["layout"]["shapes"]
        assert budget["x0"] == (16.0 if axis == "ram" else 5.0)
        title = chart["layout"]["title"]["text"]
        named = "RAM" if axis == "ram" else "latency"
        assert title == f"Accuracy vs {named} on {BOARD}<br>4 measured trials, accuracy on n=60 test samples"
    ram = figure(page, f"chart-search-{BOARD}-ram")
    hover = " ".join(ram["data"][0]["hovertext"])
    assert "width 0.25, depth 1" in hover and "95 % CI 62.0 %–80.0 %, n=60" in hover
    assert "QEMU instruction counts" in hover and "MAC estimate" in hover
    [source] = texts(page, "search-source")
    assert (
        "test split of snapshot snap_seed" in source
        and "measured in QEMU (static RAM + painted stack)" in source
    )
    assert source.endswith("Latency: MAC estimate, QEMU instruction counts.")


def test_the_front_table_names_its_models_and_the_figures_basis(viewer) -> None:  # type: ignore[no-untyped-def]
    page = viewer.get("/searches/srch_front").text
    rows = texts(page, "search-front-row")
    assert [r.split()[0] for r in rows] == ["1", "2"]
    assert "72.0 % ± 9.0" in rows[0] and "4.0 KiB" in rows[0] and "QEMU instruction counts" in rows[0]
    assert texts(page, "search-front-model") == ["gestures-search:1", "gestures-search:2"]
    assert '<a href="/models/mdl_front2">gestures-search:2</a>' in page
    assert QEMU in " ".join(texts(page, "search-bases"))
    problems = texts(page, "search-problem")
    assert problems == [
        "5 pruned width 4, depth 4 nano33ble: estimated flash 4,100,000 B over 262,144 B",
        "6 failed width 1, depth 2 ValueError: arena",
    ]
    assert texts(page, "search-sentence") == []
    assert 'aria-live="polite" data-poll' not in page


def test_a_search_where_nothing_fitted_says_so_first_and_names_the_closest(viewer) -> None:  # type: ignore[no-untyped-def]
    page = viewer.get("/searches/srch_none").text
    assert texts(page, "search-sentence") == [NOTHING]
    assert page.index('data-testid="search-sentence"') < page.index('data-testid="search-board"')
    assert texts(page, "search-closest") == [
        "trial 1 (measured): width 1, depth 2 trial 2 (pruned): width 4, depth 4"
    ]
    assert texts(page, "search-front-empty") == [f"No trial met the budget on {BOARD}."]
    chart = figure(page, f"chart-search-{BOARD}-ram")
    assert [t["name"] for t in chart["data"]] == ["within budget (0)", "over budget (1)"]


def test_an_unknown_search_is_a_404_page(viewer) -> None:  # type: ignore[no-untyped-def]
    response = viewer.get("/searches/srch_missing")
    assert response.status_code == 404 and "srch_missing" in response.text


def test_a_data_scientist_starts_a_search_through_the_form_and_sees_it_run(  # type: ignore[no-untyped-def]
    scientist, context: Context
) -> None:
    page = scientist.get("/searches").text
    form = re.search(r'<form class="panel" method="post" action="/searches".*?</form>', page, re.S)
    assert form and 'name="csrf_token"' in form.group(0)
    token = csrf_token(form.group(0))
    del scientist.headers["X-CSRF-Token"]  # only what the form itself carries
    refused = scientist.post(
        "/searches", data={"csrf_token": token, "dataset": "gestures", "boards": ["nope"]}
    )
    assert refused.status_code == 422 and "boards: no board &#39;nope&#39;" in refused.text
    refused = scientist.post(
        "/searches", data={"csrf_token": token, "dataset": "gestures", "boards": [BOARD], "max_ram": "lots"}
    )
    assert refused.status_code == 422 and "max_ram &#39;lots&#39; is not a size" in refused.text
    started = scientist.post(
        "/searches",
        data={"csrf_token": token, "dataset": "gestures", "boards": [BOARD], "max_ram": "32k", "trials": "4"},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    [job] = list_jobs(context, kind=JobKind.SEARCH)
    assert job["params"] == {"dataset": "gestures", "boards": [BOARD], "max_ram": 32768, "trials": 4}
    page = scientist.get("/searches").text
    assert texts(page, "search-job-done") == ["0 of 4"]
    assert 'id="live" aria-live="polite" data-poll' in page
    # The worker's search row, as run_search writes it when it starts: its page follows the job.
    with context.session() as session:
        SearchRepository(session).add(
            SearchRow(
                id="srch_running", dataset="gestures", snapshot_id="snap_run", arch="cnn1d", boards=[BOARD],
                budget={"max_ram": 32768}, trials_planned=4, workers=1, epochs=20, state="running",
                trials=[], fronts={}, summary={},
            )
        )  # fmt: skip
    running = scientist.get("/searches/srch_running").text
    assert texts(running, "search-progress") == [f"Job {job['id']} : 0 of 4 trials done — queued"]
    assert 'id="live" aria-live="polite" data-poll' in running and "search-board" not in running
    forged = scientist.post(
        "/searches", data={"dataset": "gestures", "boards": [BOARD]}, headers={"X-CSRF-Token": "forged"}
    )
    assert forged.status_code == 403 and len(list_jobs(context, kind=JobKind.SEARCH)) == 1


def test_a_budget_far_beyond_every_trial_is_named_at_the_charts_edge_not_drawn(context: Context) -> None:
    search = show_search(context, "srch_front")
    roomy = {**search, "budget": {"max_ram": 4 * 1024 * 1024, "max_flash": None, "max_latency_ms": None}}
    [section] = board_sections(roomy, {BOARD: context.catalog.board(BOARD)})
    ram = section["figures"][0]
    farthest = max(x for trace in ram["data"] for x in trace["x"])
    assert ram["layout"]["shapes"] == [] and ram["layout"]["xaxis"]["range"][1] < 2 * farthest
    [note] = ram["layout"]["annotations"]
    assert note["text"].startswith("budget ") and "beyond the chart" in note["text"]
