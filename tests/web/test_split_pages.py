"""A model page's split plans: every cut of a real plan in a table and a stacked bar per cut, each
column's source sentence, the older plan reachable, and the built cut's measured accuracy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers.digits_cnn import digits_cnn_store
from helpers.pages import figure, texts
from helpers.seeding import logged_in_client
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.splitting import build_split, plan_model_split
from tinymlaas.web.split_summaries import cut_chart_text, split_section

SEED = 5


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    """The digits CNN's store, of this module's own (its plans are counted)."""
    return digits_cnn_store(tmp_path_factory.mktemp("split-pages") / "data")[0]


@pytest.fixture(scope="module")
def plans(context: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """An older plan over Wi-Fi, then a newer one over BLE with a middle cut built."""
    older = plan_model_split(context, "digits-cnn", "pico:wifi:rpi4")
    newer = plan_model_split(context, "digits-cnn", "nano33ble:ble:rpi4")
    interior = [c["index"] for c in newer["candidates"] if 0 < c["index"] < newer["operators"]]
    built = build_split(context, newer["id"], cut=interior[len(interior) // 2])
    return older, built


@pytest.fixture(scope="module")
def viewer(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.VIEWER) as client:
        yield client


def test_the_newest_plan_lists_every_cut_with_its_figures_and_the_choice(
    viewer: TestClient, plans: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, plan = plans
    page = viewer.get("/models/mdl_split").text
    assert f'data-testid="split-section" data-plan="{plan["id"]}"' in page
    candidates = plan["candidates"]
    rows = texts(page, "split-cut")
    assert len(rows) == len(candidates) and candidates[0]["index"] == 0
    assert candidates[-1]["index"] == plan["operators"]  # both extremes are rows
    assert "everything on rpi4" in rows[0] and "everything on nano33ble" in rows[-1]
    assert texts(page, "split-total") == [f"{c['total_ms']:,.2f} ms" for c in candidates]
    assert texts(page, "split-payload") == [f"{c['payload_bytes']:,} B" for c in candidates]
    assert texts(page, "split-transfer")[0].startswith(f"{candidates[0]['transfer']['ms']:,.2f} ms")
    chosen = [c["index"] for c in candidates if c["index"] == plan["chosen"]]
    assert f'data-cut="{chosen[0]}" data-fits="true" data-chosen="true"' in page
    assert page.count('data-chosen="true"') == 1
    assert texts(page, "split-chosen")[0].startswith(f"Chosen: cut {plan['chosen']}")
    for candidate in candidates:
        assert f'data-cut="{candidate["index"]}" data-fits="{str(candidate["fits"]).lower()}"' in page
    # nano33ble's board file gives sourced power figures, so each cut shows the device's energy.
    energies = texts(page, "split-energy")
    assert [e.split(" mJ")[0] for e in energies] == [f"{c['device_energy']['mj']:.3f}" for c in candidates]
    assert "nRF52840 Product Specification" in " ".join(texts(page, "split-basis"))


def test_the_chart_stacks_the_three_times_per_cut_and_marks_the_cuts_that_do_not_fit(
    viewer: TestClient, plans: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, plan = plans
    page = viewer.get("/models/mdl_split").text
    chart = figure(page, "chart-split")
    assert chart["layout"]["barmode"] == "stack"
    assert [t["name"] for t in chart["data"]] == ["device compute", "transfer", "remote compute"]
    assert all(t["orientation"] == "h" for t in chart["data"])
    device, transfer, remote = chart["data"]
    for i, candidate in enumerate(plan["candidates"]):
        stacked = device["x"][i] + transfer["x"][i] + remote["x"][i]
        assert stacked == pytest.approx(candidate["total_ms"], abs=0.01)
        bar = device["y"][i]
        assert bar.startswith(f"cut {candidate['index']}")
        assert ("does not fit" in bar) is (not candidate["fits"])
        assert (device["marker"]["pattern"]["shape"][i] == "x") is (not candidate["fits"])
    assert device["y"][0] == "cut 0" + ("" if plan["candidates"][0]["fits"] else " (does not fit)")
    text = cut_chart_text(plan)
    assert f'aria-label="{text}"' in page.replace("&#39;", "'").replace("&gt;", ">")
    assert f"total {plan['candidates'][-1]['total_ms']:.2f} ms" in text


def test_every_column_says_where_its_figures_come_from(
    viewer: TestClient, plans: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, plan = plans
    page = viewer.get("/models/mdl_split").text
    shown = " ".join(texts(page, "split-basis"))
    for candidate in plan["candidates"]:
        for part in ("device", "transfer", "remote"):
            assert candidate[part]["basis"] in shown
    for note in plan["notes"]:
        assert note in texts(page, "split-notes")[0]


def test_the_built_cut_shows_its_modules_and_measured_accuracy(
    viewer: TestClient, plans: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, plan = plans
    build, accuracy = plan["build"], plan["build"]["accuracy"]
    page = viewer.get("/models/mdl_split").text
    parts = texts(page, "split-part")
    assert parts[0].startswith(f"head {build['head']['model']} nano33ble native")
    assert parts[1].startswith(f"tail {build['tail']['model']} rpi4 litert")
    assert texts(page, "split-accuracy-split") == [f"{100 * accuracy['split']:.1f} %"]
    assert texts(page, "split-accuracy-unsplit") == [f"{100 * accuracy['unsplit']:.1f} %"]
    assert texts(page, "split-accuracy-samples") == [str(accuracy["samples"])]
    assert texts(page, "split-accuracy-differing") == [str(accuracy["outputs_differing"])]
    assert texts(page, "split-accuracy-basis") == [accuracy["basis"]]


def test_an_older_plan_is_linked_and_shown_when_chosen(
    viewer: TestClient, plans: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    older, newer = plans
    page = viewer.get("/models/mdl_split").text
    assert texts(page, "split-plan-current") == ["nano33ble:ble:rpi4"]
    assert f'href="/models/mdl_split?split={older["id"]}#split-plans"' in page
    chosen = viewer.get("/models/mdl_split", params={"split": older["id"]}).text
    assert f'data-testid="split-section" data-plan="{older["id"]}"' in chosen
    assert texts(chosen, "split-plan-current") == ["pico:wifi:rpi4"]
    assert texts(chosen, "split-total") == [f"{c['total_ms']:,.2f} ms" for c in older["candidates"]]
    assert 'data-testid="split-build"' not in chosen
    assert texts(chosen, "split-energy") == []  # no source gives the pico's power figures
    # An unknown plan id falls back to the newest rather than failing the model's page.
    fallback = viewer.get("/models/mdl_split", params={"split": "spl_missing"}).text
    assert f'data-plan="{newer["id"]}"' in fallback


def test_a_model_without_a_plan_has_no_split_section(
    viewer: TestClient, plans: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    assert split_section([]) is None
    head = plans[1]["build"]["head"]["model"]  # a built part is a model of its own, never cut itself
    page = viewer.get(f"/models/{head}")
    assert page.status_code == 200 and 'data-testid="split-section"' not in page.text
