"""Data and models from elsewhere through the same commands; bad files leave the store intact."""

import numpy as np
import pytest


@pytest.fixture
def wine_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["alcohol,acidity,sugar,label"]
    for i in range(240):
        label = ("red", "white", "rose")[i % 3]
        centre = {"red": (13, 0.6, 2), "white": (11, 0.3, 6), "rose": (12, 0.45, 4)}[label]
        values = rng.normal(centre, (0.6, 0.05, 0.8))
        rows.append(",".join(f"{v:.3f}" for v in values) + f",{label}")
    path = tmp_path / "wine.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_tabular_csv_goes_through_the_lifecycle(cli, wine_csv):
    cli("datasets", "import", "wine", str(wine_csv))
    shown = cli.json("datasets", "show", "wine")
    assert shown["samples"] == 240 and shown["labels"] == ["red", "rose", "white"]
    report = cli.json("lifecycle", "run", "--dataset", "wine", "--boards", "pico", "--epochs", "60")
    int8 = next(r for r in report["variants"] if r["quantization"] == "int8")
    assert report["arch"] == "dense" and int8["fits"]
    assert int8["metric"]["value"] >= 0.8


def test_bad_files_get_clear_errors_and_the_store_survives(cli, wine_csv, tmp_path):
    cli("datasets", "import", "wine", str(wine_csv))
    before = cli.json("datasets", "show", "wine")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("alcohol,acidity,sugar,label\n1,2,3,red\n1,2,red\n")
    proc = cli("datasets", "import", "wine", str(ragged), ok=False)
    assert proc.returncode == 1 and "ragged.csv" in proc.stderr and "Traceback" not in proc.stderr
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40)
    proc = cli("models", "import", str(broken), ok=False)
    assert proc.returncode == 1 and "broken.tflite" in proc.stderr and "Traceback" not in proc.stderr
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    proc = cli("models", "import", str(text), ok=False)
    assert "not a TFLite model" in proc.stderr
    for name in ("../../evil", "two words", "line\nbreak", "<b>bold</b>"):
        proc = cli("models", "import", str(broken), "--name", name, ok=False)
        assert proc.returncode == 1 and "model name" in proc.stderr, (name, proc.stderr)
    spaced = tmp_path / "my model.tflite"
    spaced.write_bytes(broken.read_bytes())
    assert "model name 'my model'" in cli("models", "import", str(spaced), ok=False).stderr
    assert cli.json("datasets", "show", "wine") == before
    assert cli.json("models", "list") == []


def test_a_tflite_from_other_tools_is_inspected_scored_and_compiled(cli, tiny_models, tmp_path):
    x = np.concatenate([tiny_models.x_train[:120], tiny_models.x_test[:60]])
    y = np.concatenate([tiny_models.y_train[:120], tiny_models.y_test[:60]])
    np.savez(tmp_path / "win.npz", x=x, y=y, labels=np.array(["a", "b", "c", "d"]))
    cli("datasets", "import", "win", str(tmp_path / "win.npz"))
    model_file = tmp_path / "other.tflite"
    model_file.write_bytes(tiny_models.int8)
    imported = cli.json("models", "import", str(model_file), "--dataset", "win")
    (variant,) = imported["variants"]
    assert variant["quantization"] == "int8" and variant["arena_bytes"] > 0
    assert variant["metrics"]["tflm"]["value"] >= 0.9
    module = cli.json("compile", variant["id"], "--board", "nano33ble")
    assert module["fits"] and module["runtime"] == "tflm"


def test_unknown_board_and_dataset_are_named(cli):
    proc = cli("boards", "show", "arduino-uno", ok=False)
    assert proc.returncode == 1 and "arduino-uno" in proc.stderr and "nano33ble" in proc.stderr
    proc = cli("lifecycle", "run", "--dataset", "nothing", "--boards", "pico", ok=False)
    assert "nothing" in proc.stderr


def test_a_keras_model_from_elsewhere_is_squeezed_like_a_trained_one(cli, tiny_models, tmp_path):
    np.savez(
        tmp_path / "win.npz",
        x=np.concatenate([tiny_models.x_train[:150], tiny_models.x_test[:60]]),
        y=np.concatenate([tiny_models.y_train[:150], tiny_models.y_test[:60]]),
        labels=np.array(["a", "b", "c", "d"]),
    )
    cli("datasets", "import", "win", str(tmp_path / "win.npz"))
    path = tmp_path / "theirs.keras"
    tiny_models.keras_model.save(path)
    model = cli.json("models", "import", str(path), "--dataset", "win")
    assert model["origin"] == "imported" and model["float_metric"]["value"] >= 0.9
    variants = cli.json("squeeze", model["id"], "-q", "int8")
    (int8,) = variants
    assert abs(int8["metrics"]["tflm"]["value"] - model["float_metric"]["value"]) <= 0.05
    proc = cli("models", "import", str(path), ok=False)
    assert proc.returncode == 1 and "needs --dataset" in proc.stderr


def test_a_users_own_board_file_joins_the_catalog(cli, tmp_path):
    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "tiny-m0.toml").write_text(
        """
id = "tiny-m0"
name = "Tiny M0 test board"
class = "mcu"
soc = "Example SoC"
core = "cortex-m0plus"
clock_mhz = 48
flash_bytes = 262144
ram_bytes = 32768
usable_flash_bytes = 131072
usable_ram_bytes = 8192
runtimes = ["tflm"]
transports = ["uart"]
sensors = []

[sources]
clock_mhz = "example datasheet"
flash_bytes = "example datasheet"
ram_bytes = "example datasheet"
usable_flash_bytes = "estimate for the test"
usable_ram_bytes = "estimate for the test"
"""
    )
    shown = cli.json("--boards-dir", str(boards), "boards", "show", "tiny-m0")
    assert shown["usable_ram_bytes"] == 8192 and shown["sources"]["ram_bytes"] == "example datasheet"
    ids = [b["id"] for b in cli.json("--boards-dir", str(boards), "boards", "list")]
    assert "tiny-m0" in ids and "nano33ble" in ids
