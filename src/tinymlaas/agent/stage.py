"""A device's stage in a pipeline of models: run the stage, judge its output, pass it on or report it.

A source runs on the sensor's windows (the inference loop hands each output over), a relay on the
tensors its upstream nodes POST to ``/hop/<pipeline>/<stage>`` over DTLS-PSK. Either way the output
then goes one of three ways: the last stage (no next hops) reports it as the pipeline's result, with
its accuracy when the origin knew the window's label; a stage whose condition holds puts it into the
outbox of one next hop (round-robin by sequence number) or of every one (``hop.HopSender`` sends them);
a stage whose condition fails stops it there, as a cascade's gate is meant to.

A relay listens only while the server has named upstream nodes (Upstream Keys), and takes a message
only from a session whose PSK identity is one of them: the transport checks the key, so no node
accepts a tensor from a node it was not told about. It answers 2.04 only once the result is counted or
the forwarded message is on disk, so nothing acknowledged is lost; a message seen again (a resend
whose acknowledgement was lost) is acknowledged without being counted twice.

The configuration is persisted in ``state_dir/pipeline`` with the outboxes, so a node that restarts
takes up its stage and sends what was waiting.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path as FsPath
from urllib.parse import urlsplit

import numpy as np

from tinymlaas.agent.active_model import ActiveModel
from tinymlaas.agent.hop import HopOutbox, HopSender, HopTarget, SendEvent, stop_sender
from tinymlaas.agent.inference import InferenceOutput
from tinymlaas.agent.runtime import PacedRunner
from tinymlaas.errors import InvalidInput
from tinymlaas.files import write_json_atomic
from tinymlaas.lwm2m.core import Path
from tinymlaas.lwm2m.linkemu import PROFILES, link_profile
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse
from tinymlaas.split.wire import HOP_PATH, MAX_HOP_BYTES, HopMessage, decode, encode
from tinymlaas.squeeze.info import TensorInfo
from tinymlaas.squeeze.runtimes import Runner, dequantize

__all__ = [
    "FANOUTS",
    "MAX_NEXT_HOPS",
    "MAX_UPSTREAM",
    "ROLES",
    "Condition",
    "StageConfig",
    "StageCounters",
    "StageEngine",
]

OBJECT_ID = 26242
ROLES = ("", "source", "relay")
FANOUTS = ("round-robin", "all")
# What goes on to the next stage: the model's output (a split model's head), or the input it ran on
# (a cascade: the next model looks at the same window, only if this one let it through).
FORWARDS = ("output", "input")
MAX_NEXT_HOPS = 8
MAX_UPSTREAM = 32
MAX_URI = 255
MAX_LABEL = 128
KEY_BYTES = (16, 64)
WINDOW = 100  # sends, runs and results the mean latencies are taken over
RATE_WINDOW_S = 10.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SEEN = 4096  # (origin, seq) pairs a relay remembers to recognise a resend
_SEQ_BLOCK = 1000  # sequence numbers reserved on disk at once, so a restart never reuses one
PIPELINE_DIR = "pipeline"


def _where(resource: int) -> str:
    names = {0: "Pipeline", 1: "Stage", 2: "Role", 3: "Next Hops", 4: "Condition", 5: "Hop Key"}
    names |= {6: "Upstream Keys", 8: "Hop Link", 9: "Fan-out"}
    return f"/{OBJECT_ID}/0/{resource} {names[resource]}"


@dataclass(frozen=True)
class Condition:
    """When a stage passes its output on: always, unless/if the top label is one, or above a score."""

    kind: str  # "" always, "not", "label", "score"
    label: str = ""
    threshold: float = 0.0

    @classmethod
    def parse(cls, text: str, labels: Sequence[str] | None) -> Condition:
        """The condition ``text`` names; InvalidInput when it is malformed or names a label the model
        lacks. A model without labels (the head of a split model) takes no condition but "".

        ``labels`` None checks the form only: a condition already applied keeps working when a model
        comes or goes, and then names the classes by index where the model has no labels.
        """
        if text == "":
            return cls("")
        if labels is not None and not labels:
            raise InvalidInput("the installed model has no labels (or there is none): only '' applies")
        kind, sep, argument = text.partition(":")
        if sep and kind in ("not", "label"):
            if not argument or (labels is not None and argument not in labels):
                raise InvalidInput(f"{argument[:MAX_LABEL]!r} is none of the model's labels {list(labels)}")
            return cls(kind, label=argument)
        if text.startswith("score>="):
            try:
                threshold = float(text.removeprefix("score>="))
            except ValueError:
                threshold = math.nan
            if not 0.0 <= threshold <= 1.0:
                raise InvalidInput(f"{text!r}: the score threshold is a number within 0..1")
            return cls("score", threshold=threshold)
        raise InvalidInput(f"{text[:80]!r} is not '', 'not:<label>', 'label:<label>' or 'score>=<t>'")

    def passes(self, top_label: str, score: float) -> bool:
        match self.kind:
            case "not":
                return top_label != self.label
            case "label":
                return top_label == self.label
            case "score":
                return score >= self.threshold
        return True


@dataclass(frozen=True)
class StageConfig:
    """Resources 0-9 and 23 of Object 26242 as this node applies them; empty pipeline: no stage at all."""

    pipeline: str = ""
    stage: str = ""
    role: str = ""
    next_hops: tuple[str, ...] = ()
    condition: str = ""
    hop_key: bytes = b""
    upstream_keys: tuple[tuple[str, bytes], ...] = ()
    hop_link: str = ""
    fanout: str = "round-robin"
    forward: str = "output"

    @property
    def active(self) -> bool:
        return bool(self.pipeline and self.role)

    def upstream_key(self, identity: str) -> bytes | None:
        return dict(self.upstream_keys).get(identity)

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["hop_key"] = self.hop_key.hex()
        data["upstream_keys"] = [f"{name}={key.hex()}" for name, key in self.upstream_keys]
        data["next_hops"] = list(self.next_hops)
        return data


def _text(resource: int, value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise InvalidInput(f"{_where(resource)}: at most {limit} printable characters")
    return value


def _key(resource: int, text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise InvalidInput(f"{_where(resource)}: the key is not hexadecimal") from None
    if not KEY_BYTES[0] <= len(key) <= KEY_BYTES[1]:
        raise InvalidInput(
            f"{_where(resource)}: a key is {KEY_BYTES[0]}-{KEY_BYTES[1]} bytes, got {len(key)}"
        )
    return key


def _hop_uri(text: str) -> str:
    if len(text) > MAX_URI:
        raise InvalidInput(f"{_where(3)}: a URI is at most {MAX_URI} characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"{_where(3)}: {text[:80]!r} is not a URI ({exc})") from None
    if parts.scheme != "coaps" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise InvalidInput(f"{_where(3)}: {text[:80]!r} is not coaps://host[:port]")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"coaps://{host}:{port or 5684}"


def _list(resource: int, value: object, limit: int) -> list[str]:
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, tuple | list) else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise InvalidInput(f"{_where(resource)}: expected strings")
    kept = [item for item in items if item != ""]  # one empty instance clears the resource
    if len(kept) > limit:
        raise InvalidInput(f"{_where(resource)}: at most {limit} entries, got {len(kept)}")
    return kept


def configure(
    current: StageConfig, changes: Mapping[int, object], labels: Sequence[str] | None
) -> StageConfig:
    """``current`` with the written resources replaced, every value and the whole checked first.

    ``changes`` maps a resource id to its new text, or for Next Hops and Upstream Keys to the list of
    instances (one "" clears the list). InvalidInput names the first resource that is wrong.
    """
    fields: dict[str, object] = {}
    for resource, value in changes.items():
        match resource:
            case 0 | 1:
                name = _text(resource, value, 64)
                if name and not _NAME.fullmatch(name):
                    raise InvalidInput(f"{_where(resource)}: letters, digits, '.', '_' and '-', up to 64")
                fields["pipeline" if resource == 0 else "stage"] = name
            case 2:
                role = _text(resource, value, 16)
                if role not in ROLES:
                    raise InvalidInput(f"{_where(2)}: one of 'source', 'relay' or '' (none), got {role!r}")
                fields["role"] = role
            case 3:
                hops = [_hop_uri(uri) for uri in _list(3, value, MAX_NEXT_HOPS)]
                if len(set(hops)) != len(hops):
                    raise InvalidInput(f"{_where(3)}: a next hop is named twice")
                fields["next_hops"] = tuple(hops)
            case 4:
                fields["condition"] = _text(4, value, MAX_LABEL + 16)
            case 5:
                text = _text(5, value, 2 * KEY_BYTES[1])
                fields["hop_key"] = _key(5, text) if text else b""
            case 6:
                keys: dict[str, bytes] = {}
                for entry in _list(6, value, MAX_UPSTREAM):
                    identity, sep, hexkey = _text(6, entry, MAX_LABEL + 2 * KEY_BYTES[1] + 1).rpartition("=")
                    if not sep or not identity or identity in keys:
                        raise InvalidInput(f"{_where(6)}: entries are 'identity=hexkey', identities distinct")
                    keys[identity] = _key(6, hexkey)
                fields["upstream_keys"] = tuple(sorted(keys.items()))
            case 8:
                link = _text(8, value, 32)
                if link and link not in PROFILES:
                    raise InvalidInput(f"{_where(8)}: {link!r} is none of {', '.join(PROFILES)} (or '')")
                fields["hop_link"] = link
            case 9:
                fanout = _text(9, value, 16)
                if fanout not in FANOUTS:
                    raise InvalidInput(f"{_where(9)}: 'round-robin' or 'all', got {fanout!r}")
                fields["fanout"] = fanout
            case 23:
                forward = _text(23, value, 16)
                if forward not in FORWARDS:
                    raise InvalidInput(f"{_where(23)}: 'output' or 'input', got {forward!r}")
                fields["forward"] = forward
            case _:
                raise InvalidInput(f"/{OBJECT_ID}/0/{resource}: not part of the stage's configuration")
    config = replace(current, **fields)  # type: ignore[arg-type]
    try:
        Condition.parse(config.condition, labels)
    except InvalidInput as exc:
        raise InvalidInput(f"{_where(4)}: {exc.detail}") from None
    if bool(config.pipeline) != bool(config.stage):
        raise InvalidInput(f"{_where(1)}: a pipeline and a stage are named together, or neither")
    if config.next_hops and not config.hop_key:
        raise InvalidInput(f"{_where(5)}: next hops need a hop key to prove this node to them")
    return config


@dataclass(frozen=True)
class StageCounters:
    """Resources 10-22 of Object 26242; counts run since the agent started."""

    messages_in: int
    messages_out: int
    passed: int
    filtered: int
    send_failures: int
    outbox: int
    mean_hop_latency_ms: float
    mean_compute_ms: float
    mean_end_to_end_ms: float
    last_result: str
    labelled: int
    correct: int
    messages_per_s: float


def _mean(values: Iterable[float]) -> float:
    kept = list(values)
    return sum(kept) / len(kept) if kept else 0.0


def _top(raw: np.ndarray, info: TensorInfo, labels: Sequence[str]) -> tuple[str, float]:
    """The top label (or class index, or a regression's value) and its score, from a raw output."""
    values = dequantize(np.asarray(raw), info).astype(np.float64).ravel()
    if values.size == 1:
        return f"{values[0]:.6g}", float(values[0])
    index = int(np.argmax(values))
    name = labels[index] if len(labels) == values.size else str(index)
    return name, float(values[index])


def _timed_raw(runner: Runner, raw: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    output = runner.run_raw(raw)
    if isinstance(runner, PacedRunner):
        return output, runner.latency_s
    return output, time.perf_counter() - started


class StageEngine:
    """This node's stage: configuration, the hop listener, the senders and the counters."""

    def __init__(
        self,
        endpoint: str,
        host: str,
        state_dir: FsPath,
        model: ActiveModel,
        *,
        hop_port: int,
        request_timeout: float,
        changed: Callable[[Iterable[Path]], None],
        on_event: SendEvent,
    ) -> None:
        self.endpoint = endpoint
        self._host = host
        self._port = hop_port
        self._model = model
        self._timeout = request_timeout
        self._changed = changed
        self._emit = on_event
        self._dir = FsPath(state_dir) / PIPELINE_DIR
        self._dir.mkdir(parents=True, exist_ok=True)
        self._config = self._load_config()
        self._next_seq, self._reserved = self._load_seq()
        self._listener: CoapEndpoint | None = None
        self._outboxes: dict[str, HopOutbox] = {}
        self._senders: dict[str, tuple[HopSender, asyncio.Task[None]]] = {}
        self._run_lock = asyncio.Lock()
        self._apply_lock = asyncio.Lock()
        self._seen: OrderedDict[tuple[str, int], bool] = OrderedDict()  # True once counted
        self._started = False
        self._in = self._out = self._passed = self._filtered = self._failures = 0
        self._labelled = self._correct = 0
        self._last_result = ""
        self._hop_ms: deque[float] = deque(maxlen=WINDOW)
        self._compute_ms: deque[float] = deque(maxlen=WINDOW)
        self._e2e_ms: deque[float] = deque(maxlen=WINDOW)
        self._arrivals: deque[float] = deque()

    # -- configuration -----------------------------------------------------------------------------

    @property
    def config(self) -> StageConfig:
        return self._config

    @property
    def listen_uri(self) -> str:
        return self._listener.uri if self._listener is not None else ""

    def _load_config(self) -> StageConfig:
        path = self._dir / "config.json"
        if not path.exists():
            return StageConfig()
        try:
            data = json.loads(path.read_text())
            changes = {0: data["pipeline"], 1: data["stage"], 2: data["role"], 3: data["next_hops"]}
            changes |= {4: data["condition"], 5: data["hop_key"], 6: data["upstream_keys"]}
            changes |= {8: data["hop_link"], 9: data["fanout"], 23: data.get("forward", "output")}
            return configure(StageConfig(), changes, None)
        except (OSError, ValueError, KeyError, TypeError, InvalidInput) as exc:
            detail = exc.detail if isinstance(exc, InvalidInput) else str(exc)
            raise InvalidInput(f"The pipeline configuration {path} cannot be used: {detail}") from exc

    def _load_seq(self) -> tuple[int, int]:
        path = self._dir / "seq.json"
        try:
            reserved = int(json.loads(path.read_text())["reserved"]) if path.exists() else 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"The pipeline sequence {path} cannot be read: {exc}") from exc
        return reserved, reserved

    def _take_seq(self) -> int:
        if self._next_seq >= self._reserved:
            self._reserved = self._next_seq + _SEQ_BLOCK
            write_json_atomic(self._dir / "seq.json", {"reserved": self._reserved})
        seq = self._next_seq
        self._next_seq += 1
        return seq

    async def configure(self, changes: Mapping[int, object]) -> None:
        """Apply a Write of resources 0-9 and 23 as a whole; InvalidInput (nothing changed) when any is wrong,
        or when the listener the new Upstream Keys need cannot have its port."""
        async with self._apply_lock:
            previous, self._config = self._config, configure(self._config, changes, self._labels())
            try:
                if self._started:
                    await self._apply()
            except OSError as exc:
                self._config = previous
                await self._apply()
                raise InvalidInput(f"{_where(6)}: cannot listen on port {self._port}: {exc}") from exc
            # 0600, as every file written atomically: the keys are in it, as the device's own PSK is.
            await asyncio.to_thread(write_json_atomic, self._dir / "config.json", self._config.as_json())

    async def start(self) -> None:
        """Listen and send as the persisted configuration says."""
        async with self._apply_lock:
            self._started = True
            await self._apply()

    async def stop(self) -> None:
        async with self._apply_lock:
            self._started = False
            for uri in list(self._senders):
                await self._stop_sender(uri)
            if self._listener is not None:
                await self._listener.close()
                self._listener = None

    async def _apply(self) -> None:
        config = self._config
        if config.upstream_keys and self._listener is None:
            self._listener = await CoapEndpoint.bind_secure(
                self._host, self._port, self._from_upstream, self._psk
            )
            self._port = self._listener.port  # an ephemeral port stays this node's until it stops
        elif not config.upstream_keys and self._listener is not None:
            await self._listener.close()
            self._listener = None
        profile = link_profile(config.hop_link) if config.hop_link else None
        wanted = {
            uri: HopTarget(uri, self.endpoint, config.hop_key, profile)
            for uri in (config.next_hops if config.active else ())
        }
        for uri in list(self._senders):
            if wanted.get(uri) != self._senders[uri][0].target:
                await self._stop_sender(uri)
        for uri, target in wanted.items():
            if uri not in self._senders:
                sender = HopSender(
                    target,
                    self._outbox(uri),
                    timeout=self._timeout,
                    on_delivered=self._delivered,
                    on_failed=self._failed,
                    on_event=self._event,
                )
                self._senders[uri] = (
                    sender,
                    asyncio.create_task(sender.run(), name=f"{self.endpoint} hop {uri}"),
                )

    async def _stop_sender(self, uri: str) -> None:
        _, task = self._senders.pop(uri)
        await stop_sender(task)

    def _outbox(self, uri: str) -> HopOutbox:
        outbox = self._outboxes.get(uri)
        if outbox is None:
            outbox = self._outboxes[uri] = HopOutbox(HopOutbox.directory_for(self._dir / "outbox", uri))
        return outbox

    def _labels(self) -> tuple[str, ...]:
        """The installed model's class names (the manifest's ``labels``), empty when it has none."""
        labels = self._model.manifest().get("labels")
        if isinstance(labels, list) and all(isinstance(label, str) for label in labels):
            return tuple(labels)
        return ()

    def _psk(self, identity: str) -> tuple[bytes, str] | None:
        key = self._config.upstream_key(identity)
        return (key, identity) if key is not None else None

    # -- counters ----------------------------------------------------------------------------------

    def _delivered(self, latency_ms: float) -> None:
        self._out += 1
        self._hop_ms.append(latency_ms)

    def _failed(self) -> None:
        self._failures += 1

    async def _event(self, kind: str, message: str) -> None:
        await self._emit(kind, message)

    def counters(self) -> StageCounters:
        now = time.monotonic()
        while self._arrivals and now - self._arrivals[0] > RATE_WINDOW_S:
            self._arrivals.popleft()
        hops = self._config.next_hops
        return StageCounters(
            messages_in=self._in,
            messages_out=self._out,
            passed=self._passed,
            filtered=self._filtered,
            send_failures=self._failures,
            outbox=sum(box.waiting for uri, box in self._outboxes.items() if uri in hops),
            mean_hop_latency_ms=_mean(self._hop_ms),
            mean_compute_ms=_mean(self._compute_ms),
            mean_end_to_end_ms=_mean(self._e2e_ms),
            last_result=self._last_result,
            labelled=self._labelled,
            correct=self._correct,
            messages_per_s=len(self._arrivals) / RATE_WINDOW_S,
        )

    async def report(self, interval: float) -> None:
        """Notify observers of the counters every ``interval`` seconds while they change."""
        last: StageCounters | None = None
        while True:
            await asyncio.sleep(interval)
            current = self.counters()
            if current != last:
                last = current
                self._changed(Path(OBJECT_ID, 0, resource) for resource in range(10, 23))

    # -- the stage ---------------------------------------------------------------------------------

    async def on_output(self, output: InferenceOutput) -> None:
        """A source's inference output: the stage's work on one sensor window."""
        config = self._config
        runner = self._model.runner()
        if config.role != "source" or not config.active or runner is None:
            return
        message = HopMessage(
            pipeline=config.pipeline,
            stage=config.stage,
            seq=await asyncio.to_thread(self._take_seq),
            origin=self.endpoint,
            created_at_ms=output.read_at * 1000.0,
            tensor=b"\0",  # the tensor fields are the output's, set once it is known to go on
            shape=(1,),
            scale=1.0,
            zero_point=0,
            label=output.label[:MAX_LABEL] if output.label else None,
        )
        await self._after_run(
            config, message, output.raw, runner.output, output.seconds, output.raw_input, runner.input
        )

    async def _after_run(
        self,
        config: StageConfig,
        incoming: HopMessage,
        raw: np.ndarray,
        info: TensorInfo,
        seconds: float,
        raw_input: np.ndarray,
        input_info: TensorInfo,
    ) -> None:
        """Count one run, then report it (last stage), stop it (condition) or store it for sending."""
        self._in += 1
        self._arrivals.append(time.monotonic())
        self._compute_ms.append(seconds * 1000.0)
        top, score = _top(raw, info, self._labels())
        self._last_result = top
        if not config.next_hops:
            self._e2e_ms.append(max(0.0, time.time() * 1000.0 - incoming.created_at_ms))
            if incoming.label is not None:
                self._labelled += 1
                self._correct += top == incoming.label
            return
        if not Condition.parse(config.condition, None).passes(top, score):
            self._filtered += 1
            return
        self._passed += 1
        sent, sent_info = (raw_input, input_info) if config.forward == "input" else (raw, info)
        if sent_info.dtype != "int8" or sent_info.scale is None or sent_info.zero_point is None:
            self._failures += 1
            await self._event(
                "hop-refused", f"the model's {config.forward} is {sent_info.dtype}, not int8: nothing to send"
            )
            return
        message = replace(
            incoming,
            stage=config.stage,
            tensor=np.asarray(sent, dtype=np.int8).tobytes(),
            shape=tuple(int(d) for d in np.shape(sent)),
            scale=float(sent_info.scale),
            zero_point=int(sent_info.zero_point),
        )
        payload = encode(message)
        hops = config.next_hops
        targets = hops if config.fanout == "all" else (hops[message.seq % len(hops)],)
        for uri in targets:
            await self._outbox(uri).put(f"{message.origin}:{message.seq}", payload, seconds * 1000.0)

    async def _from_upstream(self, request: CoapRequest) -> CoapResponse:
        """One hop message from an upstream node, answered once it is counted or safely stored."""
        config = self._config
        path = request.path
        if len(path) != 3 or path[0] != HOP_PATH or config.role != "relay" or path[1] != config.pipeline:
            return CoapResponse("4.04", f"{request.uri_path}: this node runs no such pipeline stage".encode())
        if request.method != "POST":
            return CoapResponse("4.05", b"hop messages are POSTed")
        if request.peer is None or config.upstream_key(request.peer) is None:
            return CoapResponse("4.03", b"this node takes hop messages from its upstream nodes only")
        if len(request.payload) > MAX_HOP_BYTES:
            return CoapResponse("4.13", f"a hop message is at most {MAX_HOP_BYTES} bytes".encode())
        message = decode(request.payload)
        if message.pipeline != config.pipeline or message.stage != path[2]:
            return CoapResponse("4.00", b"the message's pipeline and stage differ from its path")
        key = (message.origin, message.seq)
        if key in self._seen:
            if self._seen[key]:
                return CoapResponse("2.04")
            return CoapResponse("5.03", b"this message is being processed")
        runner = await asyncio.to_thread(self._model.runner)
        if runner is None:
            return CoapResponse("5.03", b"no model runs on this node")
        _check_input(message, runner.input)
        self._seen[key] = False
        try:
            raw = _requantized(message, runner.input)
            async with self._run_lock:
                output, seconds = await asyncio.to_thread(_timed_raw, runner, raw)
            await self._after_run(config, message, output, runner.output, seconds, raw, runner.input)
        except BaseException:
            del self._seen[key]
            raise
        self._seen[key] = True
        while len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        return CoapResponse("2.04")


def _check_input(message: HopMessage, tensor: TensorInfo) -> None:
    """InvalidInput unless the message's tensor has the shape of the model's int8 input."""
    if tensor.dtype != "int8" or tensor.scale is None or tensor.zero_point is None:
        raise InvalidInput(f"the model's input is {tensor.dtype}, not a quantized int8 tensor")
    if message.shape != tuple(tensor.shape):
        raise InvalidInput(f"shape {list(message.shape)} differs from the model's input {list(tensor.shape)}")


def _requantized(message: HopMessage, tensor: TensorInfo) -> np.ndarray:
    """The message's tensor in the model's input quantization.

    A split model's tail takes its head's output exactly (same scale and zero point); a cascade's next
    model was calibrated on its own and takes the same window on its own int8 grid, so the values are
    moved onto it: real = scale × (q − zero point), then rounded onto the model's grid and clipped.
    """
    q = np.frombuffer(message.tensor, dtype=np.int8).reshape(tensor.shape)
    assert tensor.scale is not None and tensor.zero_point is not None
    if math.isclose(message.scale, tensor.scale, rel_tol=1e-6) and message.zero_point == tensor.zero_point:
        return q
    real = (q.astype(np.float32) - message.zero_point) * np.float32(message.scale)
    moved = np.round(real / np.float32(tensor.scale)) + tensor.zero_point
    return np.clip(moved, -128, 127).astype(np.int8)
