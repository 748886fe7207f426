"""A real tabular data set with features on very different scales, squeezed to int8 honestly.

scikit-learn's bundled wine data (178 rows, 13 features from ~0.1 to ~1,700) as a user's CSV: with
input scaling (the default) int8 matches float; with scaling turned off the int8 model loses
accuracy, the variant is marked degraded with its figures, and deploy refuses it unless allowed.
"""

import csv
import json
import zipfile

import pytest
from sklearn.datasets import load_wine


@pytest.fixture
def wine_csv(tmp_path):
    data = load_wine()
    path = tmp_path / "wine.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(n.replace("/", "_") for n in data.feature_names), "cultivar"])
        for row, target in zip(data.data, data.target, strict=True):
            writer.writerow([*row, data.target_names[target]])
    return path


def _int8(report):
    return next(r for r in report["variants"] if r["quantization"] == "int8")


def test_scaled_int8_keeps_float_accuracy_and_unscaled_int8_is_refused(cli, wine_csv, tmp_path):
    cli("datasets", "import", "wine", str(wine_csv), "--label-column", "cultivar")
    assert cli.json("datasets", "show", "wine")["input_scaling"] == "standardize"

    report = cli.json("lifecycle", "run", "--dataset", "wine", "--boards", "nano33ble")
    float_metric, int8 = report["float_metric"], _int8(report)
    test_samples = float_metric["n"]
    assert test_samples >= 20 and float_metric["low"] <= float_metric["value"] <= float_metric["high"]
    assert int8["metric"]["n"] == test_samples
    assert int8["metric"]["value"] >= float_metric["value"] - 0.01
    assert int8["method"] == "ptq" and not int8["degraded"]
    model = cli.json("models", "show", report["model"])
    scaling = model["input_scaling"]
    assert scaling["method"] == "standardize" and len(scaling["offset"]) == 13
    assert max(scaling["scale"]) / min(scaling["scale"]) > 1000  # proline's spread vs hue's
    table = cli("models", "show", report["model"]).stdout
    assert f"n={test_samples})" in table and "95 % CI" in table and "int8 · ptq" in table

    # The module's own model.tflite brought back keeps the scaling it needs, and so its accuracy.
    cli("compile", int8["variant"], "--board", "nano33ble", "--out", str(tmp_path / "module.zip"))
    with zipfile.ZipFile(tmp_path / "module.zip") as module:
        (tmp_path / "back.tflite").write_bytes(module.read("model.tflite"))
        assert json.loads(module.read("manifest.json"))["input_scaling"] == scaling
    back = cli.json("models", "import", str(tmp_path / "back.tflite"), "--dataset", "wine")
    assert back["input_scaling"] == scaling
    assert back["variants"][0]["metrics"]["tflm"] == int8["metric"]

    cli("datasets", "set", "wine", "--scaling", "none")
    unscaled = cli.json("lifecycle", "run", "--dataset", "wine", "--boards", "nano33ble")
    int8 = _int8(unscaled)
    assert int8["degraded"], int8
    assert int8["degraded_reason"].endswith(
        "points lost (more than the 2-point limit), on 178 samples (5-fold cross-validation)"
    )
    attempts = int8["quantization_report"]["attempts"]
    assert [a["method"] for a in attempts] == ["ptq", "qat"]
    assert attempts[1].get("metrics") or attempts[1].get("skipped")

    refused = cli("deploy", int8["module"], "--to", "board:nano33ble", ok=False)
    assert (
        refused.returncode == 1 and "is degraded" in refused.stderr and "--allow-degraded" in refused.stderr
    )
    allowed = cli("deploy", int8["module"], "--to", "board:nano33ble", "--allow-degraded", ok=False)
    assert "is degraded" not in allowed.stderr and "No registered device" in allowed.stderr


def test_bad_scaling_choices_are_named(cli, wine_csv):
    cli("datasets", "import", "wine", str(wine_csv), "--label-column", "cultivar")
    proc = cli("datasets", "set", "wine", "--scaling", "zscore", ok=False)
    assert proc.returncode == 2 and "zscore" in proc.stderr
    proc = cli("datasets", "set", "wine", ok=False)
    assert proc.returncode == 1 and "--scaling" in proc.stderr


def test_data_that_trains_or_quantizes_badly_is_named_at_import(cli, tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("a,b,label\n1,2,x\n3,2,x\n5,2,x\n")
    imported = cli("datasets", "import", "one", str(one))
    assert "imported 3 samples" in imported.stdout
    assert "warning: the dataset holds one class ('x'); a classifier needs at least two" in imported.stderr
    assert "warning: feature 1 has the same value in every imported sample" in imported.stderr
    assert "at least two classes" in cli("train", "--dataset", "one", ok=False).stderr
    spread = tmp_path / "prices.csv"
    spread.write_text("rooms,price\n1,900\n2,40000\n3,2500000\n4,31000000\n")
    report = cli.json(
        "datasets", "import", "prices", str(spread), "--label-column", "price", "--task", "regression"
    )
    assert report["added"] == 4 and "spans 900 to 3.1e+07" in report["warnings"][0]
    nan = tmp_path / "nan.csv"
    nan.write_text("a,b,label\n1,nan,x\n3,4,y\n")
    refused = cli("datasets", "import", "nan", str(nan), ok=False)
    assert "nan.csv:2: column 'b': 'nan' is not a finite number" in refused.stderr
    assert "nan" not in {d["name"] for d in cli.json("datasets", "list")}
