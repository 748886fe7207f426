from pathlib import Path

import numpy as np
import pytest

from tinymlaas.data.importers import import_csv, import_path
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.errors import InvalidInput


def write(tmp_path: Path, text: str, name: str = "table.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_rows_become_vectors_with_the_label_column_anywhere(tmp_path):
    path = write(tmp_path, "a,label,b\n1,cat,2\n3.5,dog,-4e-1\n5,cat,6\n")
    data = import_csv(path)
    assert data.spec == DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (2,), ("cat", "dog"))
    assert [s.source for s in data.samples] == ["table.csv:2", "table.csv:3", "table.csv:4"]
    assert [s.label for s in data.samples] == ["cat", "dog", "cat"]
    np.testing.assert_allclose(data.samples[1].x, [3.5, -0.4], atol=1e-6)
    assert data.samples[1].x.dtype == np.float32


def test_regression_targets_are_floats(tmp_path):
    path = write(tmp_path, "x,y\n0.0,0.5\n1.0,-1.25\n")
    data = import_csv(path, label_column="y", task=Task.REGRESSION)
    assert data.spec.task is Task.REGRESSION
    assert data.spec.labels == ()
    assert [s.target for s in data.samples] == [0.5, -1.25]
    assert all(s.label is None for s in data.samples)


def test_task_follows_the_spec(tmp_path):
    spec = DatasetSpec(Task.REGRESSION, SampleKind.VECTOR, (1,))
    data = import_csv(write(tmp_path, "x,label\n1,2\n"), spec=spec)
    assert data.spec is spec
    assert data.samples[0].target == 2.0


def test_numeric_labels_are_class_names_by_default(tmp_path):
    data = import_csv(write(tmp_path, "x,label\n1,2\n3,10\n"))
    assert data.spec.task is Task.CLASSIFICATION
    assert data.spec.labels == ("10", "2")


def test_quotes_blank_lines_and_byte_order_mark(tmp_path):
    path = write(tmp_path, '"a","label"\r\n\r\n" 1.5","big cat"\r\n\r\n', encoding="utf-8-sig")
    data = import_csv(path)
    assert data.samples[0].label == "big cat"
    assert data.samples[0].source == "table.csv:3"
    np.testing.assert_allclose(data.samples[0].x, [1.5])


def test_import_path_infers_csv_from_the_suffix(tmp_path):
    path = write(tmp_path, "x,kind\n1,a\n", name="DATA.CSV")
    data = import_path(path, label_column="kind")
    assert data.samples[0].label == "a"


def test_import_path_unknown_suffix_lists_the_formats(tmp_path):
    path = write(tmp_path, "x", name="data.txt")
    with pytest.raises(InvalidInput, match=r"data\.txt: cannot tell the format.*folder, csv, npz"):
        import_path(path)


def test_import_path_unknown_format_lists_the_formats(tmp_path):
    path = write(tmp_path, "x,label\n1,a\n")
    with pytest.raises(InvalidInput, match=r"unknown import format 'xlsx'; the formats are folder, csv, npz"):
        import_path(path, fmt="xlsx")


def test_import_path_missing_path(tmp_path):
    with pytest.raises(InvalidInput, match=r"gone\.csv: no such file or folder"):
        import_path(tmp_path / "gone.csv")


def test_missing_label_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "a,b,class\n1,2,x\n")
    with pytest.raises(InvalidInput) as excinfo:
        import_csv(path)
    assert str(excinfo.value) == "table.csv: no column 'label'; the columns are ['a', 'b', 'class']"


def test_headerless_file_gets_a_hint(tmp_path):
    with pytest.raises(InvalidInput, match="the first row must be a header"):
        import_csv(write(tmp_path, "1,2,3\n4,5,6\n"))


def test_ragged_row_names_file_line_and_counts(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,x\n1,2,3,y\n")
    with pytest.raises(InvalidInput, match=r"^table\.csv:3: expected 3 columns, got 4$"):
        import_csv(path)


def test_non_numeric_cell_names_file_line_column_and_value(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,x\n1,two,y\n")
    with pytest.raises(InvalidInput, match=r"^table\.csv:3: column 'b': 'two' is not a number$"):
        import_csv(path)


def test_non_numeric_regression_target(tmp_path):
    path = write(tmp_path, "a,y\n1,high\n")
    with pytest.raises(InvalidInput, match=r"table\.csv:2: column 'y': 'high' is not a number"):
        import_csv(path, label_column="y", task=Task.REGRESSION)


def test_infinite_feature_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match=r"table\.csv:2: column 'a': 'inf' is not a finite number"):
        import_csv(write(tmp_path, "a,label\ninf,x\n"))


def test_empty_label_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match=r"table\.csv:3: column 'label' is empty"):
        import_csv(write(tmp_path, "a,label\n1,x\n2,  \n"))


def test_empty_file(tmp_path):
    with pytest.raises(InvalidInput, match=r"^table\.csv: the file is empty$"):
        import_csv(write(tmp_path, "\n\n"))


def test_header_without_rows(tmp_path):
    with pytest.raises(InvalidInput, match=r"^table\.csv: a header row but no data rows$"):
        import_csv(write(tmp_path, "a,label\n"))


def test_label_column_alone_has_no_features(tmp_path):
    with pytest.raises(InvalidInput, match="no feature columns"):
        import_csv(write(tmp_path, "label\ncat\n"))


def test_duplicate_column_names(tmp_path):
    with pytest.raises(InvalidInput, match="column 'a' appears twice"):
        import_csv(write(tmp_path, "a,a,label\n1,2,x\n"))


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInput, match=r"nope\.csv: no such file"):
        import_csv(tmp_path / "nope.csv")


def test_not_utf8(tmp_path):
    path = tmp_path / "table.csv"
    path.write_bytes(b"a,label\n1,\xff\xfe\n")
    with pytest.raises(InvalidInput, match=r"table\.csv: not UTF-8 text"):
        import_csv(path)


SPEC = DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (2,), ("cat", "dog"))


def test_samples_must_match_the_spec_shape(tmp_path):
    with pytest.raises(InvalidInput, match=r"table\.csv:2: sample shape \(3,\) does not match"):
        import_csv(write(tmp_path, "a,b,c,label\n1,2,3,cat\n"), spec=SPEC)


def test_unknown_label_for_the_spec(tmp_path):
    with pytest.raises(InvalidInput, match=r"table\.csv:3: unknown label 'owl'"):
        import_csv(write(tmp_path, "a,b,label\n1,2,cat\n1,2,owl\n"), spec=SPEC)


def test_spec_of_another_kind(tmp_path):
    spec = DatasetSpec(Task.CLASSIFICATION, SampleKind.TIMESERIES, (2, 1), ("cat",))
    with pytest.raises(InvalidInput, match="the dataset holds timeseries"):
        import_csv(write(tmp_path, "a,b,label\n1,2,cat\n"), spec=spec)


def test_task_conflicting_with_the_spec(tmp_path):
    with pytest.raises(InvalidInput, match="importing as regression into a classification dataset"):
        import_csv(write(tmp_path, "a,b,label\n1,2,cat\n"), spec=SPEC, task=Task.REGRESSION)
