"""Unpacking refuses what an archive's directory declares before it writes anything."""

from __future__ import annotations

import zipfile

import pytest

from tinymlaas.errors import TooLarge
from tinymlaas.services._archive import MAX_RATIO, unpack_zip

MIB = 1024 * 1024


def _zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("members", "limit", "said"),
    [
        ({"a/ok.png": b"fine", "a/bomb.png": bytes(8 * MIB)}, 64 * MIB, f"at most {MAX_RATIO} times"),
        (
            {"a/one.bin": bytes(range(256)) * 8192, "a/two.bin": bytes(range(256)) * 8192},
            3 * MIB,
            "3,145,728",
        ),
    ],
    ids=["ratio", "total"],
)
def test_a_bomb_is_refused_and_nothing_is_written(tmp_path, members, limit, said) -> None:
    archive = tmp_path / "bomb.zip"
    _zip(archive, members)
    into = tmp_path / "out"
    with pytest.raises(TooLarge, match=said):
        unpack_zip(archive, into, max_bytes=limit)
    assert not into.exists()


def test_a_plain_archive_still_unpacks(tmp_path) -> None:
    archive = tmp_path / "plain.zip"
    text = b"label,value\n" * 1000
    _zip(archive, {"cat/a.csv": text, "dog/b.csv": b"1,2\n"})
    unpack_zip(archive, tmp_path / "out", max_bytes=MIB)
    assert (tmp_path / "out" / "cat" / "a.csv").read_bytes() == text
