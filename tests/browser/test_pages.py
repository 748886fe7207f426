"""Every dashboard page in headless Chromium, on a desktop screen and on a phone, against real data.

The server gets what the pages show through the REST API, as cheaply as it can be made: a generated
dataset, a two-epoch training job, an int8 squeeze, a compile for the fleet's board (and a native
one, measured in QEMU, for another board) and a campaign to the two emulated devices. Each page must
then load without a console error or an uncaught exception, draw every chart inside its box, and fit
the screen's width: a wide table may scroll inside itself, the page may not. One screenshot per page
and width, ``<width>-<page>.png``, is kept to look at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, expect

DATASET = "pages-gestures"
BOARD = "nano33ble"
JOB_S = 300.0  # seconds a background job may take on a busy 2-core machine
ROLLOUT_S = 240.0  # seconds for the two devices to install the module
VIEWPORTS = ((1440, 900), (390, 844))  # a laptop, and a phone held upright

# Every drawn chart whose plot is wider than its box, as "name: plot width > box width".
CHARTS_WIDER_THAN_THEIR_BOX = """() => Array.from(document.querySelectorAll(".chart.js-plotly-plot"))
  .map(chart => [chart.dataset.testid || "chart", chart.querySelector(".main-svg"), chart.clientWidth])
  .filter(([, plot, box]) => plot && plot.getBoundingClientRect().width > box + 1)
  .map(([name, plot, box]) => `${name}: ${Math.round(plot.getBoundingClientRect().width)} > ${box}`)"""


@dataclass(frozen=True)
class Seeded:
    """The ids of what the seeding made, for the pages that show one thing."""

    train_job: str
    run: str
    model: str
    campaign: str
    pipeline: str


def _wait(api: httpx.Client, path: str, done: set[str], timeout_s: float) -> dict[str, Any]:
    """GET ``path`` until its ``state`` is one of ``done`` or time runs out; the body it last answered."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = api.get(path).raise_for_status().json()
        if body["state"] in done or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def _job(api: httpx.Client, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """Queue a job and wait until it succeeds, failing with its log if it does not."""
    job = api.post(path, json=params).raise_for_status().json()
    ended = _wait(api, f"/jobs/{job['id']}", {"succeeded", "failed", "cancelled"}, JOB_S)
    assert ended["state"] == "succeeded", ended.get("log") or ended
    return ended


@pytest.fixture(scope="module")
def seeded(server, fleet: list[str]) -> Iterator[Seeded]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=120) as api:
        dataset = {"name": DATASET, "generator": "gestures", "samples": 240}
        api.post("/datasets", json=dataset).raise_for_status()
        trained = _job(api, "/training-runs", {"dataset": DATASET, "epochs": 2})
        model = trained["result"]
        squeezed = _job(api, f"/models/{model['id']}/squeeze", {"quantizations": ["int8"]})
        (variant,) = squeezed["result"]["variants"]
        compiled = _job(api, f"/variants/{variant['id']}/compile", {"board": BOARD, "runtime": "tflm"})
        # A native module for another board, so the model page draws its per-layer instruction chart.
        native = _job(api, f"/variants/{variant['id']}/compile", {"board": "pico", "compiler": "native"})
        assert native["result"]["on_target"]["layers"], native["result"]
        # A split plan, so the model page draws its stacked bar per cut.
        _job(api, "/splits", {"model": model["id"], "chain": f"{BOARD}:ble:rpi4"})
        deadline = time.monotonic() + 60
        while api.get("/devices").raise_for_status().json()["count"] < len(fleet):
            assert time.monotonic() < deadline, "the fleet never registered"
            time.sleep(0.5)
        # Two epochs make a poor model; whether int8 degrades it further is beside the point here.
        rollout = {"module": compiled["result"]["id"], "selector": f"board:{BOARD}", "stages": [50, 100]}
        campaign = api.post("/campaigns", json={**rollout, "allow_degraded": True}).raise_for_status().json()
        ended = _wait(api, f"/campaigns/{campaign['id']}", {"completed", "halted", "cancelled"}, ROLLOUT_S)
        assert ended["state"] == "completed", ended
        stages = [
            {
                "name": "gate",
                "model": model["id"],
                "nodes": fleet[:1],
                "condition": "not:idle",
                "link": "ble",
            },
            {"name": "classify", "model": model["id"], "nodes": fleet[1:]},
        ]
        pipeline = api.post("/pipelines", json={"name": "pages", "stages": stages}).raise_for_status().json()
        yield Seeded(
            train_job=trained["id"],
            run=model["run"]["id"],
            model=model["id"],
            campaign=campaign["id"],
            pipeline=pipeline["name"],
        )


def _pages(seeded: Seeded, fleet: list[str]) -> dict[str, str]:
    """Every page a signed-in user reaches, by the name its screenshot gets."""
    return {
        "fleet": "/",
        "devices": "/devices",
        "device": f"/devices/{fleet[0]}",
        "datasets": "/datasets",
        "dataset": f"/datasets/{DATASET}",
        "training": "/training",
        "training-run": f"/training/runs/{seeded.run}",
        "training-job": f"/training/jobs/{seeded.train_job}",
        "training-compare": f"/training/compare?run={seeded.run}",
        "models": "/models",
        "model": f"/models/{seeded.model}",
        "deployments": "/deployments",
        "deployment": f"/deployments/{seeded.campaign}",
        "pipeline": "/pipeline",
        "pipelines": "/pipelines",
        "node-pipeline": f"/pipelines/{seeded.pipeline}",
        "cost": "/cost",
        "audit": "/audit",
    }


class Problems:
    """Everything wrong on the pages looked at, each line naming the width and page it was seen on."""

    def __init__(self, page: Page) -> None:
        self.found: list[str] = []
        self.current = ""
        page.on("console", self._console)
        page.on("pageerror", self._exception)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.add(f"console error: {message.text} at {message.location['url']}")

    def _exception(self, error: Error) -> None:
        self.add(f"uncaught {error.name}: {error.message}")

    def add(self, problem: str) -> None:
        self.found.append(f"{self.current}: {problem}")


def _look(page: Page, problems: Problems, folder: Path, url: str, name: str) -> None:
    """Load ``url`` and let its scripts settle, check how it is laid out, and take its screenshot."""
    width = page.viewport_size["width"]
    problems.current = f"{width}px {name}"
    response = page.goto(url, wait_until="networkidle")
    if response is None or response.status != 200:
        problems.add(f"answered {response.status if response else 'nothing'}")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:
        problems.add(f"the page is {overflow}px wider than the screen")
    undrawn = page.locator(".chart[data-figure]:not(.js-plotly-plot)").count()
    if undrawn:
        problems.add(f"{undrawn} chart(s) not drawn")
    cut = page.evaluate(CHARTS_WIDER_THAN_THEIR_BOX)
    if cut:
        problems.add(f"chart(s) wider than their box: {', '.join(cut)}")
    page.screenshot(path=folder / f"{width}-{name}.png", full_page=True)


def test_every_page_loads_cleanly_and_fits_a_desktop_and_a_phone(
    browser: Browser, server, fleet: list[str], seeded: Seeded, shots
) -> None:
    pages = _pages(seeded, fleet)
    found: list[str] = []
    for width, height in VIEWPORTS:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        problems = Problems(page)
        _look(page, problems, shots.folder, server.url + "/login", "login")
        page.fill("#token", server.admin_token)
        page.click("button[type=submit]")
        page.wait_for_url(server.url + "/")
        for name, path in pages.items():
            _look(page, problems, shots.folder, server.url + path, name)
        context.close()
        found.extend(problems.found)
    assert not found, "\n".join(found)
    screenshots = sorted(shots.folder.glob("*.png"))
    assert len(screenshots) == len(VIEWPORTS) * (1 + len(pages)), screenshots
    assert all(path.stat().st_size > 5_000 for path in screenshots), "a blank screenshot"


def test_keyboard_labelling_moves_the_counters_without_a_reload(
    browser: Browser, server, seeded: Seeded
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    problems = Problems(page)
    page.goto(server.url + "/login")
    page.fill("#token", server.admin_token)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    page.goto(server.url + f"/datasets/{DATASET}", wait_until="networkidle")

    def counts() -> dict[str, int]:
        rows = page.locator("[data-testid=class-row]")
        found = {rows.nth(i).get_attribute("data-class"): rows.nth(i) for i in range(rows.count())}
        found = {
            name: int(row.locator("[data-testid=class-count]").inner_text()) for name, row in found.items()
        }
        for testid in ("count-labelled", "count-unlabelled"):
            found[testid] = int(page.get_by_test_id(testid).inner_text())
        return found

    classes = [page.locator("[data-testid=class-row]").nth(i).get_attribute("data-class") for i in range(2)]
    first = page.get_by_test_id("sample").first
    before, was = counts(), first.get_attribute("data-label")
    key = 2 if was == classes[0] else 1
    page.keyboard.press("j")
    page.keyboard.press(str(key))
    status = page.get_by_test_id("keyboard-status")
    status.wait_for(state="visible")
    assert status.inner_text() == f"Sample {first.get_attribute('data-sample')} labelled {classes[key - 1]}."
    after = counts()
    assert after[was] == before[was] - 1 and after[classes[key - 1]] == before[classes[key - 1]] + 1
    assert after["count-labelled"] == before["count-labelled"]

    page.keyboard.press("k")
    page.keyboard.press("0")
    expect(first).to_have_attribute("data-label", "")
    cleared = counts()
    assert cleared["count-labelled"] == before["count-labelled"] - 1
    assert cleared["count-unlabelled"] == before["count-unlabelled"] + 1
    assert cleared[classes[key - 1]] == before[classes[key - 1]]
    page.reload(wait_until="networkidle")
    assert counts() == cleared, "the page counted what the server stored"
    context.close()
    assert not problems.found, "\n".join(problems.found)
