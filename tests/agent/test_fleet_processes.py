"""``fleet spawn --processes``: one fleet split over several OS processes behaves as one."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tinymlaas.deploy import SigningKey
from tinymlaas.lwm2m.server import Lwm2mServer


def test_a_fleet_split_over_two_processes_registers_every_agent_and_stops_on_sigterm(tmp_path: Path) -> None:
    key_file = tmp_path / "server.pub"
    key_file.write_bytes((SigningKey.generate().public_key_bytes().hex() + "\n").encode())

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0)
        command = [sys.executable, "-m", "tinymlaas", "fleet", "spawn", "--count", "3", "--board", "pico"]
        command += ["--server", server.uri, "--state-dir", str(tmp_path / "agents"), "--processes", "2"]
        command += ["--public-key", str(key_file), "--loss", "0"]
        env = {**os.environ, "TINYMLAAS_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
        fleet = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        try:
            async with asyncio.timeout(60):
                while len(server.store.all()) < 3:
                    assert fleet.returncode is None
                    await asyncio.sleep(0.1)
            endpoints = sorted(registration.endpoint for registration in server.store.all())
            assert endpoints == ["pico-000", "pico-001", "pico-002"]
            fleet.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(fleet.communicate(), 30)
        finally:
            if fleet.returncode is None:
                fleet.kill()
                await fleet.wait()
            await server.stop()
        assert fleet.returncode == 0, err.decode()
        lines, errors = out.decode().splitlines(), err.decode().splitlines()
        for endpoint in endpoints:
            assert any(line.startswith(f"{endpoint} ") and "registered" in line for line in lines), lines
            # Each child printed its relays' counters on the way out, relayed whole.
            assert any(line.startswith(f"{endpoint} loopback") for line in errors), errors
        assert errors[0].startswith("3 x ") and "in 2 processes" in errors[0]
        assert errors[-1] == "fleet stopped" and errors.count("fleet stopped") == 1
        assert not server.store.all()  # every agent de-registered

    asyncio.run(scenario())
