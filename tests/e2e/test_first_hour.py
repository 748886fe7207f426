"""What a new user meets after `make demo`: the CLI, typed in the same directory, reads the demo's store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tinymlaas.services.context import Context
from tinymlaas.services.provisioning import provision_device
from tinymlaas.settings import Settings


def test_the_cli_in_the_demos_directory_reads_the_demos_store(tmp_path: Path) -> None:
    project = tmp_path / "project"
    provision_device(Context(Settings(data_dir=project / ".data")), "demo-pico-000", "pico")
    env = {key: value for key, value in os.environ.items() if key != "TINYMLAAS_DATA_DIR"}
    env["HOME"] = str(tmp_path / "home")  # the per-user store, which must stay untouched
    shown = subprocess.run(
        [sys.executable, "-m", "tinymlaas", "devices", "credentials", "--json"],
        cwd=project, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert [item["endpoint"] for item in json.loads(shown.stdout)["items"]] == ["demo-pico-000"]
    assert not (tmp_path / "home" / ".local" / "share" / "tinymlaas").exists()

    elsewhere = subprocess.run(
        [sys.executable, "-m", "tinymlaas", "devices", "credentials", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(elsewhere.stdout)["items"] == []
    assert (tmp_path / "home" / ".local" / "share" / "tinymlaas").is_dir()


def test_tables_written_to_a_file_are_complete(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    env["TINYMLAAS_DATA_DIR"] = str(tmp_path / "data")
    listed = subprocess.run(
        [sys.executable, "-m", "tinymlaas", "boards", "list"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "…" not in listed.stdout  # Rich's cut mark: at 80 columns a cell ends in it
    assert "nucleo-l4r5zi" in listed.stdout
