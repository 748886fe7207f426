import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinymlaas.data.importers import import_folder, import_path
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.errors import InvalidInput


def write_image(path: Path, image: Image.Image, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


def gray(values: list[list[int]]) -> Image.Image:
    return Image.fromarray(np.array(values, dtype=np.uint8), mode="L")


def write_wav(path: Path, frames: np.ndarray, *, width: int, rate: int = 16000) -> Path:
    """``frames`` (n, channels) of raw integer sample values, written as PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames)
    if width == 1:
        raw = frames.astype(np.uint8).tobytes()
    elif width == 2:
        raw = frames.astype("<i2").tobytes()
    elif width == 3:
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in frames.reshape(-1))
    else:
        raw = frames.astype("<i4").tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(frames.shape[1])
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def message(excinfo: pytest.ExceptionInfo[InvalidInput]) -> str:
    return str(excinfo.value)


# Images


def test_grayscale_png_keeps_one_channel_scaled_to_unit_range(tmp_path):
    write_image(tmp_path / "dark" / "a.png", gray([[0, 51, 255], [102, 0, 0]]))
    data = import_folder(tmp_path)
    (sample,) = data.samples
    assert sample.x.shape == (2, 3, 1)
    assert sample.x.dtype == np.float32
    np.testing.assert_allclose(sample.x[..., 0], [[0, 0.2, 1], [0.4, 0, 0]], atol=1e-6)
    assert data.spec == DatasetSpec(Task.CLASSIFICATION, SampleKind.IMAGE, (2, 3, 1), ("dark",))


def test_rgb_png_and_jpeg_have_three_channels(tmp_path):
    pixels = np.zeros((4, 5, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    write_image(tmp_path / "red" / "a.png", Image.fromarray(pixels, mode="RGB"))
    write_image(tmp_path / "red" / "b.jpg", Image.fromarray(pixels, mode="RGB"), "JPEG")
    write_image(tmp_path / "red" / "c.JPEG", Image.fromarray(pixels, mode="RGB"), "JPEG")
    data = import_folder(tmp_path)
    assert [s.source for s in data.samples] == ["red/a.png", "red/b.jpg", "red/c.JPEG"]
    for sample in data.samples:
        assert sample.x.shape == (4, 5, 3)
        np.testing.assert_allclose(sample.x[..., 0], 1.0, atol=0.02)  # JPEG is lossy
        np.testing.assert_allclose(sample.x[..., 1:], 0.0, atol=0.02)


def test_alpha_is_dropped_and_palette_becomes_rgb(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 2] = 255  # blue, fully transparent
    write_image(tmp_path / "blue" / "rgba.png", Image.fromarray(rgba, mode="RGBA"))
    palette = Image.new("P", (2, 2))
    palette.putpalette([0, 0, 255] + [0] * 765)
    write_image(tmp_path / "blue" / "palette.png", palette)
    data = import_folder(tmp_path)
    for sample in data.samples:
        assert sample.x.shape == (2, 2, 3)
        np.testing.assert_array_equal(sample.x[..., 2], 1.0)
        np.testing.assert_array_equal(sample.x[..., :2], 0.0)


def test_gray_with_alpha_stays_one_channel(tmp_path):
    write_image(tmp_path / "c" / "la.png", Image.new("LA", (3, 2), (128, 0)))
    (sample,) = import_folder(tmp_path).samples
    assert sample.x.shape == (2, 3, 1)
    np.testing.assert_allclose(sample.x, 128 / 255, atol=1e-6)


def test_sixteen_bit_gray_png_scales_by_full_range(tmp_path):
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    write_image(tmp_path / "c" / "deep.png", Image.fromarray(values))
    (sample,) = import_folder(tmp_path).samples
    assert sample.x.shape == (2, 2, 1)
    np.testing.assert_allclose(sample.x[..., 0], values / 65535, atol=1e-6)


def test_labels_are_sorted_class_folders_and_nested_files_belong_to_them(tmp_path):
    for path in ["zebra/a.png", "ant/person1/b.png", "ant/person2/c.png", "mouse/d.png"]:
        write_image(tmp_path / path, gray([[1]]))
    data = import_folder(tmp_path)
    assert data.spec.labels == ("ant", "mouse", "zebra")
    assert [(s.source, s.label) for s in data.samples] == [
        ("ant/person1/b.png", "ant"),
        ("ant/person2/c.png", "ant"),
        ("mouse/d.png", "mouse"),
        ("zebra/a.png", "zebra"),
    ]


def test_hidden_files_and_folders_are_ignored(tmp_path):
    write_image(tmp_path / "cat" / "a.png", gray([[1]]))
    write_text(tmp_path / "cat" / ".DS_Store", "junk")
    write_text(tmp_path / ".git" / "config", "junk")
    write_text(tmp_path / "cat" / ".cache" / "x.bin", "junk")
    data = import_folder(tmp_path)
    assert [s.source for s in data.samples] == ["cat/a.png"]
    assert data.spec.labels == ("cat",)


def test_import_path_treats_a_directory_as_a_folder_import(tmp_path):
    write_image(tmp_path / "cat" / "a.png", gray([[1]]))
    assert import_path(tmp_path).spec.kind is SampleKind.IMAGE
    assert import_path(tmp_path, fmt="folder").samples[0].source == "cat/a.png"


def test_import_path_refuses_regression_for_a_folder(tmp_path):
    write_image(tmp_path / "cat" / "a.png", gray([[1]]))
    with pytest.raises(InvalidInput, match="folder name"):
        import_path(tmp_path, task=Task.REGRESSION)


# Audio


def test_sixteen_bit_mono_wav_scales_to_unit_range(tmp_path):
    write_wav(tmp_path / "yes" / "a.wav", np.array([[0], [16384], [-32768], [32767]]), width=2)
    data = import_folder(tmp_path)
    (sample,) = data.samples
    assert data.spec.kind is SampleKind.AUDIO
    assert sample.x.shape == (4, 1)
    np.testing.assert_allclose(sample.x[:, 0], [0, 0.5, -1, 32767 / 32768], atol=1e-7)


@pytest.mark.parametrize(
    ("width", "raw", "expected"),
    [
        (1, [128, 255, 0, 192], [0, 127 / 128, -1, 0.5]),
        (3, [0, 2**22, -(2**23), 2**23 - 1], [0, 0.5, -1, (2**23 - 1) / 2**23]),
        (4, [0, 2**30, -(2**31), -(2**29)], [0, 0.5, -1, -0.25]),
    ],
)
def test_eight_twenty_four_and_thirty_two_bit_pcm(tmp_path, width, raw, expected):
    write_wav(tmp_path / "yes" / "a.wav", np.array(raw).reshape(-1, 1), width=width)
    (sample,) = import_folder(tmp_path).samples
    np.testing.assert_allclose(sample.x[:, 0], expected, atol=1e-6)


def test_stereo_is_downmixed_by_averaging(tmp_path):
    write_wav(tmp_path / "yes" / "a.wav", np.array([[16384, 0], [-32768, 32767], [8192, 8192]]), width=2)
    (sample,) = import_folder(tmp_path).samples
    assert sample.x.shape == (3, 1)
    np.testing.assert_allclose(sample.x[:, 0], [0.25, -0.5 / 32768, 0.25], atol=1e-6)


def test_differing_sample_rates_are_refused(tmp_path):
    write_wav(tmp_path / "yes" / "a.wav", np.zeros((4, 1)), width=2, rate=16000)
    write_wav(tmp_path / "yes" / "b.wav", np.zeros((4, 1)), width=2, rate=8000)
    with pytest.raises(InvalidInput) as excinfo:
        import_folder(tmp_path)
    assert "yes/b.wav" in message(excinfo)
    assert "8000 Hz" in message(excinfo)
    assert "16000 Hz" in message(excinfo)


def test_corrupt_wav_names_the_file(tmp_path):
    write_wav(tmp_path / "yes" / "good.wav", np.zeros((4, 1)), width=2)
    write_text(tmp_path / "yes" / "bad.wav", "this is no RIFF file")
    with pytest.raises(InvalidInput) as excinfo:
        import_folder(tmp_path)
    assert "yes/bad.wav" in message(excinfo)
    assert "not a readable PCM WAV" in message(excinfo)


def test_truncated_wav_names_the_file(tmp_path):
    path = write_wav(tmp_path / "yes" / "a.wav", np.zeros((100, 1)), width=2)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(InvalidInput) as excinfo:
        import_folder(tmp_path)
    assert "yes/a.wav" in message(excinfo)
    assert "truncated" in message(excinfo)


def test_float_wav_is_refused_with_its_reason(tmp_path):
    samples = np.array([0.0, 0.5], dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)  # format 3: IEEE float
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 8) + samples
    path = tmp_path / "yes" / "float.wav"
    path.parent.mkdir()
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(InvalidInput) as excinfo:
        import_folder(tmp_path)
    assert "yes/float.wav" in message(excinfo)
    assert "unknown format: 3" in message(excinfo)


def test_empty_wav_names_the_file(tmp_path):
    write_wav(tmp_path / "yes" / "a.wav", np.zeros((0, 1)), width=2)
    with pytest.raises(InvalidInput, match=r"yes/a\.wav: the WAV file holds no audio frames"):
        import_folder(tmp_path)


# Time-series windows


def test_csv_window_with_header(tmp_path):
    write_text(tmp_path / "wave" / "w1.csv", "ax,ay,az\n0.1,0.2,1.0\n0.3,-0.2,0.9\n\n")
    data = import_folder(tmp_path)
    (sample,) = data.samples
    assert data.spec.kind is SampleKind.TIMESERIES
    np.testing.assert_allclose(sample.x, [[0.1, 0.2, 1.0], [0.3, -0.2, 0.9]], atol=1e-6)


def test_csv_window_without_header(tmp_path):
    write_text(tmp_path / "wave" / "w1.csv", "1,2\n3,4\n5,6\n")
    (sample,) = import_folder(tmp_path).samples
    assert sample.x.shape == (3, 2)


def test_ragged_csv_window_names_file_and_line(tmp_path):
    write_text(tmp_path / "wave" / "w1.csv", "ax,ay\n1,2\n3\n")
    with pytest.raises(InvalidInput, match=r"wave/w1\.csv:3: expected 2 columns, got 1"):
        import_folder(tmp_path)


def test_non_numeric_csv_window_names_file_line_column_and_value(tmp_path):
    write_text(tmp_path / "wave" / "w1.csv", "ax,ay\n1,2\n3,oops\n")
    with pytest.raises(InvalidInput, match=r"wave/w1\.csv:3: column 'ay': 'oops' is not a number"):
        import_folder(tmp_path)


def test_non_finite_csv_window_value_is_refused(tmp_path):
    write_text(tmp_path / "wave" / "w1.csv", "1,2\nnan,4\n")
    with pytest.raises(InvalidInput, match=r"wave/w1\.csv:2: column 1: 'nan' is not a finite number"):
        import_folder(tmp_path)


def test_header_only_csv_window_is_refused(tmp_path):
    write_text(tmp_path / "wave" / "w1.csv", "ax,ay\n")
    with pytest.raises(InvalidInput, match=r"wave/w1\.csv: a header row but no data rows"):
        import_folder(tmp_path)


# One kind, one shape


def test_shape_mismatch_names_file_its_shape_and_the_expected_shape(tmp_path):
    write_image(tmp_path / "a" / "1.png", gray([[1, 2]]))
    write_image(tmp_path / "b" / "2.png", gray([[1], [2]]))
    with pytest.raises(InvalidInput) as excinfo:
        import_folder(tmp_path)
    text = message(excinfo)
    assert "b/2.png" in text
    assert "(2, 1, 1)" in text
    assert "(1, 2, 1)" in text
    assert "a/1.png" in text


def test_mixed_kinds_are_refused(tmp_path):
    write_image(tmp_path / "a" / "1.png", gray([[1]]))
    write_wav(tmp_path / "b" / "2.wav", np.zeros((4, 1)), width=2)
    with pytest.raises(InvalidInput) as excinfo:
        import_folder(tmp_path)
    assert "b/2.wav" in message(excinfo)
    assert "one kind" in message(excinfo)


def test_unknown_extension_names_the_file(tmp_path):
    write_image(tmp_path / "a" / "1.png", gray([[1]]))
    write_text(tmp_path / "a" / "notes.txt", "hello")
    with pytest.raises(InvalidInput, match=r"a/notes\.txt: unsupported file type '\.txt'"):
        import_folder(tmp_path)


def test_corrupt_image_names_the_file(tmp_path):
    write_text(tmp_path / "a" / "broken.png", "not a png at all")
    with pytest.raises(InvalidInput, match=r"a/broken\.png: not a readable image"):
        import_folder(tmp_path)


def test_truncated_image_names_the_file(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64), dtype=np.uint8)
    path = write_image(tmp_path / "a" / "cut.png", Image.fromarray(noise))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InvalidInput, match=r"a/cut\.png: not a readable image"):
        import_folder(tmp_path)


# The tree itself


def test_missing_root(tmp_path):
    with pytest.raises(InvalidInput, match="nowhere: no such folder"):
        import_folder(tmp_path / "nowhere")


def test_empty_root(tmp_path):
    write_text(tmp_path / ".hidden", "x")
    with pytest.raises(InvalidInput, match="the folder is empty"):
        import_folder(tmp_path)


def test_files_without_class_folders_are_refused(tmp_path):
    write_image(tmp_path / "a.png", gray([[1]]))
    with pytest.raises(InvalidInput, match=r"a\.png: a file directly in the import folder"):
        import_folder(tmp_path)


def test_empty_class_folder_is_refused(tmp_path):
    write_image(tmp_path / "a" / "1.png", gray([[1]]))
    (tmp_path / "b").mkdir()
    with pytest.raises(InvalidInput, match="b/: the class folder holds no sample files"):
        import_folder(tmp_path)


def test_link_pointing_outside_the_root_is_refused(tmp_path):
    outside = write_image(tmp_path / "secret.png", gray([[1]]))
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "leak.png").symlink_to(outside)
    with pytest.raises(InvalidInput, match=r"a/leak\.png: a link pointing outside the import folder"):
        import_folder(root)


def test_class_folder_linked_outside_the_root_is_refused(tmp_path):
    write_image(tmp_path / "elsewhere" / "x.png", gray([[1]]))
    root = tmp_path / "root"
    root.mkdir()
    (root / "a").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InvalidInput, match="a: a link pointing outside the import folder"):
        import_folder(root)


def test_links_inside_the_root_are_followed_once(tmp_path):
    write_image(tmp_path / "a" / "1.png", gray([[1]]))
    (tmp_path / "a" / "same.png").symlink_to(tmp_path / "a" / "1.png")
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    data = import_folder(tmp_path)
    assert [s.source for s in data.samples] == ["a/1.png", "a/same.png"]


def test_broken_link_is_refused(tmp_path):
    write_image(tmp_path / "a" / "1.png", gray([[1]]))
    (tmp_path / "a" / "gone.png").symlink_to(tmp_path / "a" / "missing.png")
    with pytest.raises(InvalidInput, match=r"a/gone\.png: a link to nothing"):
        import_folder(tmp_path)


# Importing into an existing dataset


IMAGE_SPEC = DatasetSpec(Task.CLASSIFICATION, SampleKind.IMAGE, (1, 2, 1), ("cat", "dog", "eel"))


def test_spec_is_kept_when_samples_match(tmp_path):
    write_image(tmp_path / "dog" / "1.png", gray([[1, 2]]))
    data = import_folder(tmp_path, spec=IMAGE_SPEC)
    assert data.spec == IMAGE_SPEC
    assert data.samples[0].label == "dog"


def test_unknown_label_for_spec_names_the_file(tmp_path):
    write_image(tmp_path / "owl" / "1.png", gray([[1, 2]]))
    with pytest.raises(InvalidInput, match=r"owl/1\.png: unknown label 'owl'"):
        import_folder(tmp_path, spec=IMAGE_SPEC)


def test_shape_mismatch_with_spec_names_the_file(tmp_path):
    write_image(tmp_path / "dog" / "1.png", gray([[1, 2, 3]]))
    with pytest.raises(InvalidInput) as excinfo:
        import_folder(tmp_path, spec=IMAGE_SPEC)
    assert "dog/1.png" in message(excinfo)
    assert "(1, 3, 1)" in message(excinfo)
    assert "the dataset's input shape" in message(excinfo)


def test_kind_mismatch_with_spec(tmp_path):
    write_wav(tmp_path / "dog" / "1.wav", np.zeros((2, 1)), width=2)
    with pytest.raises(
        InvalidInput, match=r"dog/1\.wav: the folder holds audio samples but the dataset holds image"
    ):
        import_folder(tmp_path, spec=IMAGE_SPEC)


def test_regression_spec_is_refused(tmp_path):
    write_text(tmp_path / "a" / "1.csv", "1\n")
    spec = DatasetSpec(Task.REGRESSION, SampleKind.TIMESERIES, (1, 1))
    with pytest.raises(InvalidInput, match="the dataset is regression"):
        import_folder(tmp_path, spec=spec)
