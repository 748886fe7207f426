"""Deterministic, stratified train/validation/test split keyed by sample content.

Each label group (all samples of one class; all unlabelled or regression samples form one group) is
ordered by ``sha256(f"{seed}:{key}")`` and cut by the fractions. Because the order comes from the
content key and the seed only, the split does not depend on the order samples arrive in, and it
does not depend on other groups.

Stability when a dataset grows, which is what lets metrics from successive snapshots be compared:
adding k samples to a group moves at most 2·k of that group's existing samples to another split
(at most k across each of the two cuts), and groups that gain no samples do not change at all. This
holds because each cut position grows by 0 or 1 with every sample added to the group.

Samples sharing a key (identical content) stay together in one split, so a duplicated sample cannot
be trained on and tested on at once; the group is cut over distinct keys.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from tinymlaas.errors import InvalidInput

__all__ = ["DEFAULT_FRACTIONS", "Split", "split_indices"]

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class Split:
    """Indices into the sequences given to ``split_indices``, each tuple ascending."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]


def split_indices(
    keys: Sequence[str],
    labels: Sequence[str | None],
    *,
    seed: int,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> Split:
    """Split samples identified by content ``keys`` (stable hex hashes), stratified by ``labels``.

    Each split with a positive fraction gets at least one sample of every group with at least as
    many distinct keys as there are such splits (three, by default); smaller groups fill train,
    then validation.
    """
    if len(keys) != len(labels):
        raise InvalidInput(f"split: {len(keys)} keys but {len(labels)} labels")
    _check_fractions(fractions)

    # label → key → indices holding that key
    groups: dict[str | None, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, (key, label) in enumerate(zip(keys, labels, strict=True)):
        groups[label][key].append(index)

    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for members in groups.values():
        ordered = sorted(members, key=lambda key: (_rank(seed, key), key))
        first, second = _cuts(len(ordered), fractions)
        for position, key in enumerate(ordered):
            part = 0 if position < first else 1 if position < second else 2
            parts[part].extend(members[key])
    train, val, test = (tuple(sorted(part)) for part in parts)
    return Split(train=train, val=val, test=test)


def _check_fractions(fractions: tuple[float, float, float]) -> None:
    if len(fractions) != 3 or any(not math.isfinite(f) or f < 0 for f in fractions):
        raise InvalidInput(f"split: fractions must be three non-negative numbers, got {fractions}")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise InvalidInput(f"split: fractions must add up to 1, got {fractions} (sum {sum(fractions)})")
    if fractions[0] == 0:
        raise InvalidInput("split: the train fraction must be positive")


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def _cuts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """Positions of the train|val and val|test cuts in a group of ``n``.

    Every term below is non-decreasing in ``n`` and grows by at most 1 when ``n`` does (rounding is
    half-up, never to even, for that reason), and so are their min/max combinations: that is the
    stability guarantee of the module.
    """
    has_val, has_test = int(fractions[1] > 0), int(fractions[2] > 0)
    first = math.floor(fractions[0] * n + 0.5)
    low = min(1, n)
    first = min(max(first, low), max(n - has_val - has_test, low))
    second = math.floor((fractions[0] + fractions[1]) * n + 0.5)
    low = min(first + has_val, n)
    second = min(max(second, low), max(n - has_test, low))
    return first, second
