"""SenML JSON and CBOR (RFC 8428) as LwM2M 1.1 uses them for multi-resource payloads (TS Core §7.4.4-5).

Written by hand: the SenML libraries on PyPI model sensor packs, not LwM2M's conventions. Those are:
names are LwM2M paths (base name ``/3/0/`` plus name ``0``), an Objlnk value travels under the extra
label ``vlo`` (a text label in CBOR too, since RFC 8428 assigned it no number), Opaque is ``vd``
(base64url without padding in JSON, a byte string in CBOR), and a record with a name but no value is
how Read-Composite and Observe-Composite list their targets.

Decoding yields Python types only (``int``/``float`` from ``v``, ``str``, ``bool``, ``bytes``,
``ObjectLink``); which LwM2M type a number is depends on the resource, so callers pass the result
through ``ObjectRegistry.coerce_all``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import cbor2

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core.model import INT64_MIN, UINT64_MAX, ObjectLink, Value
from tinymlaas.lwm2m.core.paths import Path

__all__ = ["ContentFormat", "Record", "decode", "decode_records", "encode", "encode_records"]


class ContentFormat(IntEnum):
    """CoAP Content-Format numbers LwM2M 1.1 uses (IANA CoRE parameters registry)."""

    TEXT_PLAIN = 0
    LINK_FORMAT = 40
    OCTET_STREAM = 42
    SENML_JSON = 110
    SENML_CBOR = 112
    # OMA TLV: kept for peers that only speak LwM2M 1.0; not implemented until such a peer needs it.
    LWM2M_TLV = 11542


# RFC 8428 Table 4 (CBOR labels); LwM2M's "vlo" has no number and stays text.
_CBOR_LABELS: Mapping[int, str] = {
    -1: "bver",
    -2: "bn",
    -3: "bt",
    -4: "bu",
    -5: "bv",
    -6: "bs",
    0: "n",
    1: "u",
    2: "v",
    3: "vs",
    4: "vb",
    5: "s",
    6: "t",
    7: "ut",
    8: "vd",
}
_CBOR_KEYS: Mapping[str, int] = {label: key for key, label in _CBOR_LABELS.items()}
_VALUE_LABELS = ("v", "vs", "vb", "vd", "vlo")


@dataclass(frozen=True)
class Record:
    """One resolved SenML record: an absolute path, its value (None in composite requests) and time.

    ``time`` is what base time plus time add up to, in seconds; RFC 8428 reads values below 2**28 as
    relative to "now", which only the receiver knows, so resolving those is the caller's business.
    """

    path: Path
    value: Value | None = None
    time: float | None = None


def _check_format(content_format: int) -> ContentFormat:
    if content_format not in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
        raise InvalidInput(f"content format {content_format} is not SenML JSON (110) or SenML CBOR (112)")
    return ContentFormat(content_format)


def _value_label(path: Path, value: Value, binary: bool) -> tuple[str, Any]:
    if isinstance(value, bool):
        return "vb", value
    if isinstance(value, int):
        if not INT64_MIN <= value <= UINT64_MAX:
            raise InvalidInput(f"{path}: integer {value} does not fit in 64 bits")
        return "v", value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{path}: SenML cannot carry the float {value}")
        return "v", value
    if isinstance(value, str):
        return "vs", value
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return "vd", data if binary else base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    if isinstance(value, ObjectLink):
        return "vlo", str(value)
    raise InvalidInput(f"{path}: SenML cannot carry a {type(value).__name__} value")


def _pack(records: Sequence[Record], binary: bool) -> list[dict[str, Any]]:
    """Build label-keyed records, compressing the common path prefix into one base name."""
    names = [str(record.path) for record in records]
    prefix = ""
    if records:
        # The shared leading ids, leaving every record at least its last id as its own name.
        depth = min(len(record.path.ids) for record in records) - 1
        common = records[0].path.ids[:depth]
        for record in records[1:]:
            while record.path.ids[: len(common)] != common:
                common = common[:-1]
        if common:
            prefix = "/" + "/".join(str(value) for value in common) + "/"
    packed: list[dict[str, Any]] = []
    for index, (record, name) in enumerate(zip(records, names, strict=True)):
        item: dict[str, Any] = {}
        if index == 0 and prefix:
            item["bn"] = prefix
        relative = name[len(prefix) :]
        if relative:
            item["n"] = relative
        if record.time is not None:
            if not math.isfinite(record.time):
                raise InvalidInput(f"{record.path}: time {record.time} is not finite")
            item["t"] = record.time
        if record.value is not None:
            label, encoded = _value_label(record.path, record.value, binary)
            item[label] = encoded
        packed.append(item)
    return packed


def encode_records(records: Iterable[Record], content_format: int) -> bytes:
    """Encode records in the order given (time series keep their order) as SenML JSON or CBOR."""
    fmt = _check_format(content_format)
    records = list(records)
    for record in records:
        if record.path.resource_id is None:
            raise InvalidInput(f"{record.path}: SenML records name resources, not objects or instances")
    if fmt is ContentFormat.SENML_JSON:
        return json.dumps(_pack(records, binary=False), separators=(",", ":"), ensure_ascii=False).encode()
    packed = _pack(records, binary=True)
    numbered = [{_CBOR_KEYS.get(label, label): value for label, value in item.items()} for item in packed]
    return cbor2.dumps(numbered)


def encode(values: Mapping[Path, Value], content_format: int) -> bytes:
    """Encode a ``{path: value}`` snapshot (a Read or Notify body), sorted by path."""
    return encode_records((Record(path, values[path]) for path in sorted(values)), content_format)


def _reject_constant(name: str) -> float:
    raise InvalidInput(f"SenML JSON: {name} is not a number SenML allows")


def _load(data: bytes | str, fmt: ContentFormat) -> list[dict[str, Any]]:
    """Parse the payload into a list of label-keyed maps, whatever the wire format."""
    if fmt is ContentFormat.SENML_JSON:
        try:
            pack = json.loads(data, parse_constant=_reject_constant)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"SenML JSON: not valid JSON ({exc})") from None
    else:
        if isinstance(data, str):
            raise InvalidInput("SenML CBOR: expected bytes, got text")
        stream = io.BytesIO(data)
        try:
            pack = cbor2.CBORDecoder(stream).decode()
        except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
            raise InvalidInput(f"SenML CBOR: not valid CBOR ({exc})") from None
        if stream.tell() != len(data):
            raise InvalidInput(f"SenML CBOR: {len(data) - stream.tell()} bytes follow the array")
    kind = "SenML CBOR" if fmt is ContentFormat.SENML_CBOR else "SenML JSON"
    if not isinstance(pack, list):
        raise InvalidInput(f"{kind}: the payload must be an array of records, got {type(pack).__name__}")
    maps: list[dict[str, Any]] = []
    for index, item in enumerate(pack):
        if not isinstance(item, dict):
            raise InvalidInput(f"{kind}: record {index} is a {type(item).__name__}, not a map")
        labelled: dict[str, Any] = {}
        for key, value in item.items():
            if fmt is ContentFormat.SENML_CBOR and isinstance(key, int) and not isinstance(key, bool):
                label = _CBOR_LABELS.get(key)
                if label is None:
                    continue  # RFC 8428 §4.4: unknown labels without "_" are ignored.
            elif isinstance(key, str):
                label = key
            else:
                raise InvalidInput(f"{kind}: record {index} has the label {key!r}")
            labelled[label] = value
        maps.append(labelled)
    return maps


class _Where:
    """Where a record sits, for error messages; formatted only when one is raised, as a payload of
    hundreds of records (a runtime's op list) would otherwise spend its decoding on it."""

    __slots__ = ("index", "path")

    def __init__(self, index: int, path: Path | None = None) -> None:
        self.index, self.path = index, path

    def __str__(self) -> str:
        return f"SenML record {self.index}" + ("" if self.path is None else f" ({self.path})")


def _number(label: str, value: Any, where: str | _Where) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: '{label}' must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{where}: '{label}' is {value}")
    return value


def _decode_value(
    label: str, raw: Any, base_value: int | float | None, binary: bool, where: str | _Where
) -> Value:
    match label:
        case "v":
            number = _number(label, raw, where)
            return number + base_value if base_value is not None else number
        case "vs":
            if isinstance(raw, str):
                return raw
        case "vb":
            if isinstance(raw, bool):
                return raw
        case "vd":
            if binary and isinstance(raw, bytes):
                return raw
            if not binary and isinstance(raw, str):
                try:
                    text = raw.rstrip("=")
                    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidInput(f"{where}: 'vd' is not base64url") from None
        case "vlo":
            if isinstance(raw, str):
                return ObjectLink.parse(raw)
    raise InvalidInput(f"{where}: '{label}' has the wrong type {type(raw).__name__}")


def decode_records(data: bytes | str, content_format: int) -> list[Record]:
    """Decode SenML JSON or CBOR into records with absolute paths, in payload order."""
    fmt = _check_format(content_format)
    binary = fmt is ContentFormat.SENML_CBOR
    base_name = ""
    base_time: int | float | None = None
    base_value: int | float | None = None
    records: list[Record] = []
    for index, item in enumerate(_load(data, fmt)):
        where = _Where(index)
        for label in item:
            if label.endswith("_"):
                raise InvalidInput(f"{where}: must-understand label {label!r} is not supported")
        if "bn" in item:
            if not isinstance(item["bn"], str):
                raise InvalidInput(f"{where}: 'bn' must be a string")
            base_name = item["bn"]
        if "bt" in item:
            base_time = _number("bt", item["bt"], where)
        if "bv" in item:
            base_value = _number("bv", item["bv"], where)
        name = item.get("n", "")
        if not isinstance(name, str):
            raise InvalidInput(f"{where}: 'n' must be a string")
        try:
            path = Path.parse(base_name + name)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.detail}") from None
        if path.resource_id is None:
            raise InvalidInput(f"{where}: {path} names an object or instance, not a resource")
        where = _Where(index, path)
        present = [label for label in _VALUE_LABELS if label in item]
        if len(present) > 1:
            raise InvalidInput(f"{where}: carries several values ({', '.join(present)})")
        value = _decode_value(present[0], item[present[0]], base_value, binary, where) if present else None
        time: float | None = None
        if "t" in item or base_time is not None:
            time = (base_time or 0) + _number("t", item.get("t", 0), where)
        records.append(Record(path, value, time))
    return records


def decode(data: bytes | str, content_format: int) -> dict[Path, Value]:
    """Decode a snapshot: one value per path. Time series and name-only lists need ``decode_records``."""
    values: dict[Path, Value] = {}
    for record in decode_records(data, content_format):
        if record.value is None:
            raise InvalidInput(f"SenML: the record for {record.path} has no value")
        if record.path in values:
            raise InvalidInput(f"SenML: {record.path} appears twice; decode it as records")
        values[record.path] = record.value
    return values
