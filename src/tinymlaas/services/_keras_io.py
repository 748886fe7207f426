"""Keras models to and from bytes (``.keras`` zip format), for the blob store."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tinymlaas.errors import UnsupportedModel

if TYPE_CHECKING:
    import keras


def to_bytes(model: keras.Model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def from_bytes(data: bytes, *, name: str = "model.keras") -> keras.Model:
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(data)
        try:
            return keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for a bad file; all mean "cannot read"
            raise UnsupportedModel(f"{name}: not a readable Keras model ({exc})") from exc
