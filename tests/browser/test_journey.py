"""A new user's whole journey in headless Chromium, against a real server, job workers and devices.

Log in → create a dataset from a generator → label a few samples → train → squeeze and compare the
variants → compile for the devices' board → deploy to two emulated nano33ble boards → watch the
fleet page show the new model version. Every step goes through the dashboard's own forms and
buttons; every figure asserted is what the server stored or the devices reported.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

JOB_S = 300_000  # ms a background job (training, squeezing, compiling) may take on a busy 2-core machine
ROLLOUT_S = 240_000  # ms for two devices to download, verify, install and self-test a module
DATASET = "journey-gestures"


def _finish_job(page: Page) -> None:
    """On a job's page: wait until it succeeds (the page updates itself), failing with its log if not."""
    state = page.get_by_test_id("job-state")
    expect(state).to_have_text(re.compile("succeeded|failed|cancelled"), timeout=JOB_S)
    assert state.inner_text() == "succeeded", page.get_by_test_id("job-log").inner_text()


def test_a_new_user_goes_from_a_dataset_to_a_fleet_running_their_model(
    browser: Browser, server, fleet, shots
):
    page = browser.new_page(viewport={"width": 1400, "height": 900})

    # Log in with the admin token the server printed once at its first start.
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    shots(page, "login")
    page.fill("#token", server.admin_token)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("devices-online")).to_have_text(str(len(fleet)), timeout=60_000)
    shots(page, "fleet-registered")

    # Create a dataset from the gestures generator.
    page.goto(server.url + "/datasets")
    page.get_by_test_id("create-name").fill(DATASET)
    page.get_by_test_id("create-generator").select_option("gestures")
    page.get_by_test_id("create-samples").fill("600")
    page.get_by_test_id("create-dataset").click()
    expect(page.get_by_test_id("dataset-name")).to_have_text(DATASET)
    expect(page.get_by_test_id("count-samples")).to_have_text("600")
    shots(page, "dataset-browser")

    # Label a few samples in bulk: tick three, choose a class, apply.
    samples = page.get_by_test_id("sample")
    chosen = [samples.nth(i).get_attribute("data-sample") for i in range(3)]
    classes = page.get_by_test_id("bulk-form").locator("select[name=label] option:not([value=''])")
    label = classes.nth(1).get_attribute("value")
    for sample_id in chosen:
        page.locator(f'[data-sample="{sample_id}"] [data-testid="sample-check"]').check()
    page.get_by_test_id("bulk-form").locator("select[name=label]").select_option(label)
    page.get_by_test_id("bulk-apply").click()
    for sample_id in chosen:
        expect(page.locator(f'[data-testid="sample"][data-sample="{sample_id}"]')).to_have_attribute(
            "data-label", label
        )
    shots(page, "dataset-labelled")

    # Train on it from the Training form; the job page follows the worker's progress.
    page.goto(server.url + "/training")
    page.get_by_test_id("train-dataset").select_option(DATASET)
    page.get_by_test_id("train-epochs").fill("3")
    page.get_by_test_id("train-submit").click()
    expect(page).to_have_url(re.compile(r"/training/jobs/job_"))
    shots(page, "training-job-running")
    _finish_job(page)
    shots(page, "training-job-done")
    page.get_by_test_id("job-run").click()
    expect(page.get_by_test_id("run-curve").first).to_be_visible()
    expect(page.get_by_test_id("confusion")).to_be_visible()
    model_link = page.get_by_test_id("run-model")
    model_name = model_link.inner_text().rsplit(" v", 1)[0]
    shots(page, "training-run")

    # Squeeze the model and compare its variants side by side.
    model_link.click()
    model_url = page.url
    page.get_by_test_id("squeeze-button").click()
    _finish_job(page)
    page.goto(model_url)
    rows = page.get_by_test_id("variant-row")
    expect(rows).to_have_count(3, timeout=30_000)
    int8 = rows.filter(has=page.locator("td:first-child", has_text=re.compile(r"^\s*int8")))
    assert re.search(r"\d", int8.get_by_test_id("variant-tflm").inner_text()), "no metric measured in TFLM"
    shots(page, "models-variants")

    # Compile the int8 variant for the devices' board.
    form = int8.get_by_test_id("compile-form")
    form.locator("select[name=board]").select_option("nano33ble")
    form.locator("select[name=runtime]").select_option("tflm")
    form.get_by_test_id("compile-button").click()
    _finish_job(page)
    module_id = re.search(r"mod_\w+", page.get_by_test_id("job-module").inner_text())[0]
    shots(page, "compile-job-done")

    # Deploy: the wizard picks the model, then its variant for the board, and shows the compatibility
    # check per device before the launch button.
    page.goto(server.url + "/deployments")
    page.get_by_test_id("wizard-model").select_option(model_url.rsplit("/", 1)[-1].split("?")[0])
    page.get_by_test_id("wizard-module").select_option(module_id)
    page.get_by_test_id("wizard-selector").fill("board:nano33ble")
    page.get_by_test_id("wizard-stages").fill("50,100")
    page.get_by_test_id("wizard-check").click()
    expect(page.get_by_test_id("preview-verdict")).to_have_text(["fits"] * len(fleet))
    shots(page, "deployment-check")
    page.get_by_test_id("launch").click()
    expect(page).to_have_url(re.compile(r"/deployments/cmp_"))
    expect(page.get_by_test_id("campaign-state")).to_have_text(
        re.compile("completed|halted|cancelled"), timeout=ROLLOUT_S
    )
    shots(page, "deployment-done")
    assert page.get_by_test_id("campaign-state").inner_text() == "completed"

    # The fleet page shows every device on the new model, as the devices report it.
    page.goto(server.url + "/")
    row = page.get_by_test_id("board-model-row").filter(has_text=model_name)
    # board, model as reported, online, offline, total
    expect(row.locator("td")).to_have_text(["nano33ble", f"{model_name} 1", "2", "0", "2"], timeout=60_000)
    for endpoint in fleet:
        device_row = page.get_by_test_id("fleet-device-row").filter(has_text=endpoint)
        expect(device_row).to_contain_text(f"{model_name} 1", timeout=60_000)
        # The page polls: the count the device reports for its new model appears without a reload.
        expect(device_row.locator("td").last).not_to_have_text("0", timeout=60_000)
    shots(page, "fleet-updated")

    # The remaining pages, as they look at the end of the journey.
    for path, name in (
        ("/devices", "devices"),
        (f"/devices/{fleet[0]}", "device"),
        ("/datasets", "datasets"),
        ("/models", "models"),
        ("/pipeline", "pipeline"),
        ("/cost", "cost"),
    ):
        response = page.goto(server.url + path)
        assert response is not None and response.status == 200, path
        shots(page, name)
    assert all(path.stat().st_size > 10_000 for path in shots.taken), "a blank screenshot"
    page.close()
