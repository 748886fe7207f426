"""The start-up sweep: upload leftovers and unreferenced blobs go, anything recent or referenced stays."""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path

from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.sweep import sweep_leftovers
from tinymlaas.storage.repositories import BlobReferenceRepository

_HOURS_AGO = 2 * 3600


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_sweep_removes_orphans_and_leftovers_and_keeps_what_is_used_or_recent(context, caplog) -> None:
    DatasetService(context).generate("kept", "gestures", samples=3, seed=1)
    with context.session() as session:
        referenced = BlobReferenceRepository(session).referenced()
    assert len(referenced) == 3
    for digest in referenced:
        _age(context.blobs.root / digest[:2] / digest[2:], _HOURS_AGO)

    orphan = context.blobs.put(b"no row names this")
    orphan_path = context.blobs.root / orphan[:2] / orphan[2:]
    _age(orphan_path, _HOURS_AGO)
    in_flight = context.blobs.put(b"an import in another process is about to name this")
    half_written = orphan_path.parent / f".{orphan[2:]}.abc.tmp"
    half_written.write_bytes(b"crash")
    _age(half_written, _HOURS_AGO)

    uploads = context.settings.uploads_dir
    stale = uploads / "upload-stale"
    stale.mkdir(parents=True)
    (stale / "big.zip").write_bytes(b"x" * 100)
    for path in (stale / "big.zip", stale):
        _age(path, _HOURS_AGO)
    busy = uploads / "upload-busy"
    busy.mkdir()
    (busy / "part.zip").write_bytes(b"still arriving")
    _age(busy, _HOURS_AGO)  # the folder is old, but a file in it changed just now

    with caplog.at_level(logging.INFO, logger="tinymlaas.services.sweep"):
        swept = sweep_leftovers(context, grace=timedelta(hours=1))

    assert swept.uploads == (stale,)
    assert set(swept.blobs) == {orphan_path, half_written}
    assert swept.freed_bytes == 100 + len(b"no row names this") + len(b"crash")
    assert not stale.exists() and busy.exists()
    assert not orphan_path.exists() and not half_written.exists()
    assert context.blobs.exists(in_flight)
    assert all(context.blobs.exists(d) for d in referenced)
    assert DatasetService(context).show("kept").sample_count == 3
    assert str(orphan_path) in caplog.text and str(stale) in caplog.text


def test_storing_an_old_blob_again_makes_it_safe_from_the_sweep(context) -> None:
    digest = context.blobs.put(b"stored long ago")
    path = context.blobs.root / digest[:2] / digest[2:]
    _age(path, _HOURS_AGO)
    assert context.blobs.put(b"stored long ago") == digest  # a new import names it again
    assert sweep_leftovers(context).blobs == ()
    assert context.blobs.exists(digest)


def test_a_clean_store_sweeps_nothing_and_says_nothing(context, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="tinymlaas.services.sweep"):
        swept = sweep_leftovers(context)
    assert (swept.uploads, swept.blobs, swept.freed_bytes) == ((), (), 0)
    assert caplog.text == ""
