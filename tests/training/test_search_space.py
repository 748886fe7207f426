"""The search's pure rules: the space per family, budgets, the pruning estimate and the Pareto front."""

from __future__ import annotations

import pytest

from tinymlaas.data.generators import gestures
from tinymlaas.errors import InvalidInput
from tinymlaas.training import zoo
from tinymlaas.training.search_space import (
    SPACES,
    Budget,
    Point,
    check_space,
    closest,
    describe,
    distinct_configs,
    estimate,
    excess,
    largest_activation_pair,
    pareto_front,
    parse_bytes,
    split_config,
)


def _keys(points: list[Point]) -> list[int]:
    return [p.key for p in points]


def test_the_front_keeps_only_points_no_other_point_beats() -> None:
    points = [
        Point(1, 0.90, 4000),
        Point(2, 0.80, 2000),
        Point(3, 0.85, 5000),  # beaten by 1: less accurate and costlier
        Point(4, 0.95, 9000),
        Point(5, 0.80, 3000),  # beaten by 2: as accurate, costlier
        Point(6, 0.70, 2000),  # beaten by 2: as cheap, less accurate
    ]
    assert _keys(pareto_front(points)) == [2, 1, 4]  # cheapest first


def test_equal_points_keep_the_first_and_an_empty_set_has_no_front() -> None:
    assert _keys(pareto_front([Point(7, 0.9, 100), Point(3, 0.9, 100)])) == [3]
    assert pareto_front([]) == []
    assert _keys(pareto_front([Point(1, 0.5, 10)])) == [1]


def test_closest_ranks_by_how_far_over_and_breaks_ties_by_trial() -> None:
    assert closest({1: 0.5, 2: 0.1, 3: 2.0, 4: 0.1}, 3) == [2, 4, 1]
    assert closest({}, 3) == []


def test_excess_sums_fractions_over_each_limit_and_names_them() -> None:
    over, reasons = excess((2048, 100, 30.0), (1024, 200, 10.0))
    assert over == pytest.approx(1.0 + 2.0)
    assert reasons == ["RAM 2,048 B over 1,024 B", "latency 30.00 ms over 10.00 ms"]
    assert excess((None, 100, None), (1024, 200, None)) == (0.0, [])


def test_a_budget_tightens_what_the_board_leaves_but_never_loosens_it() -> None:
    assert Budget(max_ram=64 * 1024).limits(192 * 1024, 760 * 1024) == (64 * 1024, 760 * 1024, None)
    assert Budget(max_flash=10**9, max_latency_ms=5).limits(1000, 2000) == (1000, 2000, 5)
    with pytest.raises(InvalidInput, match="max_ram must be positive"):
        Budget(max_ram=0)


def test_the_estimate_is_weights_plus_runtime_and_the_largest_pair_plus_runtime() -> None:
    pair = largest_activation_pair([(192, 512), (512, 256), (256, 5)])
    assert pair == 768
    e = estimate(300, pair, 64_000, runtime_flash=20_480, runtime_ram=4_096, clock_mhz=64, cycles_per_mac=1.0)
    assert (e.flash_bytes, e.ram_bytes) == (20_780, 4_864)
    assert e.latency_ms == pytest.approx(1.0)  # 64,000 cycles at 64 MHz
    assert (
        estimate(1, 1, 1, runtime_flash=0, runtime_ram=0, clock_mhz=None, cycles_per_mac=1.0).latency_ms
        is None
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("65536", 65536), ("64k", 65536), ("64KiB", 65536), ("1M", 1 << 20), ("1.5k", 1536)],
)
def test_sizes_parse_in_powers_of_1024(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "k", "64 kilobytes", "-1k", "0"])
def test_a_size_that_is_not_one_is_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidInput, match="--max-ram"):
        parse_bytes(text, what="--max-ram")


def test_configs_are_checked_per_family_with_clear_errors() -> None:
    assert split_config("cnn1d", {"width": 0.5, "depth": 2, "kernel": 5, "stride": 2}) == (
        0.5,
        {"depth": 2, "kernel": 5, "stride": 2},
    )
    with pytest.raises(InvalidInput, match=r"'cnn2d' takes no depth \(it takes kernel\)"):
        split_config("cnn2d", {"depth": 2})
    with pytest.raises(InvalidInput, match="depth must be a whole number from 1 to 4"):
        split_config("cnn1d", {"depth": 5})
    with pytest.raises(InvalidInput, match="width must be from"):
        split_config("dense", {"width": 0})
    with pytest.raises(InvalidInput, match="'mobilenet' takes no kernel"):
        check_space("mobilenet", {"kernel": [3]})
    with pytest.raises(InvalidInput, match="non-empty list"):
        check_space("cnn1d", {"depth": []})
    assert check_space("cnn1d", None) == {name: tuple(v) for name, v in SPACES["cnn1d"].items()}
    assert describe({"stride": 2, "width": 0.5, "depth": 1}) == "width 0.5, depth 1, stride 2"


def test_every_sampled_value_builds_and_changes_the_model_as_named() -> None:
    for arch, space in SPACES.items():
        for name, values in space.items():
            for value in values:
                split_config(arch, {name: value})
    spec = gestures.SPEC
    default = zoo.build("cnn1d", spec)
    assert zoo.build("cnn1d", spec, hyper={"depth": 3}).count_params() == default.count_params()
    shallow = zoo.build("cnn1d", spec, 0.5, hyper={"depth": 1, "kernel": 3, "stride": 2})
    convs = [layer for layer in shallow.layers if type(layer).__name__ == "Conv1D"]
    assert len(convs) == 1 and convs[0].kernel_size == (3,) and convs[0].strides == (2,)
    assert convs[0].output.shape[1] == spec.input_shape[0] // 2  # every second sample of the window
    deep = zoo.build("cnn1d", spec, hyper={"depth": 4})
    assert sum(type(layer).__name__ == "Conv1D" for layer in deep.layers) == 4
    with pytest.raises(InvalidInput, match="takes no alpha"):
        zoo.build("cnn1d", spec, hyper={"alpha": 2})


def test_configs_are_drawn_without_repeats_after_the_ones_given() -> None:
    space = {"width": (0.25, 0.5), "depth": (1, 2, 3)}
    drawn = distinct_configs(space, 6, seed=1, first=[{"width": 1.0, "depth": 4}])
    assert drawn[0] == {"width": 1.0, "depth": 4} and len(drawn) == 6
    assert len({tuple(sorted(c.items())) for c in drawn}) == 6
    assert drawn == distinct_configs(space, 6, seed=1, first=[{"width": 1.0, "depth": 4}])  # seeded
    everything = distinct_configs(space, 50, seed=2)
    assert len(everything) == 6  # the whole space, each config once; the search samples the rest
    assert distinct_configs(space, 2, seed=3, first=[{"width": 0.25}] * 3) == [{"width": 0.25}] * 2
