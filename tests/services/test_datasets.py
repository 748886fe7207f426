import sqlite3

import numpy as np
import pytest

from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.services.datasets import DatasetService


def _rows(context, table):
    db = context.settings.data_dir / "tinymlaas.db"
    return sqlite3.connect(db).execute(f"select count(*) from {table}").fetchone()[0]


def _write_csv(path, rows, header="a,b,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_generator_dataset_then_snapshot_is_content_addressed(context):
    service = DatasetService(context)
    report = service.generate("g", "gestures", samples=80, seed=3)
    assert report.added == 80 and report.duplicates == 0
    summary = service.show("g")
    assert summary.spec.input_shape == (64, 3) and sum(summary.label_counts.values()) == 80
    first = service.snapshot("g")
    assert service.snapshot("g") == first  # same content, same id
    assert len(first) == 64 and service.show("g").snapshots[0]["id"] == first


def test_csv_import_appends_and_changes_the_snapshot(context, tmp_path):
    service = DatasetService(context)
    service.import_path("tab", _write_csv(tmp_path / "t.csv", ["1,2,x", "3,4,y", "5,6,x"]))
    before = service.snapshot("tab")
    report = service.import_path("tab", _write_csv(tmp_path / "u.csv", ["7,8,y", "1,2,x"]))
    assert (report.added, report.duplicates) == (1, 1)
    assert service.snapshot("tab") != before
    assert service.show("tab").label_counts == {"x": 2, "y": 2}


def test_bad_input_names_the_file_and_keeps_the_store_intact(context, tmp_path):
    service = DatasetService(context)
    service.import_path("tab", _write_csv(tmp_path / "good.csv", ["1,2,x", "3,4,y"]))
    snapshot = service.snapshot("tab")
    samples = _rows(context, "samples")
    ragged = _write_csv(tmp_path / "ragged.csv", ["1,2,x", "3,y"])
    with pytest.raises(InvalidInput, match=r"ragged\.csv.*3"):
        service.import_path("tab", ragged)
    unknown = _write_csv(tmp_path / "unknown.csv", ["1,2,x", "3,4,z"])
    with pytest.raises(InvalidInput, match=r"unknown label 'z'"):
        service.import_path("tab", unknown)
    wide = _write_csv(tmp_path / "wide.csv", ["1,2,3,x"], header="a,b,c,label")
    with pytest.raises(InvalidInput, match=r"does not match the dataset"):
        service.import_path("tab", wide)
    assert _rows(context, "samples") == samples
    assert service.snapshot("tab") == snapshot


def test_a_failed_import_of_a_new_dataset_creates_nothing(context, tmp_path):
    service = DatasetService(context)
    bad = _write_csv(tmp_path / "bad.csv", ["1,2,x", "oops,4,y"])
    with pytest.raises(InvalidInput, match=r"bad\.csv"):
        service.import_path("new", bad)
    with pytest.raises(NotFound):
        service.show("new")


def test_names_and_duplicates_are_checked(context):
    service = DatasetService(context)
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (2,), ("a", "b"))
    service.create("ok", spec)
    with pytest.raises(Conflict, match="already exists"):
        service.create("ok", spec)
    with pytest.raises(InvalidInput, match="dataset name"):
        service.create("../escape", spec)
    with pytest.raises(InvalidInput, match="no samples"):
        service.snapshot("ok")
    with pytest.raises(InvalidInput, match="at least two class labels"):
        service.create("nolabels", DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (2,)))
    with pytest.raises(NotFound, match="known datasets: ok"):
        service.show("missing")


def test_load_gives_a_deterministic_stratified_split(context):
    service = DatasetService(context)
    service.generate("d", "digits", samples=300, seed=1)
    snapshot = service.snapshot("d")
    a = service.load(snapshot, seed=9)
    b = service.load(snapshot, seed=9)
    assert np.array_equal(a.arrays.x_test, b.arrays.x_test)
    assert sum(a.split_counts.values()) == 300
    assert set(np.unique(a.arrays.y_test)) == set(range(10))
    other = service.load(snapshot, seed=10)
    assert not np.array_equal(a.arrays.y_test, other.arrays.y_test)
