"""The Models pages: a line per model name; per version its variants side by side per board, charts,
training figures and lineage; squeeze, compile, upload."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers.seeding import add_campaign, log_in, logged_in_client
from helpers.servers import SEEDED_ARENA_BYTES, Seeded, seed_artifacts
from tinymlaas.formatting import fmt_metric
from tinymlaas.jobs.service import show_job
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.compiling import compile_module
from tinymlaas.services.context import Context
from tinymlaas.services.models import list_models, show_model
from tinymlaas.services.runs import show_run
from tinymlaas.settings import Settings
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.variants import assess
from tinymlaas.storage.tables import ModelRow, TrainingRunRow, VariantRow
from tinymlaas.web.humanize import exact_time, relative_time

UPLOAD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Second:
    """Version 2 of the seeded model: its own run (with a confusion matrix), an int8 variant and a
    float16 one TFLM cannot run, compiled for two boards, each module repeating TFLM's refusal."""

    model: str
    run: str
    int8: str
    float16: str
    campaign: str  # sent the seeded version 1's fitting module


@dataclass(frozen=True)
class Pages:
    context: Context
    seeded: Seeded
    second: Second
    scientist: TestClient
    viewer: TestClient


def _seed_second_version(context: Context, tiny_models: Any, seeded: Seeded) -> Second:
    float16 = assess(tiny_models.float16, None, max_arena_bytes=1 << 20, name="float16")
    assert "tflm" in float16.runtime_errors, "TFLM ran a float16 model: the repeated error is not seeded"
    labels = show_run(context, seeded.run)["labels"]
    with context.session() as session:
        snapshot = session.get_one(TrainingRunRow, seeded.run).snapshot_id
        session.add(
            TrainingRunRow(
                id="run_seed2", snapshot_id=snapshot, recipe={"arch": "cnn1d", "epochs": 3, "seed": 2},
                split_counts={"train": 28, "val": 6, "test": 6},
                history={"loss": [1.4, 1.0, 0.7], "val_loss": [1.5, 1.1, 0.9],
                         "accuracy": [0.4, 0.6, 0.8], "val_accuracy": [0.3, 0.5, 0.7]},
                metric_name="accuracy", metric_value=0.75, epochs_run=3, duration_s=2.5,
                confusion_matrix={
                    "labels": labels,
                    "counts": [[i * len(labels) + j for j in range(len(labels))] for i in range(len(labels))],
                },
            )
        )  # fmt: skip
        session.flush()
        session.add(
            ModelRow(
                id="mdl_tiny2", name="tiny", version=2, origin="trained", training_run_id="run_seed2",
                keras_blob=None, arch="cnn1d", params=float16.info.params,
                float_metric={"name": "accuracy", "value": 0.75},
            )
        )  # fmt: skip
        session.flush()
        int8 = inspect_tflite(tiny_models.int8, name="int8")
        scored = {"tflm": {"name": "accuracy", "value": 0.8}}
        for variant_id, quantization, tflite, info, metrics, errors in (
            ("var_tiny2_int8", "int8", tiny_models.int8, int8, scored, {}),
            ("var_tiny2_f16", "float16", tiny_models.float16, float16.info, {}, dict(float16.runtime_errors)),
        ):  # fmt: skip
            session.add(
                VariantRow(
                    id=variant_id, model_id="mdl_tiny2", quantization=quantization,
                    tflite_blob=context.blobs.put(tflite), size_bytes=len(tflite),
                    info=dataclasses.asdict(info),
                    arena_bytes=SEEDED_ARENA_BYTES if not errors else None, arena_tries=1, metrics=metrics,
                    runtime_errors=errors, selftests={}, evaluated_on=snapshot,
                )
            )  # fmt: skip
            session.flush()
        add_campaign(
            session, campaign_id="cmp_seed", module_id=seeded.fitting_module, selector="board:nucleo-l4r5zi",
            endpoint="dev-1", state="completed", installation="succeeded", at=datetime.now(UTC),
        )  # fmt: skip
    for board in ("nucleo-l4r5zi", "pico"):
        compile_module(context, "var_tiny2_f16", board, runtime="tflm")
    return Second("mdl_tiny2", "run_seed2", "var_tiny2_int8", "var_tiny2_f16", "cmp_seed")


@pytest.fixture(scope="module")
def pages(tmp_path_factory, tiny_models) -> Iterator[Pages]:
    data_dir = tmp_path_factory.mktemp("models-pages") / "data"
    context = Context(Settings(data_dir=data_dir, max_upload_bytes=UPLOAD_LIMIT))
    seeded = seed_artifacts(context, tiny_models)
    second = _seed_second_version(context, tiny_models, seeded)
    app = create_app(context)  # no executor: submitted jobs stay queued, which is all these tests need
    with TestClient(app) as scientist, TestClient(app) as viewer:
        for client, role in ((scientist, Role.DATA_SCIENTIST), (viewer, Role.VIEWER)):
            secret = create_token(context, role, f"web {role}")[1]
            assert log_in(client, secret).status_code == 303
        yield Pages(context, seeded, second, scientist, viewer)


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


def test_a_model_page_shows_stored_figures_per_variant_and_board(pages) -> None:
    model = show_model(pages.context, pages.seeded.model)
    [variant] = model.variants
    page = pages.viewer.get(f"/models/{pages.seeded.model}").text
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
    page = pages.viewer.get(f"/models/{pages.seeded.model}").text

    size = _figure(page, "chart-size")
    assert _trace(size, "model (.tflite)") == [round(variant.size_bytes / 1024, 2)]
    assert _trace(size, "tensor arena") == [round(SEEDED_ARENA_BYTES / 1024, 2)]
    metric = _figure(page, "chart-metric")
    assert metric["layout"]["title"]["text"].startswith("accuracy")
    assert _trace(metric, "float (Keras)") == [0.9] and _trace(metric, "TFLM") == [0.875]
    assert "LiteRT" not in {trace["name"] for trace in metric["data"]}, "a runtime with no score is left out"
    assert {trace["type"] for trace in metric["data"]} == {"scatter"}, "scores are dots on a zoomed axis"
    low, high = metric["layout"]["yaxis"]["range"]
    assert 0.5 < low < 0.875 and 0.9 < high <= 1.0, "the axis spans the scores, not 0 to 1"
    assert f"(axis {100 * low:.1f}–{100 * high:.1f} %)" in metric["layout"]["yaxis"]["title"]["text"]
    # Fit per board and variant is the board scatter's markers and the table's cells, not a bar each.
    assert 'data-testid="chart-fit"' not in page
    assert modules["pico"].fits is False and modules["nucleo-l4r5zi"].fits is True


def test_one_models_page_by_id_name_or_version(pages) -> None:
    latest = show_model(pages.context, "tiny").id
    for ref, model_id in (
        (pages.seeded.model, pages.seeded.model),
        ("tiny:1", pages.seeded.model),
        ("tiny", latest),
    ):
        page = pages.viewer.get(f"/models/{ref}").text
        assert f'data-model="{model_id}"' in page and 'data-testid="chart-size"' in page
    missing = pages.viewer.get("/models/mdl_missing")
    assert missing.status_code == 404 and "mdl_missing" in missing.text


def _rows(page: str) -> list[str]:
    return re.findall(r'data-testid="model-row" data-name="([^"]+)"', page)


def test_the_models_list_has_one_row_per_model_name(pages) -> None:
    stored = list_models(pages.context)
    page = pages.viewer.get("/models").text
    assert sorted(_rows(page)) == sorted({m["name"] for m in stored})

    versions = [m for m in stored if m["name"] == "tiny"]
    assert len(versions) == 2
    latest = show_model(pages.context, "tiny")
    [int8] = [v for v in latest.variants if v.quantization == "int8"]
    row = _cell(page, "model-row", name="tiny")
    markup = re.search(r'<tr data-testid="model-row" data-name="tiny".*?</tr>', page, re.S).group(0)
    counted = re.search(r'data-testid="model-versions">(\d+)<', markup)
    assert f"v{latest.version}" in row and counted and counted.group(1) == str(len(versions))
    assert show_run(pages.context, pages.second.run)["dataset"] in row
    assert fmt_metric(int8.metrics["tflm"]) in row and fmt_metric(latest.float_metric) in row
    assert f"{len(latest.variants)} / {len(latest.modules)}" in row
    assert relative_time(latest.created_at) in row
    made = re.search(r'data-testid="model-made"><time datetime="([^"]+)" title="\1">', markup)
    assert made and made.group(1) == exact_time(latest.created_at)
    assert 'data-testid="variant-row"' not in page and f'href="/models/{latest.name}"' in page


def test_with_no_model_the_list_says_what_to_do(tmp_path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data"))
    with logged_in_client(context, Role.DATA_SCIENTIST) as client:
        page = client.get("/models").text
    empty = _cell_text(page, "no-models")
    assert "Train one" in empty and 'href="/training"' in page and 'data-testid="import-form"' in page
    assert _rows(page) == []


def test_the_board_chart_plots_each_variant_on_each_board(pages) -> None:
    model = show_model(pages.context, pages.seeded.model)
    [variant] = model.variants
    modules = {m.board: m for m in model.modules}
    figure = _figure(pages.viewer.get(f"/models/{pages.seeded.model}").text, "chart-boards")
    traces = {trace["name"]: trace for trace in figure["data"]}
    for board, name in (("nucleo-l4r5zi", "fits"), ("pico", "does not fit")):
        assert traces[name]["x"] == [round(modules[board].ram_bytes / 1024, 2)]
        assert traces[name]["y"] == [variant.metrics["tflm"]["value"]]
        assert traces[name]["text"] == [f"{variant.quantization} · {board}"]
    [menu] = figure["layout"]["updatemenus"]
    flash = next(button for button in menu["buttons"] if button["label"] == "flash")
    assert flash["args"][0]["x"] == [
        [round(modules["nucleo-l4r5zi"].flash_bytes / 1024, 2)],
        [round(modules["pico"].flash_bytes / 1024, 2)],
    ]
    assert figure["layout"]["shapes"][0]["y0"] == model.float_metric["value"]
    low, high = figure["layout"]["yaxis"]["range"]
    assert 0 < low < variant.metrics["tflm"]["value"] and model.float_metric["value"] < high <= 1
    assert f"axis {100 * low:.1f}–{100 * high:.1f} %" in figure["layout"]["yaxis"]["title"]["text"]


def test_the_model_page_shows_its_training_curves_and_confusion_matrix(pages) -> None:
    run = show_run(pages.context, pages.second.run)
    page = pages.viewer.get(f"/models/{pages.second.model}").text
    curves = re.findall(r'data-testid="model-curve" data-figure="([^"]*)"', page)
    loss = json.loads(html.unescape(curves[0]))
    assert (
        loss["data"][0]["y"] == run["history"]["loss"] and loss["data"][1]["y"] == run["history"]["val_loss"]
    )
    assert any(json.loads(html.unescape(c))["data"][0]["y"] == run["history"]["accuracy"] for c in curves)

    matrix = run["confusion_matrix"]
    for i, true in enumerate(matrix["labels"]):
        for j, predicted in enumerate(matrix["labels"]):
            cell = _cell(page, "confusion-cell", true=true, predicted=predicted)
            assert cell == str(matrix["counts"][i][j])
    links = re.findall(r'<a href="([^"]+)" data-testid="confusion-link"\s+title="([^"]+)"', page)
    assert len(links) == len(matrix["labels"]) ** 2
    assert {href for href, _ in links} == {
        f"/datasets/{run['dataset']}?label={true}" for true in matrix["labels"]
    }
    assert all("predictions per sample are not stored" in html.unescape(title) for _, title in links)


def test_every_chart_says_what_it_shows_and_every_compile_field_has_a_label(pages) -> None:
    page = pages.scientist.get(f"/models/{pages.seeded.model}").text
    charts = re.findall(r'<div class="chart"([^>]*)>', page)
    assert charts and all('role="figure"' in c and 'aria-label="Chart: ' in c for c in charts)
    size = re.search(r'aria-label="([^"]*)" data-testid="chart-size"', page).group(1)
    assert "Size and tensor arena per variant" in html.unescape(size) and "tiny v1 · int8" in html.unescape(
        size
    )
    selects = re.findall(r'<select name="(board|runtime)"([^>]*)>', page)
    assert selects and all("aria-label=" in attributes for _, attributes in selects)


def test_the_lineage_links_each_step_from_dataset_to_deployment(pages) -> None:
    model = show_model(pages.context, pages.seeded.model)
    run = show_run(pages.context, pages.seeded.run)
    page = pages.viewer.get(f"/models/{model.id}").text
    lineage = re.search(r'<ol class="steps" data-testid="lineage">(.*?)</ol>', page, re.S).group(1)
    links = re.findall(r'href="([^"]+)"', lineage)
    assert links[:4] == [
        f"/datasets/{run['dataset']}",
        f"/datasets/{run['dataset']}",
        f"/training/runs/{run['id']}",
        f"/models/{model.id}",
    ]
    assert run["snapshot"][:16] in lineage
    assert [f"#variant-{v.id}" for v in model.variants] + [f"#module-{m.id}" for m in model.modules] == links[
        4:-1
    ]
    assert links[-1] == f"/deployments/{pages.second.campaign}"
    for anchor in links[4:-1]:
        assert f'id="{anchor[1:]}"' in page

    versions = re.search(r'data-testid="versions">(.*?)</nav>', page, re.S).group(1)
    assert f'href="/models/{pages.second.model}"' in versions and 'aria-current="page"' in versions


def test_a_runtime_error_is_shown_once_per_variant_not_in_every_module(pages) -> None:
    model = show_model(pages.context, pages.second.model)
    [float16] = [v for v in model.variants if v.quantization == "float16"]
    error = float16.runtime_errors["tflm"]
    modules = [m for m in model.modules if m.variant == float16.id]
    assert len(modules) == 2 and all(error in m.reasons for m in modules)

    page = html.unescape(pages.viewer.get(f"/models/{model.id}").text)
    assert page.count(error) == 1
    [note] = re.findall(r'data-testid="runtime-note" data-runtime="tflm">([^<]*)<', page)
    hint = re.search(r"\([^()]*\)\s*$", error)
    assert "\n" not in note.strip() and (hint is None or hint.group(0).strip() in note)
    row = _cell(page, "variant-row", variant=float16.id)
    assert row.count("(see the note)") == len(modules)
    assert 'data-testid="chart-boards"' not in page, "a module no runtime can run has no score to plot"
    for module in modules:
        cell = _cell(page, "module-cell", module=module.id)
        assert "tflm cannot run this variant (see the note)" in cell and error not in cell


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
