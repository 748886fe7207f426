import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinymlaas.data.split import Split, split_indices
from tinymlaas.errors import InvalidInput


def key(i: int) -> str:
    return hashlib.sha256(f"sample {i}".encode()).hexdigest()


def by_key(split: Split, keys: list[str]) -> dict[str, str]:
    return {keys[i]: part for part in ("train", "val", "test") for i in getattr(split, part)}


def test_every_index_lands_in_exactly_one_split():
    keys = [key(i) for i in range(100)]
    labels = ["a" if i % 3 else "b" for i in range(100)]
    split = split_indices(keys, labels, seed=0)
    together = split.train + split.val + split.test
    assert sorted(together) == list(range(100))
    assert all(list(part) == sorted(part) for part in (split.train, split.val, split.test))


def test_fractions_hold_per_class():
    keys = [key(i) for i in range(300)]
    labels = ["a"] * 200 + ["b"] * 100
    split = split_indices(keys, labels, seed=1)
    for label, total in (("a", 200), ("b", 100)):
        counts = [sum(labels[i] == label for i in part) for part in (split.train, split.val, split.test)]
        assert counts == [
            round(0.7 * total),
            round(0.15 * total),
            total - round(0.7 * total) - round(0.15 * total),
        ]


def test_same_keys_and_seed_give_the_same_split_in_any_order():
    keys = [key(i) for i in range(60)]
    labels = [str(i % 4) for i in range(60)]
    reference = by_key(split_indices(keys, labels, seed=5), keys)
    order = list(range(60))
    random.Random(0).shuffle(order)
    shuffled_keys = [keys[i] for i in order]
    shuffled = by_key(split_indices(shuffled_keys, [labels[i] for i in order], seed=5), shuffled_keys)
    assert shuffled == reference


def test_another_seed_gives_another_split():
    keys = [key(i) for i in range(60)]
    labels = [None] * 60
    assert split_indices(keys, labels, seed=1) != split_indices(keys, labels, seed=2)


@pytest.mark.parametrize("size", [3, 4, 5, 7])
def test_small_classes_reach_every_split(size):
    keys = [key(i) for i in range(size)]
    split = split_indices(keys, ["rare"] * size, seed=0)
    assert split.train and split.val and split.test


def test_classes_too_small_for_three_splits_fill_train_first():
    one = split_indices([key(0)], ["x"], seed=0)
    assert one == Split(train=(0,), val=(), test=())
    two = split_indices([key(0), key(1)], ["x", "x"], seed=0)
    assert (len(two.train), len(two.val), len(two.test)) == (1, 1, 0)


def test_regression_samples_form_one_group():
    keys = [key(i) for i in range(20)]
    split = split_indices(keys, [None] * 20, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (14, 3, 3)


def test_duplicate_keys_stay_together():
    keys = [key(i % 10) for i in range(40)]  # every sample four times
    split = split_indices(keys, ["a"] * 40, seed=3)
    for part in (split.train, split.val, split.test):
        assert {keys[i] for i in part}.isdisjoint(
            {keys[i] for other in (split.train, split.val, split.test) if other is not part for i in other}
        )


def test_a_zero_fraction_leaves_that_split_empty():
    keys = [key(i) for i in range(10)]
    split = split_indices(keys, ["a"] * 10, seed=0, fractions=(0.8, 0.0, 0.2))
    assert (len(split.train), len(split.val), len(split.test)) == (8, 0, 2)
    split = split_indices(keys, ["a"] * 10, seed=0, fractions=(0.9, 0.1, 0.0))
    assert (len(split.train), len(split.val), len(split.test)) == (9, 1, 0)


@pytest.mark.parametrize(
    ("fractions", "problem"),
    [
        ((0.5, 0.2, 0.2), "add up to 1"),
        ((1.2, -0.1, -0.1), "non-negative"),
        ((0.0, 0.5, 0.5), "train fraction must be positive"),
        ((0.5, 0.5), "three non-negative numbers"),
    ],
)
def test_bad_fractions(fractions, problem):
    with pytest.raises(InvalidInput, match=problem):
        split_indices([key(0)], ["a"], seed=0, fractions=fractions)


def test_keys_and_labels_must_pair_up():
    with pytest.raises(InvalidInput, match="2 keys but 1 labels"):
        split_indices([key(0), key(1)], ["a"], seed=0)


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    added=st.lists(st.integers(0, 12), min_size=3, max_size=3),
    seed=st.integers(0, 2**32),
    fractions=st.sampled_from([(0.7, 0.15, 0.15), (0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.5, 0.0, 0.5)]),
)
def test_growing_a_group_moves_at_most_two_existing_samples_per_added_one(sizes, added, seed, fractions):
    old_keys, old_labels, new_keys, new_labels = [], [], [], []
    for group, size in enumerate(sizes):
        for i in range(size):
            old_keys.append(key(1000 * group + i))
            old_labels.append(str(group))
        for i in range(added[group]):
            new_keys.append(key(1000 * group + 500 + i))
            new_labels.append(str(group))
    keys, labels = old_keys + new_keys, old_labels + new_labels
    before = by_key(split_indices(old_keys, old_labels, seed=seed, fractions=fractions), old_keys)
    after = by_key(split_indices(keys, labels, seed=seed, fractions=fractions), keys)
    for group in range(len(sizes)):
        moved = sum(
            1
            for k, lab in zip(old_keys, old_labels, strict=True)
            if lab == str(group) and before[k] != after[k]
        )
        assert moved <= 2 * added[group]
