"""Predicted against measured end-to-end latency of every cut of a split model on emulated nodes.

The planner (``tinymlaas split``) promises an expected end-to-end latency for each cut: the head's time
on the device from per-layer QEMU instruction counts, the cut tensor's transfer from a model of CoAP
Block1 over the link profile, the tail's time in LiteRT on this host. This checks the promise against
the product running it. For each model × chain × link and every valid cut:

- predicted: ``plan_split``'s device, transfer and remote parts and their total;
- measured: a device agent runs the cut's head as a native module compiled for the device's board
  and paced to that module's own QEMU estimate (a whole-module count, independent of the planner's
  per-layer prefix sums), sends the cut tensor as a pipeline hop over CoAP/DTLS-PSK through the link
  emulator (Hop Link = the link profile) to a gateway agent running the tail in LiteRT, and the
  gateway reports Mean End-to-End (26242/0/18), read through a real LwM2M server after each message
  so each message's own latency is recovered. The first message of each cut opens the DTLS session
  and is reported apart, not counted.

The two extremes, measured honestly as nodes would run them: all on the device runs the whole model
natively and sends its output to a gateway whose model is one RESHAPE (to count and report it); all
offloaded gives the device a one-RESHAPE module (no arithmetic: the native compiler aliases it, its
QEMU estimate is a few dozen instructions) with Forward = input (26242/0/23), so the device sends
its quantized window and the gateway runs the whole model.

Models, trained one quick epoch (latency does not depend on accuracy) and converted to int8 with a
representative set: the zoo's mobilenet on ``scenes``, cnn1d on ``gestures``, cnn2d on ``digits``.
Chains: ``nano33ble:<link>:rpi4`` (Cortex-M4F) and ``pico:<link>:x86-64-host`` (Cortex-M0+).

Targets: the chosen cut at least 3× faster than the worse extreme on at least one realistic setting;
the chosen cut never slower than the better extreme (measured means); the prediction within 20 % of
the measured mean for every cut. The prediction is an expected value and a lost datagram costs a
CoAP retransmission of 2-3 s, so each cut also shows the standard deviation that loss alone gives a
mean of n messages, and the lossless prediction beside the median.

Run time: one sweep of MobileNet's cuts over BLE takes about 100 s (its early activations are
18-74 KB, 3-13 s a message), so a cut whose predicted latency × ``--messages`` exceeds
``--cut-budget`` seconds gets fewer messages (never under 3; each table gives n), and the links of one
chain are measured side by side, each pair with its own agents and link emulator in the one event
loop (``--quick`` measures one link alone). The full run is sized for about 40 minutes on 2 cores;
``seconds`` in the JSON says what it took.

Writes ``bench/results/split.json`` and prints a table per setting and a summary.

    python bench/split.py [--quick] [--models mobilenet,cnn1d,cnn2d] [--chains nano33ble:rpi4,...]
                          [--links ble,wifi,lte-m] [--messages 10] [--cut-budget 12]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from split_rig import Module, Node, Rig, WindowGate, build_module, eventually  # a sibling helper
from tinymlaas.catalog import load_catalog
from tinymlaas.catalog.board import Board
from tinymlaas.catalog.loader import Catalog
from tinymlaas.compilers.litert import LiteRtCompiler
from tinymlaas.compilers.native import NativeCompiler
from tinymlaas.data.generators import generate
from tinymlaas.data.scaling import InputScaling
from tinymlaas.data.types import Arrays
from tinymlaas.lwm2m.linkemu import PROFILES, LinkProfile
from tinymlaas.split.cuts import split_model
from tinymlaas.split.planner import CutFigures, SplitPlan, parse_chain, plan_split
from tinymlaas.split.transfer import ACK_RANDOM_FACTOR, ACK_TIMEOUT_S, MAX_RETRANSMIT, predict_transfer
from tinymlaas.squeeze.convert import Quantization, convert
from tinymlaas.training.trainer import Recipe, train

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"
# model name -> (generator, zoo architecture, samples generated)
MODELS = {
    "mobilenet": ("scenes", "mobilenet", 240),
    "cnn1d": ("gestures", "cnn1d", 400),
    "cnn2d": ("digits", "cnn2d", 400),
}
CHAINS = ("nano33ble:rpi4", "pico:x86-64-host")
LINKS = ("ble", "wifi", "lte-m")
QUICK = {"models": "cnn2d", "chains": "nano33ble:rpi4", "links": "ble", "messages": 20}
SEED = 7
EPOCHS = 1
SPEEDUP_TARGET = 3.0
PREDICTION_TARGET = 0.20
# A setting where the link is one a device of that class really uses: all three here are.
REALISTIC_LINKS = ("ble", "wifi", "lte-m")
MESSAGE_TIMEOUT_S = 120.0
# Inputs each head is counted on in QEMU; instruction counts barely depend on the data.
QEMU_VECTORS = 2
# Fewest messages a cut gets when its predicted latency would make --messages take over the budget.
MIN_MESSAGES = 3

console = Console(width=200)


@dataclass(frozen=True)
class Prepared:
    """One trained int8 model and what its nodes need: the scaling, labels and sensor windows."""

    name: str
    tflite: bytes
    scaling: InputScaling
    labels: tuple[str, ...]
    representative: np.ndarray  # in the model's input units
    windows: np.ndarray  # held-out samples in sensor units, the device's sensor feed


def _prepare(name: str) -> Prepared:
    """Train the zoo's model for one quick epoch and convert it to int8 with int8 input and output."""
    generator, arch, count = MODELS[name]
    data = generate(generator, count, seed=SEED)
    labels = tuple(data.spec.labels)
    x = np.stack([s.x for s in data.samples]).astype(np.float32)
    y = np.array([labels.index(s.label) for s in data.samples])
    cut = int(len(x) * 0.8)
    empty = np.empty((0, *x.shape[1:]), np.float32)
    arrays = Arrays(x[:cut], y[:cut], empty, y[:0], x[cut:], y[cut:])
    result = train(data.spec, arrays, Recipe(arch=arch, epochs=EPOCHS, seed=SEED))
    representative = result.scaling.apply(arrays.x_train)
    tflite = convert(result.model, Quantization.INT8, representative)
    return Prepared(name, tflite, result.scaling, labels, representative, arrays.x_test)


def _passthrough(shape: tuple[int, ...], representative: np.ndarray) -> bytes:
    """A one-RESHAPE int8 model of ``shape``: a node that holds a message without computing on it.

    A fixed batch of 1 keeps the reshape static (a dynamic one brings SHAPE and PACK ops with it).
    """
    import keras

    model = keras.Sequential([keras.Input(shape, batch_size=1), keras.layers.Reshape((math.prod(shape), 1))])
    return convert(model, Quantization.INT8, representative.astype(np.float32))


def _output_range_rows(tflite: bytes, count: int) -> np.ndarray:
    """Representative rows spanning the int8 range of the model's output, so the gateway's
    pass-through takes the output on the same grid."""
    from tinymlaas.squeeze.inspect import inspect_tflite

    out = inspect_tflite(tflite).outputs[0]
    scale, zero = out.scale or 1.0, out.zero_point or 0
    low, high = scale * (-128 - zero), scale * (127 - zero)
    rows = np.random.default_rng(SEED).uniform(low, high, size=(count, *out.shape[1:]))
    return np.concatenate([rows, np.full((1, *out.shape[1:]), low), np.full((1, *out.shape[1:]), high)])


class Modules:
    """Each cut's two modules, built once per board and shared by every link of a chain."""

    def __init__(self, model: Prepared) -> None:
        self.model = model
        self._cache: dict[tuple[str, str, int], Module] = {}
        self.seconds = 0.0

    def _built(self, key: tuple[str, str, int], build: Callable[[], Module]) -> Module:
        if key not in self._cache:
            started = time.perf_counter()
            self._cache[key] = build()
            self.seconds += time.perf_counter() - started
        return self._cache[key]

    def head(self, board: Board, index: int, operators: int) -> tuple[Module, str]:
        """The device's module at cut ``index`` and what it forwards."""
        model = self.model
        if index == 0:
            shape = tuple(model.representative.shape[1:])
            module = self._built(
                ("head", board.id, 0),
                lambda: build_module(
                    _passthrough(shape, model.representative),
                    NativeCompiler(),
                    board,
                    f"{model.name}-pass",
                    scaling=model.scaling,
                    quantization="int8",
                    vectors=model.representative[:QEMU_VECTORS],
                ),
            )
            return module, "input"
        head = model.tflite if index == operators else split_model(model.tflite, index)[0]
        assert head is not None
        labels = model.labels if index == operators else ()
        module = self._built(
            ("head", board.id, index),
            lambda: build_module(
                head,
                NativeCompiler(),
                board,
                f"{model.name}-head{index}",
                scaling=model.scaling,
                labels=labels,
            ),
        )
        return module, "output"

    def tail(self, board: Board, index: int, operators: int) -> Module:
        """The gateway's module at cut ``index``."""
        model = self.model
        if index == operators:
            rows = _output_range_rows(model.tflite, 62)
            return self._built(
                ("tail", board.id, index),
                lambda: build_module(
                    _passthrough(tuple(rows.shape[1:]), rows), LiteRtCompiler(), board, f"{model.name}-out"
                ),
            )
        tail = model.tflite if index == 0 else split_model(model.tflite, index)[1]
        assert tail is not None
        return self._built(
            ("tail", board.id, index),
            lambda: build_module(
                tail, LiteRtCompiler(), board, f"{model.name}-tail{index}", labels=model.labels
            ),
        )


def _loss_sd_ms(link: LinkProfile, blocks: int, n: int) -> float:
    """The standard deviation that CoAP retransmissions alone give a mean of ``n`` messages.

    Per Block1 exchange an attempt fails with q = 1 − (1 − loss)²; after j failures the exchange has
    waited the sum of j timeouts, the i-th uniform in ACK_TIMEOUT × 2^(i−1) × [1, ACK_RANDOM_FACTOR].
    """
    q = 1 - (1 - link.loss) ** 2
    low, high = ACK_TIMEOUT_S, ACK_TIMEOUT_S * ACK_RANDOM_FACTOR
    first, second = 0.0, 0.0
    for j in range(1, MAX_RETRANSMIT + 1):
        weights = [2 ** (i - 1) for i in range(1, j + 1)]
        mean = sum(w * (low + high) / 2 for w in weights)
        variance = sum((w * (high - low)) ** 2 / 12 for w in weights)
        p = q**j * (1 - q)
        first += p * mean
        second += p * (variance + mean**2)
    per_message = blocks * (second - first**2)
    return math.sqrt(per_message / n) * 1000.0 if n else 0.0


def _each(means: list[float]) -> list[float]:
    """Each value from the running means a node reported after it: k·m_k − (k−1)·m_{k−1}.

    The node averages its last 100 values, so this holds while fewer than 100 were taken.
    """
    values, previous = [], 0.0
    for k, mean in enumerate(means, start=1):
        values.append(k * mean - (k - 1) * previous)
        previous = mean
    return values


def _delivered(source: Node, relay: Node, count: int) -> bool:
    return (
        relay.agent.stage.counters().messages_in >= count
        and source.agent.stage.counters().messages_out >= count
    )


async def _measure(
    rig: Rig,
    device: tuple[Board, Module, str],
    gateway: tuple[Board, Module],
    link: str,
    windows: np.ndarray,
    messages: int,
) -> dict[str, Any]:
    """Send ``messages`` + 1 windows through one device–gateway pair, one at a time."""
    gate = WindowGate(windows)
    board, module, forward = device
    source, relay = await rig.pair((board, module, gate), gateway, link=link, forward=forward)
    e2e, hop, device_ms, remote_ms = [], [], [], []
    failures = 0
    try:
        for count in range(1, messages + 2):
            gate.release()
            await eventually(
                partial(_delivered, source, relay, count), MESSAGE_TIMEOUT_S, f"message {count} over {link}"
            )
            at_gateway, at_device = await rig.read(relay), await rig.read(source)
            e2e.append(at_gateway[18])
            remote_ms.append(at_gateway[17])
            hop.append(at_device[16])
            device_ms.append(at_device[17])
            failures = at_device[14]
    finally:
        await rig.unpair(source, relay)
    e2e, hop, device_ms, remote_ms = (_each(v) for v in (e2e, hop, device_ms, remote_ms))
    kept = e2e[1:]
    link_ms = [e - d - r for e, d, r in zip(kept, device_ms[1:], remote_ms[1:], strict=True)]
    return {
        "n": len(kept),
        "mean_ms": statistics.fmean(kept),
        "median_ms": statistics.median(kept),
        "min_ms": min(kept),
        "max_ms": max(kept),
        "stdev_ms": statistics.stdev(kept) if len(kept) > 1 else 0.0,
        "first_message_ms": e2e[0],
        "device_ms": statistics.fmean(device_ms[1:]),
        "remote_ms": statistics.fmean(remote_ms[1:]),
        "link_and_stack_ms": statistics.fmean(link_ms),
        "link_and_stack_median_ms": statistics.median(link_ms),
        "hop_round_trip_ms": statistics.fmean(hop[1:]),
        "send_failures": failures,
        "end_to_end_ms": kept,
        "device_target_ms": module.target_ms,
        "forward": forward,
    }


def _cut_row(candidate: CutFigures, link: LinkProfile, measured: dict[str, Any] | None) -> dict[str, Any]:
    lossless = predict_transfer(candidate.payload_bytes, replace(link, loss=0.0)).seconds * 1000.0
    transfer = predict_transfer(candidate.payload_bytes, link)
    row: dict[str, Any] = {
        "index": candidate.cut.index,
        "label": candidate.cut.label,
        "fits": candidate.fits,
        "reasons": list(candidate.reasons),
        "payload_bytes": candidate.payload_bytes,
        "blocks": transfer.blocks,
        "predicted": {
            "device_ms": candidate.device.ms,
            "transfer_ms": candidate.transfer.ms,
            "remote_ms": candidate.remote.ms,
            "total_ms": candidate.total_ms,
            "total_lossless_ms": candidate.device.ms + lossless + candidate.remote.ms,
            "device_basis": candidate.device.basis,
            "transfer_basis": candidate.transfer.basis,
            "remote_basis": candidate.remote.basis,
        },
        "measured": measured,
    }
    if measured is not None and measured.get("mean_ms", 0) <= 0 and "mean_ms" in measured:
        # A gateway reports 0 ms when it never produced a result for the cut: nothing to compare.
        row["note"] = "the gateway reported no end-to-end latency for this cut"
    elif measured is not None and "mean_ms" in measured:
        row["prediction_error"] = (candidate.total_ms - measured["mean_ms"]) / measured["mean_ms"]
        row["within_target"] = abs(row["prediction_error"]) <= PREDICTION_TARGET
        row["loss_sd_of_mean_ms"] = _loss_sd_ms(link, transfer.blocks, measured["n"])
        # A retransmission waits at least ACK_TIMEOUT, far beyond any other spread on these links.
        gap = 0.9 * ACK_TIMEOUT_S * 1000
        slow = [v for v in measured["end_to_end_ms"] if v - measured["median_ms"] >= gap]
        row["retransmitted_messages"] = len(slow)
    return row


def _messages(candidate: CutFigures, messages: int, budget_s: float) -> int:
    """``messages``, fewer (down to MIN_MESSAGES) where the predicted latency would overrun the budget."""
    per_message_s = max(candidate.total_ms, 1.0) / 1000.0
    return min(messages, max(MIN_MESSAGES, int(budget_s / per_message_s)))


async def _setting(
    rig: Rig, model: Prepared, modules: Modules, plan: SplitPlan, messages: int, budget_s: float
) -> list[dict[str, Any]]:
    """Every cut of one plan measured, one after the other, on the plan's link."""
    chain = plan.chain
    rows = []
    for candidate in plan.candidates:
        index = candidate.cut.index
        measured: dict[str, Any] | None
        if not candidate.fits:
            measured = {
                "error": "not measured: the head does not fit the device ("
                + "; ".join(candidate.reasons)
                + ")"
            }
        else:
            try:
                head, forward = modules.head(chain.device, index, plan.operators)
                tail = modules.tail(chain.remote, index, plan.operators)
                measured = await _measure(
                    rig,
                    (chain.device, head, forward),
                    (chain.remote, tail),
                    chain.link.name,
                    model.windows,
                    _messages(candidate, messages, budget_s),
                )
            except Exception as exc:  # a cut the nodes refuse is a result too; the others still count
                measured = {"error": f"{type(exc).__name__}: {exc}"}
        row = _cut_row(candidate, chain.link, measured)
        rows.append(row)
        _progress(plan, row)
    return rows


def _build_all(modules: Modules, plan: SplitPlan) -> None:
    """Every fitting cut's two modules, before any link is measured: links run side by side, and a
    compile in the event loop's thread would stall their timers."""
    for candidate in plan.candidates:
        if candidate.fits:
            with contextlib.suppress(Exception):  # the measurement reports the refusal for that cut
                modules.head(plan.chain.device, candidate.cut.index, plan.operators)
                modules.tail(plan.chain.remote, candidate.cut.index, plan.operators)


def _progress(plan: SplitPlan, row: dict[str, Any]) -> None:
    measured = row["measured"] or {}
    got = f"{measured['mean_ms']:.1f}" if "mean_ms" in measured else measured.get("error", "-")[:80]
    console.print(
        f"  {plan.chain.spec} cut {row['index']:>2}: predicted {row['predicted']['total_ms']:.1f} ms, "
        f"measured {got}"
    )


def _verdicts(setting: dict[str, Any]) -> dict[str, Any]:
    """The setting's choice against its extremes, on measured means (and on predictions)."""
    rows = {r["index"]: r for r in setting["cuts"]}
    chosen = rows.get(setting["chosen"]) if setting["chosen"] is not None else None
    extremes = [r for r in (setting["cuts"][0], setting["cuts"][-1]) if r["fits"]]

    def mean(row: dict[str, Any]) -> float | None:
        measured = row.get("measured") or {}
        return measured.get("mean_ms")

    result: dict[str, Any] = {"chosen": setting["chosen"]}
    measured_extremes = [m for m in (mean(r) for r in extremes) if m is not None]
    if chosen is None or mean(chosen) is None or not measured_extremes:
        result["measured"] = None
        return result
    chosen_ms = mean(chosen)
    assert chosen_ms is not None
    worse, better = max(measured_extremes), min(measured_extremes)
    measured_cuts = [r for r in setting["cuts"] if mean(r) is not None and r["fits"]]
    fastest = min(measured_cuts, key=lambda r: mean(r) or math.inf)
    result["measured"] = {
        "chosen_ms": chosen_ms,
        "worse_extreme_ms": worse,
        "better_extreme_ms": better,
        "speedup_vs_worse": worse / chosen_ms,
        "not_slower_than_better": chosen_ms <= better,
        "fastest_measured_cut": fastest["index"],
        "fastest_measured_ms": mean(fastest),
    }
    result["predicted_speedup_vs_worse"] = setting["predicted_speedup"]
    return result


def _table(setting: dict[str, Any]) -> None:
    table = Table(
        title=f"{setting['model']} on {setting['chain']}: predicted against measured end-to-end (ms)",
        caption="pred = device + transfer + remote (plan_split); meas = mean/median of n messages "
        "at the gateway "
        "(26242/0/18); link+stack = measured end-to-end − device − remote compute; "
        "±loss = 1 sd that CoAP retransmissions alone give the mean",
    )
    for column in ("cut", "where", "bytes", "pred dev", "meas dev", "pred xfer", "meas link+stack",
                   "pred remote", "meas remote", "pred total", "pred lossless", "meas mean", "meas median",
                   "n", "±loss", "retx", "error"):  # fmt: skip
        table.add_column(column, justify="right" if column not in ("where",) else "left")
    for row in setting["cuts"]:
        p, m = row["predicted"], row["measured"] or {}
        mark = " ◀" if row["index"] == setting["chosen"] else ""
        where = row["label"][:48] + ("" if row["fits"] else " (does not fit)")
        if "prediction_error" not in row:
            table.add_row(
                f"{row['index']}{mark}", where, f"{row['payload_bytes']:,}", f"{p['device_ms']:.1f}", "-",
                f"{p['transfer_ms']:.1f}", "-", f"{p['remote_ms']:.2f}", "-", f"{p['total_ms']:.1f}",
                f"{p['total_lossless_ms']:.1f}", (m.get("error") or row.get("note") or "not measured")[:40],
                "", "", "", "", "",
            )  # fmt: skip
            continue
        error = row["prediction_error"]
        flag = "" if row["within_target"] else " (NO)"
        table.add_row(
            f"{row['index']}{mark}", where, f"{row['payload_bytes']:,}", f"{p['device_ms']:.1f}",
            f"{m['device_ms']:.1f}", f"{p['transfer_ms']:.1f}", f"{m['link_and_stack_ms']:.1f}",
            f"{p['remote_ms']:.2f}", f"{m['remote_ms']:.2f}", f"{p['total_ms']:.1f}",
            f"{p['total_lossless_ms']:.1f}", f"{m['mean_ms']:.1f}", f"{m['median_ms']:.1f}", str(m["n"]),
            f"{row['loss_sd_of_mean_ms']:.0f}", str(row["retransmitted_messages"]),
            f"{error * 100:+.0f} %{flag}",
        )  # fmt: skip
    console.print(table)
    verdict = setting["verdict"].get("measured")
    if verdict:
        console.print(
            f"chosen cut {setting['chosen']}: measured {verdict['chosen_ms']:.1f} ms, "
            f"{verdict['speedup_vs_worse']:.2f}× the worse extreme ({verdict['worse_extreme_ms']:.1f} ms; "
            f"predicted {setting['predicted_speedup'] or 0:.2f}×), better extreme "
            f"{verdict['better_extreme_ms']:.1f} ms; fastest measured cut {verdict['fastest_measured_cut']} "
            f"({verdict['fastest_measured_ms']:.1f} ms)"
        )


def _worst_entry(setting: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    measured = row["measured"]
    return {
        "setting": f"{setting['model']} {setting['chain']}",
        "cut": row["index"],
        "error": row["prediction_error"],
        "predicted_ms": row["predicted"]["total_ms"],
        "measured_mean_ms": measured["mean_ms"],
        "measured_median_ms": measured["median_ms"],
        "loss_sd_of_mean_ms": row["loss_sd_of_mean_ms"],
        "retransmitted_messages": row["retransmitted_messages"],
    }


def _summary(settings: list[dict[str, Any]]) -> dict[str, Any]:
    cuts = [r for s in settings for r in s["cuts"] if "prediction_error" in r]
    within = [r for r in cuts if r["within_target"]]
    worst = sorted(
        (_worst_entry(s, r) for s in settings for r in s["cuts"] if "prediction_error" in r),
        key=lambda w: -abs(w["error"]),
    )
    lossless_within = [
        r
        for r in cuts
        if abs(r["predicted"]["total_lossless_ms"] - r["measured"]["median_ms"])
        <= PREDICTION_TARGET * r["measured"]["median_ms"]
    ]
    verdicts = [(s, s["verdict"]["measured"]) for s in settings if s["verdict"].get("measured")]
    realistic = [(s, v) for s, v in verdicts if s["link"] in REALISTIC_LINKS]
    best = max(realistic, key=lambda sv: sv[1]["speedup_vs_worse"], default=None)
    slower = [f"{s['model']} {s['chain']}" for s, v in verdicts if not v["not_slower_than_better"]]
    not_judged = [f"{s['model']} {s['chain']}" for s in settings if not s["verdict"].get("measured")]
    unmeasured = sum(1 for s in settings for r in s["cuts"] if "prediction_error" not in r)
    return {
        "speedup": {
            "target": f"chosen cut ≥ {SPEEDUP_TARGET:g}× faster than the worse extreme somewhere realistic",
            "met": best is not None and best[1]["speedup_vs_worse"] >= SPEEDUP_TARGET,
            "best": None
            if best is None
            else {
                "setting": f"{best[0]['model']} {best[0]['chain']}",
                "speedup": best[1]["speedup_vs_worse"],
            },
            "per_setting": {f"{s['model']} {s['chain']}": v["speedup_vs_worse"] for s, v in verdicts},
        },
        "never_slower": {
            "target": "the chosen cut never slower than the better extreme (measured means)",
            "met": bool(verdicts) and not slower and not not_judged,
            "slower_in": slower,
            "not_judged": not_judged,  # the choice or both extremes could not be measured
        },
        "prediction": {
            "target": f"prediction within {PREDICTION_TARGET:.0%} of the measured mean for every cut",
            "met": bool(cuts) and len(within) == len(cuts),
            "within": len(within),
            "cuts": len(cuts),
            "not_measured": unmeasured,
            "lossless_prediction_within_of_median": len(lossless_within),
            "worst": worst[:8],
        },
    }


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="targets")
    for column in ("target", "met", "detail"):
        table.add_column(column)
    speed = summary["speedup"]
    best = speed["best"]
    table.add_row(
        speed["target"],
        "yes" if speed["met"] else "NO",
        "" if best is None else f"best {best['speedup']:.2f}× ({best['setting']})",
    )
    slower = summary["never_slower"]
    table.add_row(
        slower["target"],
        "yes" if slower["met"] else "NO",
        "slower in: "
        + (", ".join(slower["slower_in"]) or "none")
        + (f"; not judged: {', '.join(slower['not_judged'])}" if slower["not_judged"] else ""),
    )
    prediction = summary["prediction"]
    worst = "; ".join(
        f"{w['setting']} cut {w['cut']} {w['error'] * 100:+.0f} % "
        f"({w['predicted_ms']:.0f} vs {w['measured_mean_ms']:.0f})"
        for w in prediction["worst"][:4]
    )
    table.add_row(
        prediction["target"],
        "yes" if prediction["met"] else "NO",
        f"{prediction['within']}/{prediction['cuts']} within ({prediction['not_measured']} not measured); "
        f"lossless prediction within 20 % of the median: "
        f"{prediction['lossless_prediction_within_of_median']}; "
        f"worst: {worst}",
    )
    console.print(table)


async def _run(args: argparse.Namespace, catalog: Catalog, root: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"messages": args.messages, "settings": [], "timings_s": {}}
    rig = await Rig.start(root)
    try:
        for name in args.models:
            started = time.perf_counter()
            console.print(f"[bold]{name}[/]: training {EPOCHS} epoch and converting to int8")
            model = await asyncio.to_thread(_prepare, name)
            modules = Modules(model)
            results["timings_s"][f"{name} training"] = time.perf_counter() - started
            for pair in args.chains:
                device, remote = pair.split(":")
                started = time.perf_counter()
                plans = []
                for link in args.links:
                    chain = parse_chain(f"{device}:{link}:{remote}", catalog)
                    plans.append(await asyncio.to_thread(plan_split, model.tflite, chain, catalog))
                planned = time.perf_counter() - started
                built = modules.seconds
                await asyncio.to_thread(_build_all, modules, plans[0])
                console.print(
                    f"  {pair}: planned in {planned:.0f} s, built in {modules.seconds - built:.0f} s"
                )
                measuring = time.perf_counter()
                measured = await asyncio.gather(
                    *(_setting(rig, model, modules, plan, args.messages, args.cut_budget) for plan in plans)
                )
                for plan, cuts in zip(plans, measured, strict=True):
                    setting = {
                        "model": name,
                        "chain": plan.chain.spec,
                        "device": plan.chain.device.id,
                        "remote": plan.chain.remote.id,
                        "link": plan.chain.link.name,
                        "links_side_by_side": len(plans),
                        "operators": plan.operators,
                        "chosen": plan.chosen,
                        "predicted_speedup": plan.speedup,
                        "notes": list(plan.notes),
                        "cuts": cuts,
                        "seconds": {
                            "plan_all_links": planned,
                            "build": modules.seconds - built,
                            "measure_all_links": time.perf_counter() - measuring,
                        },
                    }
                    setting["verdict"] = _verdicts(setting)
                    results["settings"].append(setting)
                    _table(setting)
    finally:
        await rig.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="cnn2d, nano33ble:rpi4, ble, 20 messages")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--chains", default=",".join(CHAINS), help="device:node pairs; the link goes between")
    parser.add_argument("--links", default=",".join(LINKS))
    parser.add_argument("--messages", type=int, default=None, help="messages per cut after one warm-up (10)")
    parser.add_argument(
        "--cut-budget",
        type=float,
        default=12.0,
        help=f"seconds of predicted latency per cut; a slower cut gets fewer messages (>= {MIN_MESSAGES})",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "split.json")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            if key != "messages" or args.messages is None:
                setattr(args, key, value)
    args.messages = args.messages or 10
    args.models = [m for m in str(args.models).split(",") if m]
    args.chains = [c for c in str(args.chains).split(",") if c]
    args.links = [link for link in str(args.links).split(",") if link]
    unknown = [m for m in args.models if m not in MODELS] + [x for x in args.links if x not in PROFILES]
    if unknown or not 1 <= args.messages <= 98:
        parser.error(
            f"unknown {unknown}" if unknown else "--messages is 1..98 (nodes average their last 100)"
        )

    catalog = load_catalog()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="split-bench-") as root:
        results = asyncio.run(_run(args, catalog, Path(root)))
    results["summary"] = _summary(results["settings"])
    results["seconds"] = time.perf_counter() - started
    results["quick"] = args.quick
    RESULTS.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    _print_summary(results["summary"])
    console.print(f"{results['seconds']:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
