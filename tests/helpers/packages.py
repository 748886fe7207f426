"""Signed packages as the server makes them: every signing gets a sequence above all earlier ones."""

from __future__ import annotations

import itertools

from tinymlaas.deploy import SigningKey, sign_package

_SEQUENCES = itertools.count(1)


def signed(module_zip: bytes, key: SigningKey) -> bytes:
    """``module_zip`` signed with ``key`` and the next sequence, so the later signing is the newer."""
    return sign_package(module_zip, key, sequence=next(_SEQUENCES))
