"""Run the real ``tinymlaas`` console entry point, as a user would, against a temporary store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "tinymlaas"]


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "TINYMLAAS_DATA_DIR": str(self.data_dir)}
        proc = subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env=env, check=False, timeout=900
        )
        if ok and proc.returncode != 0:
            raise AssertionError(
                f"tinymlaas {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        return proc

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path / "store")


@pytest.fixture(scope="module")
def module_cli(tmp_path_factory) -> Cli:
    return Cli(tmp_path_factory.mktemp("store"))


Runner = Callable[..., subprocess.CompletedProcess[str]]
