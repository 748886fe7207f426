"""Jobs under a real ``tinymlaas serve``: a server killed mid-job leaves none stuck, and new ones run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
from test_serve import free_udp_port, output_until

TERMINAL = {"succeeded", "failed", "cancelled"}


def _serve(cli) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(cli.data_dir)}
    command = [sys.executable, "-m", "tinymlaas", "serve", "--http-port", "0", "--json"]
    return subprocess.Popen(
        [*command, "--coaps-port", str(free_udp_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _job(api: httpx.Client, job_id: str, until: set[str], timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/jobs/{job_id}").json()
        if job["state"] in until:
            return job
        assert time.monotonic() < deadline, f"job never reached {until}: {job}"
        time.sleep(0.3)


def test_a_server_killed_mid_job_marks_it_failed_on_restart_and_runs_new_jobs(cli) -> None:
    cli("datasets", "create", "waves", "--generator", "sine", "--samples", "400")
    server = _serve(cli)
    try:
        started = json.loads(output_until(server, "coap_uri", 30))
        bearer = {"Authorization": f"Bearer {started['admin_token']}"}
        with httpx.Client(base_url=f"{started['http_url']}/api/v1", headers=bearer, timeout=30) as api:
            long_job = api.post(
                "/jobs", json={"kind": "train", "params": {"dataset": "waves", "epochs": 500}}
            )
            assert long_job.status_code == 202, long_job.text
            running = _job(api, long_job.json()["id"], {"running", *TERMINAL})
            assert running["state"] == "running", running
        server.send_signal(signal.SIGKILL)  # no shutdown: the job row still says running
        server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert cli.json("jobs", "show", running["id"])["state"] == "running"

    server = _serve(cli)
    try:
        started = json.loads(output_until(server, "coap_uri", 30))
        login = cli("tokens", "create", "--role", "data-scientist", "--json")
        bearer = {"Authorization": f"Bearer {json.loads(login.stdout)['secret']}"}
        with httpx.Client(base_url=f"{started['http_url']}/api/v1", headers=bearer, timeout=30) as api:
            failed = api.get(f"/jobs/{running['id']}").json()
            assert failed["state"] == "failed"
            assert failed["error"] == "the server stopped while the job ran"

            quick = api.post("/jobs", json={"kind": "train", "params": {"dataset": "waves", "epochs": 1}})
            assert quick.status_code == 202, quick.text
            done = _job(api, quick.json()["id"], TERMINAL)
            assert done["state"] == "succeeded", done
            assert done["result"]["id"].startswith("mdl_")
            assert done["result"]["run"]["epochs_run"] == 1
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
