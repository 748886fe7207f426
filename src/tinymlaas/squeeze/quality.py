"""Whether a squeezed variant kept the float model's quality: the drop, and the ``degraded`` verdict.

A variant is measured as it ships (TFLM for microcontrollers, else LiteRT) on the same samples the
float model was scored on. Accuracy may drop by at most a threshold in points, and never so far
that the two 95 % intervals no longer overlap; a regression error must stay inside the float
model's own interval (the float model could not tell the difference itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tinymlaas.metrics import Metric

__all__ = ["DEFAULT_DEGRADED_POINTS", "Quality", "judge", "judge_variant", "shipping_metric"]

DEFAULT_DEGRADED_POINTS = 2.0
_RUNTIME_ORDER = ("tflm", "litert")  # what a device runs it in: an MCU first, then Linux-class


@dataclass(frozen=True)
class Quality:
    runtime: str  # the runtime whose figure was judged
    drop: float  # accuracy: points lost (positive: worse); mse: relative increase in percent
    degraded: bool
    reason: str | None  # why it is degraded, with the figures; None when it is not
    basis: str = "test split"  # which samples the figures rest on

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def shipping_metric(metrics: Mapping[str, Mapping[str, Any]]) -> tuple[str, Metric] | None:
    """The metric measured in the runtime a device would run the variant in, if any."""
    for runtime in _RUNTIME_ORDER:
        if runtime in metrics and metrics[runtime].get("value") is not None:
            return runtime, Metric.from_dict(metrics[runtime])
    return None


def judge(
    float_metric: Mapping[str, Any] | None,
    metrics: Mapping[str, Mapping[str, Any]],
    *,
    threshold_points: float = DEFAULT_DEGRADED_POINTS,
) -> Quality | None:
    """The variant's quality against the float model; None when either side was never measured."""
    shipped = shipping_metric(metrics)
    if float_metric is None or float_metric.get("value") is None or shipped is None:
        return None
    runtime, measured = shipped
    reference = Metric.from_dict(float_metric)
    if reference.name != measured.name:
        return None
    if measured.higher_is_better:
        drop = (reference.value - measured.value) * 100
        apart = measured.high is not None and reference.low is not None and measured.high < reference.low
        degraded = drop > threshold_points or apart
        because = (
            f"accuracy in {runtime} is {measured.value * 100:.1f} % against the float model's "
            f"{reference.value * 100:.1f} %: {drop:.1f} points lost"
            + (f" (more than the {threshold_points:g}-point limit)" if drop > threshold_points else "")
            + (" and the 95 % intervals do not overlap" if apart else "")
            + f", on {measured.n} samples"
        )
    else:
        drop = (measured.value / reference.value - 1) * 100 if reference.value > 0 else 0.0
        limit = (
            reference.high if reference.high is not None else reference.value * (1 + threshold_points / 100)
        )
        degraded = measured.value > limit
        because = (
            f"{measured.name} in {runtime} is {measured.value:.4g} against the float model's "
            f"{reference.value:.4g}, outside {limit:.4g}"
            + (" (the float model's 95 % interval)" if reference.high is not None else "")
            + f", on {measured.n} samples"
        )
    return Quality(
        runtime=runtime, drop=round(drop, 3), degraded=degraded, reason=because if degraded else None
    )


def judge_variant(
    quantization: str,
    method: str | None,
    metrics: Mapping[str, Mapping[str, Any]],
    float_metric: Mapping[str, Any] | None,
    cross_validation: Mapping[str, Any] | None,
    *,
    threshold_points: float = DEFAULT_DEGRADED_POINTS,
) -> Quality | None:
    """``judge`` on the figures that decide best: the model's cross-validated float and int8 metrics
    when its test split was too small and they measure this variant's method, else the test split."""
    if cross_validation and quantization == "int8" and method == cross_validation.get("method"):
        quality = judge(
            cross_validation["float"], cross_validation["int8"], threshold_points=threshold_points
        )
        if quality is not None:
            basis = f"{cross_validation['folds']}-fold cross-validation"
            reason = f"{quality.reason} ({basis})" if quality.reason else None
            return dataclasses.replace(quality, basis=basis, reason=reason)
    return judge(float_metric, metrics, threshold_points=threshold_points)
