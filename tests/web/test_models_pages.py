"""The Models pages: stored figures side by side per variant and board, charts, squeeze, compile, upload."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from helpers.seeding import log_in
from helpers.servers import SEEDED_ARENA_BYTES, Seeded, seed_artifacts
from tinymlaas.jobs.service import show_job
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.services.models import list_models, show_model
from tinymlaas.settings import Settings

UPLOAD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Pages:
    context: Context
    seeded: Seeded
    scientist: TestClient
    viewer: TestClient


@pytest.fixture(scope="module")
def pages(tmp_path_factory, tiny_models) -> Iterator[Pages]:
    data_dir = tmp_path_factory.mktemp("models-pages") / "data"
    context = Context(Settings(data_dir=data_dir, max_upload_bytes=UPLOAD_LIMIT))
    seeded = seed_artifacts(context, tiny_models)
    app = create_app(context)  # no executor: submitted jobs stay queued, which is all these tests need
    with TestClient(app) as scientist, TestClient(app) as viewer:
        for client, role in ((scientist, Role.DATA_SCIENTIST), (viewer, Role.VIEWER)):
            secret = create_token(context, role, f"web {role}")[1]
            assert log_in(client, secret).status_code == 303
        yield Pages(context, seeded, scientist, viewer)


def _figure(page: str, testid: str) -> dict:
    match = re.search(rf'data-testid="{testid}" data-figure="([^"]*)"', page)
    assert match, f"no {testid} chart"
    return json.loads(html.unescape(match.group(1)))


def _cell(page: str, testid: str, **attributes: str) -> str:
    """The text of the table row (``variant-row``) or cell with ``testid`` and these data- attributes."""
    tag = "tr" if testid.endswith("-row") else "td"
    where = "".join(rf'[^>]*data-{k}="{v}"' for k, v in attributes.items())
    match = re.search(rf'<{tag}[^>]*data-testid="{testid}"{where}[^>]*>(.*?)</{tag}>', page, re.S)
    assert match, f"no {testid} {attributes}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def _trace(figure: dict, name: str) -> list:
    return next(trace["y"] for trace in figure["data"] if trace["name"] == name)


def test_the_models_page_shows_stored_figures_per_variant_and_board(pages) -> None:
    model = show_model(pages.context, pages.seeded.model)
    [variant] = model.variants
    page = pages.viewer.get("/models").text
    row = _cell(page, "variant-row", variant=pages.seeded.variant)
    assert "int8" in row and "accuracy 87.5 %" in row
    assert f"{variant.size_bytes} B" in row or f"{variant.size_bytes / 1024:.1f} KiB" in row
    assert f"{SEEDED_ARENA_BYTES / 1024:.1f} KiB" in row
    assert "accuracy 90.0 %" in _cell_text(page, "model-float")

    modules = {m.board: m for m in model.modules}
    too_big = _cell(page, "module-cell", module=pages.seeded.too_big_module, board="pico", fits="false")
    assert "does not fit" in too_big and "RAM" in too_big and "240.0 KiB" in too_big
    fitting = _cell(
        page, "module-cell", module=pages.seeded.fitting_module, board="nucleo-l4r5zi", fits="true"
    )
    assert "fits" in fitting and f"{modules['nucleo-l4r5zi'].ram_bytes / 1024:.1f} KiB" in fitting


def _cell_text(page: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)<', page, re.S)
    assert match, f"no {testid}"
    return html.unescape(match.group(1))


def test_the_charts_plot_the_stored_numbers(pages) -> None:
    model = show_model(pages.context, pages.seeded.model)
    [variant] = model.variants
    modules = {m.board: m for m in model.modules}
    page = pages.viewer.get("/models").text

    size = _figure(page, "chart-size")
    assert _trace(size, "model (.tflite)") == [round(variant.size_bytes / 1024, 2)]
    assert _trace(size, "tensor arena") == [round(SEEDED_ARENA_BYTES / 1024, 2)]
    metric = _figure(page, "chart-metric")
    assert metric["layout"]["title"]["text"].startswith("accuracy")
    assert _trace(metric, "float (Keras)") == [0.9] and _trace(metric, "TFLM") == [0.875]
    assert _trace(metric, "LiteRT") == [None]

    fit = _figure(page, "chart-fit")
    bars = dict(
        zip(fit["data"][0]["x"], zip(_trace(fit, "flash"), _trace(fit, "RAM"), strict=True), strict=True)
    )
    pico = bars["pico<br>tiny v1 · int8"]
    assert pico[1] == round(100 * modules["pico"].ram_bytes / 245_760, 2) and pico[1] > 100
    nucleo = bars["nucleo-l4r5zi<br>tiny v1 · int8"]
    assert nucleo[0] == round(100 * modules["nucleo-l4r5zi"].flash_bytes / 2_031_616, 2) and nucleo[1] < 100


def test_one_models_page_by_id_or_name(pages) -> None:
    for ref in (pages.seeded.model, "tiny", "tiny:1"):
        page = pages.viewer.get(f"/models/{ref}").text
        assert f'data-model="{pages.seeded.model}"' in page and 'data-testid="chart-fit"' in page
    missing = pages.viewer.get("/models/mdl_missing")
    assert missing.status_code == 404 and "mdl_missing" in missing.text


def test_squeeze_and_compile_buttons_queue_jobs_for_those_who_may(pages) -> None:
    page = pages.scientist.get(f"/models/{pages.seeded.model}").text
    assert 'data-testid="squeeze-button"' in page and 'data-testid="compile-form"' in page
    squeezed = pages.scientist.post(f"/models/{pages.seeded.model}/squeeze", follow_redirects=False)
    assert squeezed.status_code == 303
    job = show_job(pages.context, squeezed.headers["location"].rsplit("/", 1)[1])
    assert job["kind"] == "squeeze" and job["params"] == {"model": pages.seeded.model}

    compiled = pages.scientist.post(
        f"/models/variants/{pages.seeded.variant}/compile", data={"board": "esp32s3"}, follow_redirects=False
    )
    assert compiled.status_code == 303 and compiled.headers["location"].startswith("/training/jobs/")
    job = show_job(pages.context, compiled.headers["location"].rsplit("/", 1)[1])
    assert job["params"] == {"variant": pages.seeded.variant, "board": "esp32s3"}
    refused = pages.scientist.post(
        f"/models/variants/{pages.seeded.variant}/compile", data={"board": "toaster"}
    )
    assert refused.status_code == 422 and "toaster" in html.unescape(refused.text)
    assert 'class="flash error"' in refused.text

    viewer_page = pages.viewer.get(f"/models/{pages.seeded.model}").text
    assert (
        'data-testid="squeeze-button"' not in viewer_page and 'data-testid="compile-form"' not in viewer_page
    )
    assert pages.viewer.post(f"/models/{pages.seeded.model}/squeeze").status_code == 403
    assert (
        pages.viewer.post(
            f"/models/variants/{pages.seeded.variant}/compile", data={"board": "pico"}
        ).status_code
        == 403
    )


def test_a_model_brought_in_through_the_form_gets_its_own_page(pages, tiny_models) -> None:
    response = pages.scientist.post(
        "/models/imports",
        files={"file": ("edge model.tflite", tiny_models.int8)},
        data={"name": "edge"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    model_id = response.headers["location"].rsplit("/", 1)[1]
    page = pages.scientist.get(f"/models/{model_id}").text
    assert "imported from edge_model.tflite" in page
    assert 'data-testid="squeeze-button"' not in page  # a .tflite is already a variant
    [variant] = show_model(pages.context, model_id).variants
    assert f"{variant.arena_bytes / 1024:.1f} KiB" in _cell(page, "variant-row", variant=variant.id)


@pytest.mark.parametrize(
    ("name", "data", "status", "said"),
    [
        ("model.onnx", b"onnx", 422, ".tflite"),
        ("big.tflite", b"TFL3" * (UPLOAD_LIMIT // 4 + 1), 413, "big.tflite"),
        ("noise.tflite", b"0123456789abcdef" * 8, 415, "noise.tflite"),
    ],
)
def test_a_refused_upload_is_explained_on_the_page_and_nothing_is_stored(
    pages, name, data, status, said
) -> None:
    before = len(list_models(pages.context))
    response = pages.scientist.post("/models/imports", files={"file": (name, data)})
    assert response.status_code == status
    flash = re.search(r'class="flash error"[^>]*>([^<]*)<', response.text).group(1)
    assert said in html.unescape(flash)
    assert len(list_models(pages.context)) == before
    assert pages.viewer.post("/models/imports", files={"file": ("m.tflite", b"x")}).status_code == 403
