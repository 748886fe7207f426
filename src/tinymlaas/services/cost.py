"""Cloud inference against TinyML on the device: what each costs a fleet over time.

A pure model (no I/O) so the REST API, the dashboard and tests compute the same figures. The cloud
option uploads every sensor window and runs the model in a serverless function; the TinyML option
runs it on the board and sends nothing per inference. Only what differs between the two is counted:
sensors, enclosures, power supplies and the traffic both send anyway (heartbeats, results, updates)
are left out, so totals are differences in cost, not whole-project budgets.

Costs are in US dollars. Up-front costs fall at month 0; running costs accrue evenly, so both
cumulative curves are straight lines and cross at most once. Every default is in ``SOURCES`` with
where it comes from: a public list price with its page and date, or an assumption that says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from types import MappingProxyType
from typing import Any

from tinymlaas.errors import InvalidInput

__all__ = [
    "BOARD_FIGURES",
    "DAYS_PER_MONTH",
    "SOURCES",
    "BoardFigures",
    "CostEstimate",
    "CostInputs",
    "Resolved",
    "Source",
    "board_figures",
    "estimate",
    "fleet_sizes",
    "resolve",
]

DAYS_PER_MONTH = 365.25 / 12  # an average calendar month: 30.4375 days
_MINUTES_PER_MONTH = DAYS_PER_MONTH * 24 * 60  # 43,830 minutes
_J_PER_KWH = 3.6e6
_BYTES_PER_GB = 1e9  # data plans bill decimal gigabytes

# AWS Lambda, US East (N. Virginia), x86 (https://aws.amazon.com/lambda/pricing/, list prices as
# published in 2024; the AWS whitepaper "How AWS Pricing Works", Lambda section, gives the same).
_LAMBDA_USD_PER_MILLION_REQUESTS = 0.20
_LAMBDA_USD_PER_GB_SECOND = 0.0000166667
_LAMBDA_MEMORY_GB = 128 / 1024  # assumption: the smallest function size, enough for a small model
_LAMBDA_SECONDS_PER_INFERENCE = 0.1  # assumption: 100 ms billed per invocation
# AWS IoT Core, US East (N. Virginia) (https://aws.amazon.com/iot-core/pricing/, 2024).
_IOT_USD_PER_MILLION_CONNECTION_MINUTES = 0.08
# Assumption for the radio: an LTE-M modem drawing about 0.5 W while sending at the 300 kbit/s of
# the product's LTE-M link profile (tinymlaas.lwm2m.linkemu).
_RADIO_WATTS = 0.5
_RADIO_BYTES_PER_S = 300_000 / 8
# Assumption for a model on a microcontroller: about 0.1 W drawn for about 10 ms per inference.
_MCU_WATTS = 0.1
_MCU_SECONDS_PER_INFERENCE = 0.010


@dataclass(frozen=True)
class Source:
    """Where a default comes from, for people: a quoted list price or a labelled assumption."""

    label: str
    unit: str
    source: str
    url: str | None = None
    assumption: bool = False


@dataclass(frozen=True)
class CostInputs:
    """Everything the comparison depends on; each default is documented in ``SOURCES``."""

    devices: int = 1000
    inferences_per_device_per_day: float = 1440.0
    payload_bytes: int = 600
    horizon_months: int = 36
    cloud_inference_usd_per_million: float = _LAMBDA_USD_PER_MILLION_REQUESTS + (
        _LAMBDA_USD_PER_GB_SECOND * _LAMBDA_MEMORY_GB * _LAMBDA_SECONDS_PER_INFERENCE * 1e6
    )
    cloud_message_usd_per_million: float = 1.00
    message_bytes: int = 5 * 1024
    data_usd_per_gb: float = 5.0
    cloud_connection_usd_per_device_month: float = (
        _IOT_USD_PER_MILLION_CONNECTION_MINUTES * _MINUTES_PER_MONTH / 1e6
    )
    cloud_hardware_usd_per_device: float = 0.0
    cloud_fixed_usd_per_month: float = 0.0
    tinyml_device_usd: float = 4.00
    energy_per_inference_j: float = _MCU_WATTS * _MCU_SECONDS_PER_INFERENCE
    radio_j_per_byte: float = _RADIO_WATTS / _RADIO_BYTES_PER_S
    electricity_usd_per_kwh: float = 0.16
    tinyml_fixed_usd_per_month: float = 0.0

    def __post_init__(self) -> None:
        problems = [p for f in fields(self) if (p := _check(f.name, getattr(self, f.name)))]
        if problems:
            raise InvalidInput("; ".join(problems))
        for name, (_, _, whole) in _LIMITS.items():
            if whole:  # 1000.0 from a form or JSON is the whole number 1000
                object.__setattr__(self, name, int(getattr(self, name)))

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


# name -> (smallest, largest or None, whole number): what a parameter may be.
_LIMITS: dict[str, tuple[float, float | None, bool]] = {
    "devices": (1, 100_000_000, True),
    "payload_bytes": (0, None, True),
    "horizon_months": (1, 240, True),
    "message_bytes": (1, None, True),
}
_ANY_AMOUNT = (0.0, None, False)


def _check(name: str, value: Any) -> str | None:
    low, high, whole = _LIMITS.get(name, _ANY_AMOUNT)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, not {value!r}"
    if not math.isfinite(value):
        return f"{name} must be a finite number, not {value}"
    if whole and value != int(value):
        return f"{name} must be a whole number (got {value})"
    if value < low:
        return f"{name} must be at least {low:g} (got {value:g})"
    if high is not None and value > high:
        return f"{name} must be at most {high:g} (got {value:g})"
    return None


_ASSUMED = "assumption, not a quoted figure"

SOURCES: Mapping[str, Source] = MappingProxyType(
    {
        "devices": Source(
            "Fleet size", "devices", f"{_ASSUMED}: a sample fleet; enter yours", assumption=True
        ),
        "inferences_per_device_per_day": Source(
            "Inferences per device", "per day",
            f"{_ASSUMED}: one inference a minute (1,440 a day), a typical monitoring cadence",
            assumption=True,
        ),
        "payload_bytes": Source(
            "Upload per inference (cloud)", "bytes",
            f"{_ASSUMED}: one second of a 3-axis accelerometer at 100 Hz in 16-bit samples "
            "(100 x 3 x 2 = 600 bytes); a model's input tensor can be used instead",
            assumption=True,
        ),
        "horizon_months": Source(
            "Horizon", "months", f"{_ASSUMED}: 36 months, a common depreciation period for hardware",
            assumption=True,
        ),
        "cloud_inference_usd_per_million": Source(
            "Cloud inference price", "USD per 1M inferences",
            "AWS Lambda pricing, US East (N. Virginia), x86, list prices as published in 2024: "
            "$0.20 per 1M requests + $0.0000166667 per GB-second; with the assumption of a 128 MB "
            "function billed 100 ms per inference: $0.20 + $0.2083 = $0.4083 per 1M (free tier ignored)",
            "https://aws.amazon.com/lambda/pricing/",
        ),
        "cloud_message_usd_per_million": Source(
            "Cloud messaging price", "USD per 1M messages",
            "AWS IoT Core pricing, US East (N. Virginia), as published in 2024: messaging $1.00 per "
            "1M messages for the first billion a month (free tier ignored)",
            "https://aws.amazon.com/iot-core/pricing/",
        ),
        "message_bytes": Source(
            "Metered message size", "bytes",
            "AWS IoT Core additional metering details (2024): messages are metered in 5 KB "
            "increments; each upload counts as at least one message",
            "https://aws.amazon.com/iot-core/pricing/additional-details/",
        ),
        "data_usd_per_gb": Source(
            "Mobile data price", "USD per GB",
            f"{_ASSUMED}: US$5 per GB as a round mid-range figure for cellular IoT data plans, "
            "whose prices vary widely with volume and region; enter your plan's price",
            assumption=True,
        ),
        "cloud_connection_usd_per_device_month": Source(
            "Cloud connection", "USD per device per month",
            "AWS IoT Core pricing, US East (N. Virginia), as published in 2024: connectivity $0.08 "
            "per 1M connection-minutes, for a device connected all month (43,830 minutes)",
            "https://aws.amazon.com/iot-core/pricing/",
        ),
        "cloud_hardware_usd_per_device": Source(
            "Extra hardware (cloud)", "USD per device",
            f"{_ASSUMED}: none; enter what streaming adds per device (e.g. a cellular modem "
            "where the TinyML device would not need one)",
            assumption=True,
        ),
        "cloud_fixed_usd_per_month": Source(
            "Fixed cost (cloud)", "USD per month",
            f"{_ASSUMED}: none; enter what the cloud option costs whatever the fleet size "
            "(storage, monitoring, an endpoint kept warm)",
            assumption=True,
        ),
        "tinyml_device_usd": Source(
            "Device unit cost (TinyML)", "USD per device",
            "Raspberry Pi Pico list price, $4 (Raspberry Pi news, \"Raspberry Pi Pico\" launch, "
            "21 January 2021); counted whole, as if the cloud option needed no board at all",
        ),
        "energy_per_inference_j": Source(
            "Energy per inference (TinyML)", "J",
            f"{_ASSUMED}: about 0.1 W for about 10 ms on a microcontroller = 1 mJ; a device's "
            "measured latency times its board's active power can be used instead",
            assumption=True,
        ),
        "radio_j_per_byte": Source(
            "Radio energy per byte sent (cloud)", "J per byte",
            f"{_ASSUMED}: an LTE-M modem drawing about 0.5 W while sending at 300 kbit/s "
            "(the product's LTE-M link profile) = 0.5 / 37,500 = 13.3 uJ per byte; connection "
            "set-up and idle tails are left out, so real radios spend more",
            assumption=True,
        ),
        "electricity_usd_per_kwh": Source(
            "Electricity price", "USD per kWh",
            "U.S. EIA, Electric Power Annual 2023 (released 17 October 2024): average U.S. "
            "residential price 16.0 cents per kWh in 2023",
            "https://www.eia.gov/electricity/annual/",
        ),
        "tinyml_fixed_usd_per_month": Source(
            "Fixed cost (TinyML)", "USD per month",
            f"{_ASSUMED}: none; enter what the TinyML option costs whatever the fleet size "
            "(the host running this server, for one)",
            assumption=True,
        ),
    }
)  # fmt: skip


@dataclass(frozen=True)
class BoardFigures:
    """A board's list price and active power, each with its source; None where none is on file."""

    board: str
    unit_price_usd: float | None
    price_source: str
    active_power_w: float | None
    power_source: str


_NO_PRICE = "no list price on file; enter the price you pay"
_NO_POWER = "no active power figure on file"

BOARD_FIGURES: Mapping[str, BoardFigures] = MappingProxyType(
    {
        "pico": BoardFigures(
            "pico", 4.00,
            "Raspberry Pi news, \"Raspberry Pi Pico\" launch, 21 January 2021: $4 list price",
            0.1,
            f"{_ASSUMED}: about 0.1 W (20 mA from the 5 V USB supply) with one RP2040 core busy at "
            "133 MHz; the Raspberry Pi Pico datasheet's power section gives measured currents per workload",
        ),
        "rpi4": BoardFigures(
            "rpi4", 55.00,
            "Raspberry Pi news, \"Raspberry Pi 4 on sale now from $35\", 24 June 2019: 4 GB model $55",
            6.0,
            f"{_ASSUMED}: about 6 W with all four cores busy; the Raspberry Pi 4 Model B product "
            "brief's 5 V 3 A supply (15 W) is the ceiling, not the draw",
        ),
        "jetson-nano": BoardFigures(
            "jetson-nano", 99.00,
            "NVIDIA announcement at GTC, 18 March 2019: Jetson Nano Developer Kit $99",
            10.0,
            "NVIDIA Jetson Nano Developer Kit technical specifications (2019): 5 W and 10 W power modes; "
            "the 10 W mode is taken",
        ),
        "coralmicro": BoardFigures(
            "coralmicro", 79.99, "Coral Dev Board Micro product page (coral.ai), 2022: $79.99",
            None, _NO_POWER,
        ),
    }
)  # fmt: skip


def board_figures(board: str) -> BoardFigures:
    """The figures on file for ``board``; a board without any gets one that says so."""
    return BOARD_FIGURES.get(board) or BoardFigures(board, None, _NO_PRICE, None, _NO_POWER)


_SAME = 1e-7  # relative difference below which an entered figure is the one it falls back on


@dataclass(frozen=True)
class Resolved:
    """Inputs with, per parameter, where its value came from (a source, a board, a measurement, a person)."""

    inputs: CostInputs
    provenance: Mapping[str, str]


def resolve(
    given: Mapping[str, float | int],
    *,
    board: str | None = None,
    inference_latency_ms: float | None = None,
    baselines: Mapping[str, tuple[float, str]] | None = None,
) -> Resolved:
    """Inputs from what a person gave, falling back on the board's figures, then on the defaults.

    ``board`` sets the TinyML device cost from its list price; ``inference_latency_ms`` with the
    board's active power sets the energy per inference; ``baselines`` (value, source) replace
    defaults with figures found elsewhere (a device's measurement). A given value equal to the one
    it would fall back on (to ``_SAME`` relative precision, as a form shows it) is that one, source and
    all, so a form that echoes every field stays sourced.
    """
    defaults = CostInputs()
    names = {f.name for f in fields(CostInputs)}
    unknown = sorted(set(given) - names)
    if unknown:
        raise InvalidInput(
            f"no cost parameter {', '.join(unknown)}; the parameters are {', '.join(sorted(names))}"
        )
    problems = [p for name, value in given.items() if (p := _check(name, value))]
    if problems:
        raise InvalidInput("; ".join(problems))
    base: dict[str, tuple[float, str]] = {
        name: (getattr(defaults, name), SOURCES[name].source) for name in names
    }
    if board is not None:
        base.update(_board_baselines(board, given, inference_latency_ms))
    elif inference_latency_ms is not None:
        raise InvalidInput("inference_latency_ms needs a board, whose active power turns it into energy")
    base.update(baselines or {})
    entered = {
        name: given[name]
        for name, (value, _) in base.items()
        if name in given and not math.isclose(given[name], value, rel_tol=_SAME, abs_tol=0.0)
    }
    values = {name: entered.get(name, value) for name, (value, _) in base.items()}
    provenance = {name: "entered" if name in entered else source for name, (_, source) in base.items()}
    return Resolved(CostInputs(**values), MappingProxyType(provenance))


def _board_baselines(
    board: str, given: Mapping[str, float | int], latency_ms: float | None
) -> dict[str, tuple[float, str]]:
    figures = board_figures(board)
    found: dict[str, tuple[float, str]] = {}
    if figures.unit_price_usd is not None:
        found["tinyml_device_usd"] = (figures.unit_price_usd, f"{board}: {figures.price_source}")
    elif "tinyml_device_usd" not in given:
        raise InvalidInput(f"board {board!r} has no list price on file; give tinyml_device_usd")
    if latency_ms is not None:
        if _check("inference_latency_ms", latency_ms):
            raise InvalidInput(
                f"inference_latency_ms must be a finite number of at least 0, not {latency_ms!r}"
            )
        if figures.active_power_w is None:
            raise InvalidInput(
                f"board {board!r} has no active power figure on file, so a latency cannot become "
                "energy; give energy_per_inference_j"
            )
        energy = figures.active_power_w * latency_ms / 1000
        found["energy_per_inference_j"] = (
            energy,
            f"{board} active power {figures.active_power_w:g} W ({figures.power_source}) "
            f"x {latency_ms:g} ms latency",
        )
    return found


@dataclass(frozen=True)
class CostEstimate:
    """Both options over the horizon for the given fleet, and at the horizon over fleet sizes."""

    inputs: CostInputs
    cloud_per_device_month: Mapping[str, float]  # USD by component
    tinyml_per_device_month: Mapping[str, float]  # USD by component
    cloud_upfront_usd: float
    tinyml_upfront_usd: float
    cloud_monthly_usd: float  # whole fleet, running
    tinyml_monthly_usd: float
    months: tuple[int, ...]
    cloud_cumulative_usd: tuple[float, ...]
    tinyml_cumulative_usd: tuple[float, ...]
    break_even_month: float | None  # from then on TinyML costs at most as much; None if never
    verdict: str
    fleet_sizes: tuple[int, ...]
    cloud_total_by_fleet_usd: tuple[float, ...]  # at the horizon
    tinyml_total_by_fleet_usd: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            **data,
            "inputs": self.inputs.as_dict(),
            "cloud_per_device_month": dict(self.cloud_per_device_month),
            "tinyml_per_device_month": dict(self.tinyml_per_device_month),
            **{k: list(v) for k, v in data.items() if isinstance(v, tuple)},
        }


def _per_device_month(i: CostInputs) -> tuple[dict[str, float], dict[str, float]]:
    per_month = i.inferences_per_device_per_day * DAYS_PER_MONTH
    messages = max(1, math.ceil(i.payload_bytes / i.message_bytes))
    usd_per_joule = i.electricity_usd_per_kwh / _J_PER_KWH
    cloud = {
        "inference": per_month * i.cloud_inference_usd_per_million / 1e6,
        "messaging": per_month * messages * i.cloud_message_usd_per_million / 1e6,
        "data": per_month * i.payload_bytes / _BYTES_PER_GB * i.data_usd_per_gb,
        "radio_energy": per_month * i.payload_bytes * i.radio_j_per_byte * usd_per_joule,
        "connection": i.cloud_connection_usd_per_device_month,
    }
    tinyml = {"compute_energy": per_month * i.energy_per_inference_j * usd_per_joule}
    return cloud, tinyml


def _break_even(cloud: tuple[float, float], tinyml: tuple[float, float]) -> float | None:
    (cloud_upfront, cloud_monthly), (tiny_upfront, tiny_monthly) = cloud, tinyml
    if tiny_upfront <= cloud_upfront and tiny_monthly <= cloud_monthly:
        return 0.0
    if tiny_monthly < cloud_monthly:
        return (tiny_upfront - cloud_upfront) / (cloud_monthly - tiny_monthly)
    return None


def _verdict(
    month: float | None, horizon: int, cloud: tuple[float, float], tinyml: tuple[float, float]
) -> str:
    if month == 0:
        if cloud == tinyml:
            return "Both options cost the same: the same up front and the same each month."
        return "TinyML costs less from the start: no more up front and no more each month."
    if month is not None and month <= horizon:
        return (
            f"TinyML breaks even after {month:.1f} months (in month {math.ceil(month)}); "
            "from then on its cumulative cost stays below the cloud option's."
        )
    if month is not None:
        return (
            f"TinyML breaks even only after {month:.1f} months, beyond the {horizon}-month horizon; "
            "within the horizon the cloud option costs less."
        )
    (cloud_upfront, cloud_monthly), (tiny_upfront, tiny_monthly) = cloud, tinyml
    if tiny_upfront < cloud_upfront:
        overtaken = (cloud_upfront - tiny_upfront) / (tiny_monthly - cloud_monthly)
        return (
            f"TinyML costs less only until month {overtaken:.1f}; after that the cloud option's "
            "lower running cost makes it the cheaper one, so TinyML never breaks even for good."
        )
    return "TinyML never breaks even: it costs at least as much up front and more each month."


def fleet_sizes(devices: int) -> tuple[int, ...]:
    """1, 2, 5, 10, 20, 50 ... up to ten times ``devices``, and ``devices`` itself."""
    top = max(10, 10 * devices)
    steps = {k * 10**e for e in range(len(str(top))) for k in (1, 2, 5) if k * 10**e <= top}
    return tuple(sorted(steps | {devices}))


def _totals(i: CostInputs) -> tuple[tuple[float, float], tuple[float, float]]:
    """(up front, per month) for the whole fleet: cloud, then TinyML."""
    cloud_device, tiny_device = _per_device_month(i)
    cloud_monthly = i.devices * sum(cloud_device.values()) + i.cloud_fixed_usd_per_month
    tiny_monthly = i.devices * sum(tiny_device.values()) + i.tinyml_fixed_usd_per_month
    return (i.devices * i.cloud_hardware_usd_per_device, cloud_monthly), (
        i.devices * i.tinyml_device_usd,
        tiny_monthly,
    )


def estimate(inputs: CostInputs) -> CostEstimate:
    """Cumulative costs month by month, the break-even month, and totals at the horizon by fleet size."""
    cloud_device, tiny_device = _per_device_month(inputs)
    cloud, tinyml = _totals(inputs)
    months = tuple(range(inputs.horizon_months + 1))
    horizon = inputs.horizon_months
    sizes = fleet_sizes(inputs.devices)
    swept = [_totals(replace(inputs, devices=n)) for n in sizes]
    break_even = _break_even(cloud, tinyml)
    return CostEstimate(
        inputs=inputs,
        cloud_per_device_month=MappingProxyType(cloud_device),
        tinyml_per_device_month=MappingProxyType(tiny_device),
        cloud_upfront_usd=cloud[0],
        tinyml_upfront_usd=tinyml[0],
        cloud_monthly_usd=cloud[1],
        tinyml_monthly_usd=tinyml[1],
        months=months,
        cloud_cumulative_usd=tuple(cloud[0] + cloud[1] * m for m in months),
        tinyml_cumulative_usd=tuple(tinyml[0] + tinyml[1] * m for m in months),
        break_even_month=break_even,
        verdict=_verdict(break_even, horizon, cloud, tinyml),
        fleet_sizes=sizes,
        cloud_total_by_fleet_usd=tuple(c[0] + c[1] * horizon for c, _ in swept),
        tinyml_total_by_fleet_usd=tuple(t[0] + t[1] * horizon for _, t in swept),
    )
