"""The Datasets pages over a real server: they show what the store holds, and their forms change it."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from helpers.seeding import log_in, serving
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.server.app import create_app
from tinymlaas.services import samples
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings

GESTURES = ["idle", "wave", "punch", "circle", "shake"]


@dataclass(frozen=True)
class Site:
    base: str
    context: Context
    tokens: dict[Role, str]

    def browser(self, role: Role) -> httpx.Client:
        """A client holding the session cookie of a person logged in with ``role``'s token."""
        client = httpx.Client(base_url=self.base, timeout=30)
        response = log_in(client, self.tokens[role], "/datasets")
        assert response.status_code == 303 and response.headers["location"] == "/datasets"
        return client


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("web") / "data"))
    tokens = {role: create_token(context, role, f"web {role}")[1] for role in Role}
    with serving(create_app(context)) as base:
        yield Site(base, context, tokens)


class Page(HTMLParser):
    """Elements carrying a ``data-testid``: their attributes and the text right inside them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self._open = None
        if "data-testid" in values:
            self._open = {"testid": values["data-testid"], "attrs": values, "text": ""}
            self.found.append(self._open)

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data

    def all(self, testid: str) -> list[dict[str, Any]]:
        return [f for f in self.found if f["testid"] == testid]

    def text(self, testid: str) -> str:
        (only,) = self.all(testid)
        return " ".join(only["text"].split())


def _page(client: httpx.Client, url: str, status: int = 200) -> Page:
    response = client.get(url)
    assert response.status_code == status, response.text
    return Page(response.text)


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _create(client: httpx.Client, name: str, generator: str, count: int) -> None:
    form = {"name": name, "generator": generator, "samples": str(count), "seed": "3"}
    response = client.post("/datasets", data=form)
    assert response.status_code == 303 and response.headers["location"] == f"/datasets/{name}"


def test_a_data_scientist_creates_browses_labels_and_snapshots(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    _create(client, "web-g", "gestures", 30)
    listed = _page(client, "/datasets")
    row = [r["attrs"]["data-name"] for r in listed.all("dataset-row")].index("web-g")
    assert listed.all("dataset-samples")[row]["text"] == "30"
    assert listed.all("dataset-unlabelled")[row]["text"] == "0"

    stored = samples.list_samples(site.context, "web-g").samples
    first = _page(client, "/datasets/web-g")
    cards = first.all("sample")
    assert [c["attrs"]["data-sample"] for c in cards] == [s["id"] for s in stored[:24]]
    assert first.text("page-range").startswith("Samples 1–24 of 30")
    figure = json.loads(first.all("sample-chart")[0]["attrs"]["data-figure"])
    window = np.load(io.BytesIO(site.context.blobs.get(stored[0]["content_sha256"])))
    assert np.allclose(figure["data"][0]["y"], window[:, 0], atol=1e-5) and len(figure["data"]) == 3
    raw = client.get("/datasets/web-g").text
    legend = re.search(r'data-testid="channel-legend">(.*?)</ul>', raw, re.S).group(1)
    colours = re.findall(r'background: (#[0-9a-f]{6})"></span>(channel \d)', legend)
    assert colours == [(trace["line"]["color"], trace["name"]) for trace in figure["data"]]
    assert [name for _, name in colours] == ["channel 1", "channel 2", "channel 3"]
    next_page = first.all("page-next")[0]["attrs"]["href"]
    second = _page(client, f"/datasets/web-g{next_page}")
    assert [c["attrs"]["data-sample"] for c in second.all("sample")] == [s["id"] for s in stored[24:]]

    one = stored[25]["id"]
    labelled = client.post(
        f"/datasets/web-g/samples/{one}/label", data={"label": "shake", "back": "/datasets/web-g?offset=24"}
    )
    back = f"/datasets/web-g?offset=24&done=label&sample={one}&to=shake"
    assert labelled.status_code == 303 and labelled.headers["location"] == back
    assert samples.show_sample(site.context, "web-g", one)["label"] == "shake"
    confirmed = _page(client, back)
    assert confirmed.text("flash-notice") == f"Sample {one} labelled shake."
    assert [c["attrs"]["data-sample"] for c in confirmed.all("sample")] == [s["id"] for s in stored[24:]]
    assert not _page(client, "/datasets/web-g?offset=24").all("flash-notice"), "a plain view confirms nothing"

    chosen = [s["id"] for s in stored[:3]]
    cleared = client.post(
        "/datasets/web-g/labels", data={"samples": chosen, "clear": "1", "back": "/datasets/web-g"}
    )
    assert cleared.status_code == 303
    assert DatasetService(site.context).show("web-g").unlabelled == 3
    assert _page(client, cleared.headers["location"]).text("flash-notice") == "Labels of 3 samples cleared."
    unlabelled = _page(client, "/datasets/web-g?unlabelled=1")
    assert unlabelled.text("count-unlabelled") == "3"
    assert [c["attrs"]["data-sample"] for c in unlabelled.all("sample")] == chosen
    assert {" ".join(s["text"].split()) for s in unlabelled.all("sample-label")} == {"unlabelled"}

    bulk = client.post(
        "/datasets/web-g/labels", data={"samples": chosen, "label": "wave", "back": "/datasets/web-g"}
    )
    assert bulk.status_code == 303
    assert {samples.show_sample(site.context, "web-g", s)["label"] for s in chosen} == {"wave"}
    assert _page(client, bulk.headers["location"]).text("flash-notice") == "3 samples labelled wave."
    page = _page(client, "/datasets/web-g")
    counts = DatasetService(site.context).show("web-g").label_counts
    assert [r["attrs"]["data-class"] for r in page.all("class-row")] == GESTURES
    assert {c: int(t["text"]) for c, t in zip(GESTURES, page.all("class-count"), strict=True)} == counts
    assert page.text("count-unlabelled") == "0"

    taken = client.post("/datasets/web-g/snapshots", data={"back": "/datasets/web-g"})
    assert taken.status_code == 303
    (snapshot,) = DatasetService(site.context).snapshot_list("web-g")
    notice = _page(client, taken.headers["location"]).text("flash-notice")
    assert notice == f"Snapshot {snapshot.id[:12]} taken of 30 samples: training can start from it."
    page = _page(client, "/datasets/web-g")
    assert [r["attrs"]["data-id"] for r in page.all("snapshot-row")] == [snapshot.id]
    assert page.text("snapshot-samples") == "30" and page.text("count-snapshots") == "1"
    again = client.post("/datasets/web-g/snapshots", data={"back": "/datasets/web-g"})
    assert again.status_code == 200 and snapshot.id[:12] in Page(again.text).text("flash-notice")


def test_image_samples_show_as_thumbnails_behind_the_login(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    _create(client, "web-digits", "digits", 12)
    page = _page(client, "/datasets/web-digits")
    images = page.all("sample-image")
    assert len(images) == 12 and not page.all("sample-chart")
    stored = samples.list_samples(site.context, "web-digits").samples[0]
    url = images[0]["attrs"]["src"]
    assert url == f"/datasets/web-digits/samples/{stored['id']}/thumbnail.png"
    thumbnail = client.get(url)
    assert thumbnail.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(thumbnail.content)))
    digit = np.load(io.BytesIO(site.context.blobs.get(stored["content_sha256"])))[..., 0]
    assert np.array_equal(pixels[:: pixels.shape[0] // 8, :: pixels.shape[1] // 8], np.rint(digit * 255))
    stranger = httpx.get(site.base + url)
    assert stranger.status_code == 303 and stranger.headers["location"].startswith("/login?next=")
    assert client.get("/datasets/web-digits/samples/smp_nope/thumbnail.png").status_code == 404


def test_refusals_are_flashed_and_change_nothing(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    _create(client, "web-r", "gestures", 10)
    sample = samples.list_samples(site.context, "web-r").samples[0]
    wrong = client.post(f"/datasets/web-r/samples/{sample['id']}/label", data={"label": "jump", "back": ""})
    assert wrong.status_code == 422
    assert "allowed labels are idle, wave, punch, circle, shake" in Page(wrong.text).text("flash-error")
    assert samples.show_sample(site.context, "web-r", sample["id"])["label"] == sample["label"]
    nothing = client.post("/datasets/web-r/labels", data={"label": "wave", "back": "/datasets/web-r"})
    assert nothing.status_code == 422 and "tick the samples" in Page(nothing.text).text("flash-error")
    taken = client.post("/datasets", data={"name": "web-r", "generator": "gestures", "samples": "5"})
    assert taken.status_code == 409 and "already exists" in Page(taken.text).text("flash-error")
    unknown = client.post("/datasets", data={"name": "web-x", "generator": "weather", "samples": "5"})
    assert unknown.status_code == 404 and "digits, gestures, scenes, sine" in Page(unknown.text).text(
        "flash-error"
    )
    assert "origin 'stolen'" in _page(client, "/datasets/web-r?origin=stolen", 422).text("flash-error")
    assert _page(client, "/datasets/web-missing", 404)
    assert DatasetService(site.context).show("web-r").sample_count == 10


def test_files_come_in_through_the_forms(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    table = b"a,b,label\n1,2,x\n3,4,y\n"
    form = {"name": "web-csv", "create": "1", "back": "/datasets"}
    imported = client.post("/datasets/import", data=form, files={"file": ("../../web-escape.csv", table)})
    assert imported.status_code == 303 and imported.headers["location"] == "/datasets/web-csv"
    rows = {r["attrs"]["data-name"]: r for r in _page(client, "/datasets").all("dataset-row")}
    assert "web-csv" in rows
    sources = [s["source"] for s in samples.list_samples(site.context, "web-csv").samples]
    assert sources == ["web-escape.csv:2", "web-escape.csv:3"]
    outside = site.context.settings.data_dir.parent
    assert [p for p in outside.parent.rglob("web-escape*")] == []

    _create(client, "web-up", "digits", 5)
    pixels = (np.arange(64, dtype=np.uint8) * 2).reshape(8, 8)
    upload = {"label": "3", "back": "/datasets/web-up"}
    sent = client.post("/datasets/web-up/samples", data=upload, files={"file": ("three.png", _png(pixels))})
    assert sent.status_code == 303
    (stored,) = samples.list_samples(site.context, "web-up", origin=samples.Origin.UPLOADED).samples
    assert stored["label"] == "3" and stored["source"] == "upload:three.png"
    notice = _page(client, sent.headers["location"]).text("flash-notice")
    assert notice == f"Sample {stored['id']} uploaded, labelled 3."
    page = _page(client, "/datasets/web-up?origin=uploaded")
    assert [c["attrs"]["data-sample"] for c in page.all("sample")] == [stored["id"]]
    wide = client.post(
        "/datasets/web-up/samples",
        data=upload,
        files={"file": ("wide.png", _png(np.zeros((8, 9), np.uint8)))},
    )
    assert wide.status_code == 422 and "does not match" in Page(wide.text).text("flash-error")
    empty = client.post("/datasets/web-up/samples", data=upload, files={"file": ("", b"")})
    assert empty.status_code == 422 and Page(empty.text).text("flash-error")
    assert DatasetService(site.context).show("web-up").sample_count == 6


def test_a_viewer_reads_but_cannot_change(site) -> None:
    _create(site.browser(Role.DATA_SCIENTIST), "web-v", "gestures", 8)
    viewer = site.browser(Role.VIEWER)
    page = _page(viewer, "/datasets/web-v")
    assert len(page.all("sample")) == 8
    assert not page.all("bulk-form") and not page.all("sample-check") and not page.all("take-snapshot")
    assert not _page(viewer, "/datasets").all("create-form")
    sample = samples.list_samples(site.context, "web-v").samples[0]
    refused = viewer.post(f"/datasets/web-v/samples/{sample['id']}/label", data={"label": "wave"})
    assert refused.status_code == 403 and "datasets:write" in refused.text
    assert samples.show_sample(site.context, "web-v", sample["id"])["label"] == sample["label"]


def _wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the page did not save in time"
        time.sleep(0.05)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_labelling_from_the_keyboard_in_a_browser(site) -> None:
    from playwright.sync_api import expect, sync_playwright

    _create(site.browser(Role.DATA_SCIENTIST), "web-keys", "gestures", 6)
    before = samples.list_samples(site.context, "web-keys").samples
    ids = [s["id"] for s in before]

    def label(i: int) -> str | None:
        return samples.show_sample(site.context, "web-keys", ids[i])["label"]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{site.base}/login?next=/datasets/web-keys")
        page.fill("#token", site.tokens[Role.DATA_SCIENTIST])
        page.click("button[type=submit]")
        page.wait_for_url("**/datasets/web-keys")
        page.keyboard.press("j")
        page.keyboard.press("5")  # the fifth class, then on to the next sample
        _wait_for(lambda: label(0) == GESTURES[4])
        page.keyboard.press("0")
        _wait_for(lambda: label(1) is None)
        # The store answers before the page has shown the answer; the page follows within moments.
        expect(page.locator(f"[data-sample='{ids[1]}'] [data-testid=sample-label]")).to_have_text(
            "unlabelled"
        )
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.select_option("[data-testid=bulk-label]", "circle")
        page.click("[data-testid=bulk-apply]")
        page.wait_for_load_state()
        _wait_for(lambda: label(2) == label(3) == "circle")
        assert [label(i) for i in (4, 5)] == [s["label"] for s in before[4:]]  # untouched
        browser.close()


def test_the_explorer_shows_each_class_and_projects_every_stored_sample(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    _create(client, "web-explore", "gestures", 30)
    cleared = [s["id"] for s in samples.list_samples(site.context, "web-explore").samples[:2]]
    assert (
        client.post("/datasets/web-explore/labels", data={"samples": cleared, "clear": "1"}).status_code
        == 303
    )
    stored = {
        s["id"]: s["label"] for s in samples.list_samples(site.context, "web-explore", limit=1000).samples
    }
    summary = DatasetService(site.context).show("web-explore")
    page = _page(client, "/datasets/web-explore")

    assert page.text("projection-shown") == page.text("projection-total") == str(summary.sample_count)
    chart = json.loads(page.all("projection")[0]["attrs"]["data-figure"])
    points = {sample: label for trace in chart["data"] for sample, label in trace["customdata"]}
    assert points == {sample: label or "" for sample, label in stored.items()}
    assert [trace["name"] for trace in chart["data"]] == [*sorted(summary.label_counts), "(no label)"]

    classes = page.all("explorer-class")
    assert [c["attrs"]["data-class"] for c in classes] == [*GESTURES, ""]
    counts = [int(c["text"]) for c in page.all("explorer-class-count")]
    assert counts == [summary.label_counts.get(g, 0) for g in GESTURES] + [summary.unlabelled]
    shown = [s["attrs"]["data-sample"] for s in page.all("explorer-sample")]
    assert shown and {stored[s] or "" for s in shown} <= {*GESTURES, ""}
    assert set(cleared) <= set(shown)  # the unlabelled class shows its samples too


def test_an_empty_dataset_says_how_to_fill_it_and_times_have_no_microseconds(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    DatasetService(site.context).create(
        "web-empty", DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (3,), ("a", "b"))
    )
    page = _page(client, "/datasets/web-empty")
    assert "upload one or import a file below" in page.text("samples-empty")
    assert "at least two samples" in page.text("projection-empty")

    _create(client, "web-times", "sine", 6)
    assert client.post("/datasets/web-times/snapshots", data={"back": ""}).status_code == 303
    (snapshot,) = DatasetService(site.context).snapshot_list("web-times")
    assert snapshot.created_at is not None
    html_text = client.get("/datasets/web-times").text
    exact = datetime.fromisoformat(snapshot.created_at).replace(microsecond=0).isoformat()
    assert f'title="{exact}"' in html_text
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", html_text)


def test_a_crafted_confirmation_is_not_shown(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    _create(client, "web-n", "gestures", 5)
    for query in ("done=labels&n=lots&to=wave", "done=hacked&to=x", "done=label&to=wave"):
        assert not _page(client, f"/datasets/web-n?{query}").all("flash-notice")


def test_long_numbers_are_shortened_on_the_cards(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    table = b"a,b,label\n0.123456789012345,-2.5e-7,x\n3,4,y\n"
    form = {"name": "web-floats", "create": "1", "back": "/datasets"}
    assert client.post("/datasets/import", data=form, files={"file": ("f.csv", table)}).status_code == 303
    shown = [" ".join(v["text"].split()) for v in _page(client, "/datasets/web-floats").all("sample-values")]
    assert "[0.1235, -2.5e-07]" in shown

    _create(client, "web-sine", "sine", 4)
    stored = samples.list_samples(site.context, "web-sine").samples
    targets = {
        t["attrs"]["title"]: t["text"] for t in _page(client, "/datasets/web-sine").all("sample-target")
    }
    assert targets == {str(s["target"]): f"{s['target']:.4g}" for s in stored}


def test_every_labelling_control_has_a_label(site) -> None:
    client = site.browser(Role.DATA_SCIENTIST)
    _create(client, "web-a", "gestures", 4)
    raw = client.get("/datasets/web-a").text
    bulk = re.search(r"<select[^>]*data-testid=\"bulk-label\"[^>]*>", raw).group(0)
    assert 'aria-label="label for the ticked samples"' in bulk
    charts = re.findall(r'<div class="chart[^"]*"([^>]*)>', raw)
    assert charts and all('role="figure"' in c and 'aria-label="Chart: ' in c for c in charts)
    assert 'data-testid="keyboard-status"' in raw and 'role="status"' in raw
    assert '<a class="skip" href="#content">Skip to content</a>' in raw and '<main id="content"' in raw
