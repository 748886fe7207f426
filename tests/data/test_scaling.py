import numpy as np
import pytest

from tinymlaas.data.scaling import InputScaling, ScalingMethod, fit_scaling
from tinymlaas.errors import InvalidInput


def _wine_like(n: int = 120) -> np.ndarray:
    """Features from ~0.1 to ~1,700, as in a real tabular CSV."""
    rng = np.random.default_rng(3)
    return np.stack(
        [rng.normal(0.3, 0.1, n), rng.normal(13.0, 0.8, n), rng.normal(750.0, 300.0, n)], axis=1
    ).astype(np.float32)


def test_standardize_gives_every_feature_mean_zero_and_unit_spread():
    x = _wine_like()
    scaled = fit_scaling(ScalingMethod.STANDARDIZE, x).apply(x)
    assert np.allclose(scaled.mean(axis=0), 0.0, atol=1e-4)
    assert np.allclose(scaled.std(axis=0), 1.0, atol=1e-4)


def test_minmax_maps_the_train_split_onto_zero_to_one_per_feature():
    x = _wine_like()
    scaled = fit_scaling(ScalingMethod.MINMAX, x).apply(x)
    assert np.allclose(scaled.min(axis=0), 0.0, atol=1e-6)
    assert np.allclose(scaled.max(axis=0), 1.0, atol=1e-6)


def test_time_series_are_scaled_per_channel_over_every_step():
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(9.8, 0.1, (50, 64)), rng.normal(0.0, 4.0, (50, 64))], axis=-1).astype(np.float32)
    scaling = fit_scaling(ScalingMethod.STANDARDIZE, x)
    assert scaling.channels == 2
    assert scaling.offset[0] == pytest.approx(9.8, abs=0.01)
    assert scaling.scale[1] == pytest.approx(4.0, rel=0.05)
    assert scaling.apply(x[0]).shape == (64, 2)


def test_none_passes_values_through_and_round_trips():
    x = _wine_like()
    none = fit_scaling(ScalingMethod.NONE, x)
    assert np.array_equal(none.apply(x), x)
    scaling = fit_scaling(ScalingMethod.STANDARDIZE, x)
    assert np.allclose(scaling.invert(scaling.apply(x)), x, rtol=1e-5, atol=1e-3)


def test_a_constant_feature_keeps_unit_scale_and_is_reported():
    x = _wine_like()
    x[:, 1] = 5.0
    scaling = fit_scaling(ScalingMethod.STANDARDIZE, x)
    assert scaling.scale[1] == 1.0
    assert np.all(np.isfinite(scaling.apply(x)))
    assert len(scaling.warnings) == 1 and "feature 1 is constant" in scaling.warnings[0]


def test_nan_in_the_train_split_is_refused():
    x = _wine_like()
    x[3, 2] = np.nan
    with pytest.raises(InvalidInput, match="NaN or infinite"):
        fit_scaling(ScalingMethod.STANDARDIZE, x)


def test_it_survives_a_manifest_round_trip_and_refuses_malformed_ones():
    scaling = fit_scaling(ScalingMethod.STANDARDIZE, _wine_like())
    assert InputScaling.from_dict(scaling.as_dict()) == scaling
    assert InputScaling.from_dict(None).method is ScalingMethod.NONE
    for bad in (
        ["standardize"],
        {"method": "zscore"},
        {"method": "standardize", "offset": [0.0], "scale": [0.0]},
        {"method": "standardize", "offset": [0.0, 1.0], "scale": [1.0]},
        {"method": "standardize", "offset": ["nan"], "scale": [1.0]},
        {"method": "none", "offset": [1.0], "scale": [1.0]},
    ):
        with pytest.raises(InvalidInput, match="input scaling"):
            InputScaling.from_dict(bad)


def test_an_input_with_other_channels_is_refused():
    scaling = fit_scaling(ScalingMethod.STANDARDIZE, _wine_like())
    with pytest.raises(InvalidInput, match="3 channels"):
        scaling.apply(np.zeros(4, np.float32))
