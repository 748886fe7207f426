import io
import os
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.data.upload import SampleUpload
from tinymlaas.errors import Conflict, InvalidInput, NotFound, TooLarge
from tinymlaas.services import samples
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings


def _array(context, sample):
    return np.load(io.BytesIO(context.blobs.get(sample["content_sha256"])), allow_pickle=False)


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def gestures(context):
    DatasetService(context).generate("g", "gestures", samples=30, seed=2)
    return context


def test_pages_and_filters_come_from_the_store(gestures, tmp_path):
    context = gestures
    first = samples.list_samples(context, "g", limit=10)
    rest = samples.list_samples(context, "g", limit=100, offset=10)
    assert first.count == rest.count == 30
    ids = [s["id"] for s in first.samples + rest.samples]
    assert len(ids) == len(set(ids)) == 30
    assert {s["source"] for s in first.samples + rest.samples} == {
        f"generator:gestures#{i}" for i in range(30)
    }
    waves = samples.list_samples(context, "g", label="wave")
    assert waves.count == DatasetService(context).show("g").label_counts["wave"]
    assert {s["label"] for s in waves.samples} == {"wave"}

    samples.set_labels(context, "g", ids[:4], None)
    unlabelled = samples.list_samples(context, "g", unlabelled=True)
    assert sorted(s["id"] for s in unlabelled.samples) == sorted(ids[:4])

    window = tmp_path / "w.csv"
    window.write_text("\n".join("0.1,0.2,0.3" for _ in range(64)) + "\n")
    uploaded = samples.upload_sample(context, "g", window, label="idle")
    by_origin = {o: samples.list_samples(context, "g", origin=o).count for o in samples.Origin}
    assert by_origin == {"generated": 30, "imported": 0, "uploaded": 1, "collected": 0}
    assert samples.list_samples(context, "g", origin=samples.Origin.UPLOADED).samples == [uploaded]
    with pytest.raises(InvalidInput, match="not both"):
        samples.list_samples(context, "g", label="wave", unlabelled=True)
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        samples.list_samples(context, "nope")


def test_labels_must_be_one_of_the_declared_classes(gestures):
    context = gestures
    sample = samples.list_samples(context, "g", limit=1).samples[0]
    changed = samples.set_label(context, "g", sample["id"], " circle ")
    assert changed["label"] == "circle" == samples.show_sample(context, "g", sample["id"])["label"]
    with pytest.raises(InvalidInput, match=r"unknown label 'jump'.*idle, wave, punch, circle, shake"):
        samples.set_label(context, "g", sample["id"], "jump")
    with pytest.raises(InvalidInput, match="printable"):
        samples.set_label(context, "g", sample["id"], "   ")
    assert samples.set_label(context, "g", sample["id"], None)["label"] is None
    with pytest.raises(NotFound, match="no sample 'smp_missing' in dataset 'g'"):
        samples.set_label(context, "g", "smp_missing", "wave")


def test_open_classes_take_new_labels_and_regression_takes_none(context):
    service = DatasetService(context)
    upload = SampleUpload("s1", "dev-1", None, np.array([1.0, 2.0], dtype=np.float32), 0.0)
    service.create("open", DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (2,)), open_classes=True)
    assert service.collect("open", upload).stored
    sample = samples.list_samples(context, "open").samples[0]
    assert sample["origin"] == "collected"
    assert samples.set_label(context, "open", sample["id"], "brand-new")["label"] == "brand-new"
    assert service.show("open").label_counts == {"brand-new": 1}
    service.generate("sine", "sine", samples=5, seed=1)
    target = samples.list_samples(context, "sine").samples[0]
    with pytest.raises(InvalidInput, match="regression dataset"):
        samples.set_label(context, "sine", target["id"], "x")


def test_bulk_labelling_is_all_or_nothing(gestures):
    context = gestures
    ids = [s["id"] for s in samples.list_samples(context, "g", limit=6).samples]
    before = {s["id"]: s["label"] for s in samples.list_samples(context, "g").samples}
    with pytest.raises(NotFound, match=r"smp_gone.*nothing was labelled"):
        samples.set_labels(context, "g", [*ids, "smp_gone"], "punch")
    assert {s["id"]: s["label"] for s in samples.list_samples(context, "g").samples} == before
    result = samples.set_labels(context, "g", ids + ids[:2], "punch")
    assert result == {"dataset": "g", "label": "punch", "updated": 6}
    assert {samples.show_sample(context, "g", i)["label"] for i in ids} == {"punch"}
    with pytest.raises(InvalidInput, match="at least one"):
        samples.set_labels(context, "g", [], "punch")


def test_previews_show_the_stored_values(gestures):
    context = gestures
    window = samples.list_samples(context, "g", limit=1).samples[0]
    shown = samples.preview_samples(context, "g", [window["id"]])[window["id"]]
    stored = _array(context, window)
    assert shown.kind is samples.PreviewKind.SERIES and shown.shape == (64, 3)
    assert np.allclose(np.array(shown.channels).T, stored)

    DatasetService(context).generate("d", "digits", samples=12, seed=1)
    digit = samples.list_samples(context, "d", limit=1).samples[0]
    png = samples.preview_samples(context, "d", [digit["id"]], size=64)[digit["id"]].png
    image = np.asarray(Image.open(io.BytesIO(png)))
    assert image.shape == (64, 64)  # 8x8 enlarged by whole pixels
    assert np.array_equal(image[::8, ::8], np.rint(_array(context, digit)[..., 0] * 255).astype(np.uint8))

    DatasetService(context).generate("s", "sine", samples=3, seed=1)
    row = samples.list_samples(context, "s", limit=1).samples[0]
    values = samples.preview_samples(context, "s", [row["id"]])[row["id"]]
    assert values.kind is samples.PreviewKind.VALUES and values.values == _array(context, row).tolist()


def test_uploading_one_sample_checks_it_against_the_dataset(context, tmp_path):
    service = DatasetService(context)
    service.generate("d", "digits", samples=10, seed=1)
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    image = tmp_path / "seven.png"
    image.write_bytes(_png(pixels))
    stored = samples.upload_sample(context, "d", image, label="7")
    assert (stored["label"], stored["source"], stored["origin"]) == ("7", "upload:seven.png", "uploaded")
    assert np.allclose(_array(context, stored)[..., 0], pixels / 255.0)
    with pytest.raises(Conflict, match=stored["id"]):
        samples.upload_sample(context, "d", image)
    wide = tmp_path / "wide.png"
    wide.write_bytes(_png(np.zeros((8, 9), dtype=np.uint8)))
    with pytest.raises(InvalidInput, match=r"\(8, 9, 1\) does not match.*\(8, 8, 1\)"):
        samples.upload_sample(context, "d", wide)
    with pytest.raises(InvalidInput, match="unknown label 'x'"):
        samples.upload_sample(context, "d", wide, label="x")
    window = tmp_path / "w.csv"
    window.write_text("1,2\n3,4\n")
    with pytest.raises(InvalidInput, match="holds a timeseries sample; the dataset holds image"):
        samples.upload_sample(context, "d", window)
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not an array")
    with pytest.raises(InvalidInput, match=r"not a \.npy array"):
        samples.upload_sample(context, "d", broken)
    assert service.show("d").sample_count == 11

    service.generate("g", "gestures", samples=5, seed=1)
    array = tmp_path / "window.npy"
    np.save(array, np.full((64, 3), 0.5, dtype=np.float64))
    unlabelled = samples.upload_sample(context, "g", array)
    assert unlabelled["label"] is None and np.all(_array(context, unlabelled) == 0.5)
    assert service.show("g").unlabelled == 1


def test_importing_a_zip_of_class_folders(context, tmp_path):
    service = DatasetService(context)
    gray = _png(np.full((4, 4), 128, dtype=np.uint8))
    dark = _png(np.zeros((4, 4), dtype=np.uint8))
    archive = _zip(tmp_path / "shapes.zip", {"shapes/light/a.png": gray, "shapes/dark/b.png": dark})
    with pytest.raises(NotFound, match="no dataset named 'shapes'"):
        service.import_file("shapes", archive, create=False)
    report = service.import_file("shapes", archive, create=True)
    assert (report.added, report.duplicates) == (2, 0)
    summary = service.show("shapes")
    assert summary.spec.labels == ("dark", "light") and summary.label_counts == {"dark": 1, "light": 1}
    assert summary.description == "imported from shapes"
    with pytest.raises(Conflict, match="already exists"):
        service.import_file("shapes", archive, create=True)
    more = _zip(tmp_path / "more.zip", {"light/c.png": _png(np.full((4, 4), 200, dtype=np.uint8))})
    assert service.import_file("shapes", more, create=False).added == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "more.zip", "shapes.zip"]  # no leftovers


@pytest.mark.parametrize(
    "member", ["../../../escape/a.png", "..\\..\\..\\escape\\a.png", "{tmp}/escape/a.png", "C:/escape/a.png"]
)
def test_zip_members_never_land_outside_the_import(context, tmp_path, member):
    work = tmp_path / "work"
    work.mkdir()
    member = member.format(tmp=tmp_path)  # deep enough to leave the unpack folder and "work" alike
    archive = _zip(work / "evil.zip", {"ok/a.png": _png(np.zeros((2, 2), dtype=np.uint8)), member: b"x"})
    with pytest.raises(InvalidInput, match="outside the import folder"):
        DatasetService(context).import_file("evil", archive, create=True)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if "data" not in p.parts)
    assert written == ["work", "work/evil.zip"]
    with pytest.raises(NotFound):
        DatasetService(context).show("evil")


def test_zip_links_and_bombs_are_refused(tmp_path):
    context = Context(Settings(data_dir=tmp_path / "data", max_import_bytes=10_000))
    service = DatasetService(context)
    bomb = _zip(tmp_path / "bomb.zip", {"a/x.csv": b"0," * 20_000, "b/y.csv": b"1\n"})
    with pytest.raises(TooLarge, match="10,000 bytes"):
        service.import_file("bomb", bomb, create=True)
    link = zipfile.ZipInfo("a/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as archive:
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidInput, match="is a link"):
        service.import_file("link", tmp_path / "link.zip", create=True)
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    with pytest.raises(InvalidInput, match="not a readable zip"):
        service.import_file("junk", tmp_path / "junk.zip", create=True)
    assert service.list() == []
    assert sorted(os.listdir(tmp_path)) == ["bomb.zip", "data", "junk.zip", "link.zip"]


def test_snapshots_freeze_labels_and_say_when_they_are_new(gestures):
    context = gestures
    service = DatasetService(context)
    first, created = service.take_snapshot("g")
    assert created and first.samples == 30 and first.labels == ["idle", "wave", "punch", "circle", "shake"]
    again, created_again = service.take_snapshot("g")
    assert again == first and not created_again
    sample = samples.list_samples(context, "g", label="wave", limit=1).samples[0]
    samples.set_label(context, "g", sample["id"], "idle")
    second, created = service.take_snapshot("g")
    assert created and second.id != first.id
    assert second.label_counts["wave"] == first.label_counts["wave"] - 1
    listed = service.snapshot_list("g")
    assert [s.id for s in listed] == [first.id, second.id]
    assert listed[0].label_counts == first.label_counts  # relabelling never changes a snapshot
