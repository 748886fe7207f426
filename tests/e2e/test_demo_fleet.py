"""``tinymlaas demo`` run as a user runs it: the dashboard up, lifecycle jobs, six devices, every outcome,
and a three-node pipeline running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx
from test_serve import output_until

from helpers.seeding import log_in

FLEET_BOARDS = ("nano33ble", "pico", "rpi4")
PIPELINE_STAGES = (("gate", "demo-gate"), ("classify", "demo-gateway"), ("confirm", "demo-cloud"))
PIPELINE_NODES = {node for _, node in PIPELINE_STAGES}


def _in_fleet(endpoint: str) -> bool:
    return endpoint.startswith("demo-") and endpoint not in PIPELINE_NODES


def _log_in(client: httpx.Client, token: str) -> None:
    response = log_in(client, token)
    assert response.status_code == 303, response.text


def test_the_demo_keeps_the_dashboard_up_on_a_fleet_that_took_both_versions_and_a_pipeline(cli) -> None:
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(cli.data_dir)}
    demo = subprocess.Popen(
        [
            sys.executable, "-m", "tinymlaas", "demo", "--datasets", "gestures",
            "--boards", ",".join(FLEET_BOARDS), "--epochs", "2", "--http-port", "0",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        printed = output_until(demo, "press Ctrl-C", 900)
        url = re.search(r"dashboard on (http://\S+?)/ ", printed)[1]
        token = re.search(r"admin API token \(log in with it\): (tmls_\S+)", printed)[1]
        assert "refused by the compatibility gate" in printed
        assert "runtime mismatch" in printed
        assert "58 installation failure" in printed  # what the README promises, whole in a log
        assert "…" not in printed

        # The pipeline's table, as its nodes reported: every stage saw windows; the savings told.
        assert "Pipeline scenes-journey (running)" in printed
        for stage, node in PIPELINE_STAGES:
            row = re.search(rf"│ {stage} +│ {node} +│ (\d+) +│", printed)
            assert row is not None and int(row[1]) > 0, (stage, printed[-3000:])
        assert re.search(r"gate: \d+ of \d+ windows \(\d+ %\) never left the device", printed)
        assert re.search(r"classify: \d+ of \d+ windows \(\d+ %\) never left the gateway", printed)

        # While the demo waits, the dashboard shows the fleet the devices report, live.
        with httpx.Client(base_url=url, timeout=30) as client:
            _log_in(client, token)
            fleet = client.get("/ui/fleet.json").json()
            demo_devices = [d for d in fleet["devices"] if _in_fleet(d["endpoint"])]
            assert len(demo_devices) == 6
            assert fleet["counts"]["online"] == len(demo_devices) + len(PIPELINE_NODES)
            assert {d["model"] for d in demo_devices} == {"gestures 2"}
            assert "demo-nano33ble-000" in client.get("/").text
            bearer = {"Authorization": f"Bearer {token}"}
            listed = client.get("/api/v1/devices", headers=bearer).json()
            assert listed["count"] == 9

            pipelines = client.get("/pipelines").text
            row = re.search(r'data-pipeline="scenes-journey">(.*?)</tr>', pipelines, re.S)
            assert row is not None, pipelines
            assert re.search(r'data-testid="pipeline-state">running<', row[1]), row[1]
            assert "gate → classify → confirm" in row[1]
            pipeline = client.get("/api/v1/pipelines/scenes-journey", headers=bearer).json()
            assert pipeline["state"] == "running"
            assert [(s["name"], *s["nodes"]) for s in pipeline["stages"]] == list(PIPELINE_STAGES)
            assert all(s["messages_in"] > 0 for s in pipeline["stages"])

        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    # The store keeps what the devices reported over LwM2M after the demo stopped them.
    devices = {d["endpoint"]: d for d in cli.json("devices", "list")}
    demo_devices = {e: d for e, d in devices.items() if _in_fleet(e)}
    assert sorted(demo_devices) == [f"demo-{b}-{i:03d}" for b in FLEET_BOARDS for i in range(2)]
    for endpoint, device in demo_devices.items():
        assert not device["online"], endpoint
        assert device["model"] == "gestures 2", endpoint
        assert device["last_result"] == "installed", endpoint
        assert "vectors within" in device["installed"]["status_reason"], endpoint
        assert device["telemetry"]["inference_count"] > 0, endpoint
    runtimes = {e.rsplit("-", 1)[0]: d["capabilities"]["runtime"] for e, d in demo_devices.items()}
    assert runtimes == {"demo-nano33ble": "native", "demo-pico": "native", "demo-rpi4": "litert"}
    for endpoint, device in demo_devices.items():
        basis = device["telemetry"]["latency_basis"]
        if endpoint.startswith("demo-rpi4"):
            assert basis.startswith("measured: wall time of the litert runtime on the emulating host"), basis
        else:
            # MCU devices report their board's estimate from QEMU instruction counts, never host time.
            assert basis.startswith("estimate:") and "QEMU" in basis, basis

    campaigns = cli.json("campaigns", "list")
    # Three boards, two versions each, the module whose self-test fails on the device, and one
    # campaign per pipeline stage.
    assert len(campaigns) == 7 + len(PIPELINE_STAGES)
    (broken,) = [c for c in campaigns if c["state"] == "halted"]
    (installation,) = broken["installations"]
    assert installation["state"] == "failed"
    assert installation["update_result_text"] == "installation_failure"
    assert "differs by" in installation["detail"]["status_reason"]
    assert all(c["state"] == "completed" for c in campaigns if c is not broken)

    # Both gestures versions and the pipeline's two scenes models were trained by the server's job
    # workers, as lifecycle jobs.
    jobs = cli.json("jobs", "list")
    assert [(j["kind"], j["state"]) for j in jobs] == [("lifecycle", "succeeded")] * 4
    assert sorted((j["params"]["dataset"], j["params"].get("arch")) for j in jobs) == [
        ("gestures", None),
        ("gestures", None),
        ("scenes", "gate"),
        ("scenes", "mobilenet"),
    ]


def test_the_demo_without_waiting_runs_the_lifecycle_as_a_job_and_exits(cli) -> None:
    proc = cli(
        "demo", "--datasets", "sine", "--boards", "nano33ble", "--no-fleet", "--epochs", "1",
        "--http-port", "0", "--no-wait",
    )  # fmt: skip
    assert re.search(r"dashboard on http://127\.0\.0\.1:\d+/", proc.stdout)
    assert re.search(r"admin API token \(log in with it\): tmls_", proc.stdout)
    assert "nano33ble" in proc.stdout  # the comparison table of the measured variants
    (job,) = cli.json("jobs", "list")
    assert (job["kind"], job["state"], job["params"]["dataset"]) == ("lifecycle", "succeeded", "sine")
    assert job["result"]["variants"]
