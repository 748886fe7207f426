"""``tinymlaas demo``'s fleet part, run as a user runs it: six devices on three boards, every outcome."""

from __future__ import annotations


def test_the_demo_fleet_takes_both_versions_and_shows_the_gate_and_a_self_test_rollback(cli) -> None:
    proc = cli("demo", "--datasets", "gestures", "--boards", "nano33ble,pico,rpi4", "--epochs", "2")
    assert "refused by the compatibility gate" in proc.stdout
    assert "runtime mismatch" in proc.stdout

    # The store keeps what the devices reported over LwM2M after the demo stopped them.
    devices = {d["endpoint"]: d for d in cli.json("devices", "list")}
    demo = {e: d for e, d in devices.items() if e.startswith("demo-")}
    assert sorted(demo) == [f"demo-{b}-{i:03d}" for b in ("nano33ble", "pico", "rpi4") for i in range(2)]
    for endpoint, device in demo.items():
        assert device["model"] == "gestures 2", endpoint
        assert device["last_result"] == "installed", endpoint
        assert "vectors within" in device["installed"]["status_reason"], endpoint
        assert device["telemetry"]["inference_count"] > 0, endpoint
    assert {d["capabilities"]["runtime"] for d in demo.values()} == {"tflm", "litert"}

    campaigns = cli.json("campaigns", "list")
    # Three boards, two versions each, plus the module whose self-test fails on the device.
    assert len(campaigns) == 7
    (broken,) = [c for c in campaigns if c["state"] == "halted"]
    (installation,) = broken["installations"]
    assert installation["state"] == "failed"
    assert installation["update_result_text"] == "installation_failure"
    assert "differs by" in installation["detail"]["status_reason"]
    assert all(c["state"] == "completed" for c in campaigns if c is not broken)
