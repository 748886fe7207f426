"""A new user's whole journey in headless Chromium, against a real server, job workers and devices.

Log in → create a dataset from a generator → label a few samples → train → squeeze and compare the
variants → compile for the devices' board → deploy to two emulated nano33ble boards → watch the
fleet page show the new model version → train a second version and deploy it to every nano33ble,
a third one included that trusts another server's package key → that device refuses the package
and the fleet page raises an alert, which the user acknowledges → roll the campaign back, through
its confirmation step → the campaign page shows each device back on the first version as the device
reported it, and the device's timeline shows the install and the rollback. Every step goes through
the dashboard's own forms and buttons; every figure asserted is what the server stored or the
devices reported.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

JOB_S = 300_000  # ms a background job (training, squeezing, compiling) may take on a busy 2-core machine
ROLLOUT_S = 240_000  # ms for the devices to download, verify, install and self-test a module
ROLLBACK_S = 120_000  # ms for the devices to uninstall a module and report the model they went back to
DATASET = "journey-gestures"


def _finish_job(page: Page) -> None:
    """On a job's page: wait until it succeeds (the page updates itself), failing with its log if not."""
    state = page.get_by_test_id("job-state")
    expect(state).to_have_text(re.compile("succeeded|failed|cancelled"), timeout=JOB_S)
    assert state.inner_text() == "succeeded", page.get_by_test_id("job-log").inner_text()


def _train(page: Page, server, epochs: int, shots, suffix: str = "") -> tuple[str, str]:
    """From the Training form, a new version of a model on the journey's dataset: its page's path and
    its name and version as the run names them."""
    page.goto(server.url + "/training")
    page.get_by_test_id("train-dataset").select_option(DATASET)
    page.get_by_test_id("train-epochs").fill(str(epochs))
    page.get_by_test_id("train-submit").click()
    expect(page).to_have_url(re.compile(r"/training/jobs/job_"))
    shots(page, f"training-job-running{suffix}")
    _finish_job(page)
    shots(page, f"training-job-done{suffix}")
    page.get_by_test_id("job-run").click()
    expect(page.get_by_test_id("run-curve").first).to_be_visible()
    expect(page.get_by_test_id("confusion")).to_be_visible()
    shots(page, f"training-run{suffix}")
    model_link = page.get_by_test_id("run-model")
    return model_link.get_attribute("href"), model_link.inner_text()


def _squeeze_and_compile_int8(page: Page, server, model_path: str, shots, suffix: str = "") -> str:
    """Squeeze a model from its page, compare its variants, and compile the int8 one for the devices'
    board on TFLM; the compiled module's id."""
    page.goto(server.url + model_path)
    page.get_by_test_id("squeeze-button").click()
    _finish_job(page)
    page.goto(server.url + model_path)
    rows = page.get_by_test_id("variant-row")
    expect(rows).to_have_count(3, timeout=30_000)
    int8 = rows.filter(has=page.locator("td:first-child", has_text=re.compile(r"^\s*int8")))
    assert re.search(r"\d", int8.get_by_test_id("variant-tflm").inner_text()), "no metric measured in TFLM"
    shots(page, f"models-variants{suffix}")
    form = int8.get_by_test_id("compile-form")
    form.locator("select[name=board]").select_option("nano33ble")
    form.locator("select[name=runtime]").select_option("tflm")
    form.get_by_test_id("compile-button").click()
    _finish_job(page)
    shots(page, f"compile-job-done{suffix}")
    return re.search(r"mod_\w+", page.get_by_test_id("job-module").inner_text())[0]


def _check_rollout(
    page: Page, server, model_path: str, module_id: str, endpoints: list[str], plan: dict[str, str]
) -> None:
    """Through the wizard: the model, then its variant for the board, then the devices, which the
    page counts while they are typed, and the stages; Check shows the gate's verdict per device."""
    page.goto(server.url + "/deployments")
    page.get_by_test_id("wizard-model").select_option(model_path.rsplit("/", 1)[-1])
    page.get_by_test_id("wizard-module").select_option(module_id)
    page.get_by_test_id("wizard-selector").fill(plan["selector"])
    count = page.get_by_test_id("target-count")
    expect(count).to_have_text(re.compile(rf"^{len(endpoints)} devices: "))
    for endpoint in endpoints:
        expect(count).to_contain_text(endpoint)
    page.get_by_test_id("wizard-stages").fill(plan["stages"])
    page.get_by_test_id("wizard-max-failures").fill(plan["max_failures"])
    page.get_by_test_id("wizard-check").click()
    expect(page.get_by_test_id("preview-verdict")).to_have_text(["fits"] * len(endpoints))


def test_a_new_user_goes_from_a_dataset_to_a_fleet_running_their_model(
    browser: Browser, server, fleet, stale_key_device, shots
):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    every_board = [*fleet, stale_key_device]

    # Log in with the admin token the server printed once at its first start.
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    shots(page, "login")
    page.fill("#token", server.admin_token)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("devices-online")).to_have_text(str(len(every_board)), timeout=60_000)
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

    # Train on it from the Training form (the job page follows the worker's progress), squeeze the
    # model, compare its variants side by side and compile the int8 one for the devices' board.
    model_path, first = _train(page, server, 3, shots)
    model_name = first.rsplit(" v", 1)[0]
    module_id = _squeeze_and_compile_int8(page, server, model_path, shots)

    # Deploy to the two boards named: the wizard picks the model, then its variant for the board, and
    # shows the compatibility check per device before the launch button.
    plan = {"selector": ",".join(fleet), "stages": "50,100", "max_failures": "0"}
    _check_rollout(page, server, model_path, module_id, fleet, plan)
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

    # A second version, deployed to every nano33ble in one stage: the third board passes the gate on
    # what it reported, then refuses the package itself because it trusts another server's key.
    second_path, second = _train(page, server, 2, shots, "-v2")
    assert second == f"{model_name} v2"
    second_module = _squeeze_and_compile_int8(page, server, second_path, shots, "-v2")
    plan = {"selector": "board:nano33ble", "stages": "100", "max_failures": "1"}
    _check_rollout(page, server, second_path, second_module, every_board, plan)
    shots(page, "deployment-check-v2")
    page.get_by_test_id("launch").click()
    expect(page).to_have_url(re.compile(r"/deployments/cmp_"))
    campaign_url = page.url
    installation = {
        e: page.locator(f'[data-testid="installation-row"][data-endpoint="{e}"]') for e in every_board
    }
    for endpoint in fleet:
        expect(installation[endpoint].get_by_test_id("installation-state")).to_have_text(
            "succeeded", timeout=ROLLOUT_S
        )
    refused = installation[stale_key_device]
    expect(refused.get_by_test_id("installation-state")).to_have_text("failed", timeout=ROLLOUT_S)
    expect(refused.get_by_test_id("installation-cause")).to_have_text("device")
    expect(refused.get_by_test_id("installation-result")).to_contain_text("integrity")
    expect(page.get_by_test_id("campaign-state")).to_have_text("completed", timeout=30_000)
    shots(page, "deployment-failed-on-one")

    # The fleet page raises an alert for the failed installation; the user acknowledges it there.
    page.goto(server.url + "/")
    alert = page.get_by_test_id("alert-row").filter(has_text=stale_key_device)
    expect(alert).to_have_count(1, timeout=30_000)
    expect(alert.locator("td").first).to_have_text("failed")
    shots(page, "fleet-alert")
    alert.get_by_test_id("ack").click()
    expect(page).to_have_url(re.compile(r"/#alerts$"))
    expect(alert.get_by_test_id("alert-ack")).to_contain_text("by token first admin")
    shots(page, "fleet-alert-acknowledged")

    # Roll the campaign back: the page asks first, naming the devices that will go back.
    page.goto(campaign_url)
    page.get_by_test_id("rollback").click()
    expect(page.get_by_test_id("confirm-title")).to_have_text("Roll this campaign back?")
    expect(page.get_by_test_id("confirm-affected")).to_contain_text(f"{len(fleet)} devices")
    for endpoint in fleet:
        expect(page.get_by_test_id("confirm-affected")).to_contain_text(endpoint)
    expect(page.get_by_test_id("confirm-affected")).not_to_contain_text(stale_key_device)
    shots(page, "rollback-confirm")
    page.get_by_test_id("confirm").click()
    expect(page).to_have_url(campaign_url)
    expect(page.get_by_test_id("campaign-state")).to_have_text("rolled_back", timeout=ROLLBACK_S)

    # Each device is back on the first version, as it reported after Uninstall; the page says who
    # asked for the rollback and charts which version the targets ran.
    for endpoint in fleet:
        expect(installation[endpoint].get_by_test_id("installation-result")).to_contain_text(
            f"back on {first}"
        )
        expect(installation[endpoint].get_by_test_id("installation-cause")).to_have_text("operator")
    expect(refused.get_by_test_id("installation-state")).to_have_text("failed")
    action = page.get_by_test_id("operator-action").filter(has_text="rollback")
    expect(action.first).to_contain_text("first admin")
    expect(page.get_by_test_id("version-share")).to_be_visible()
    shots(page, "campaign-rolled-back")

    # The device's timeline shows the second version's install and the rollback to the first.
    page.goto(f"{server.url}/devices/{fleet[0]}")
    steps = page.get_by_test_id("timeline-row").filter(has=page.get_by_test_id("step-kind"))
    expect(steps.filter(has_text=f"installed {second}")).to_have_count(1)
    expect(steps.filter(has_text=f"rolled back: back on {first}")).to_have_count(1)
    shots(page, "device")

    # The remaining pages, as they look at the end of the journey.
    for path, name in (
        ("/devices", "devices"),
        (f"/devices/{stale_key_device}", "device-failed"),
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
