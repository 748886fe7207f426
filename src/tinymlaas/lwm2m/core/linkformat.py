"""CoRE Link Format (RFC 6690) for the LwM2M registration payload and Discover responses.

Written by hand: aiocoap has a link-format module, but this core must not import a CoAP stack, and
LwM2M needs only a small, strict subset: ``</>;rt="oma.lwm2m";ct=110,</3>;ver=1.1,</3/0>,</9/0>``.
An object whose version is not 1.0 announces it with ``ver`` on an object-level link, as TS Core 1.1
§6.2.2 and Leshan do; an alternate root (``</lwm2m>;rt="oma.lwm2m"``) prefixes every object link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core.model import ObjectDef
from tinymlaas.lwm2m.core.objects import OBJECTS
from tinymlaas.lwm2m.core.paths import Path
from tinymlaas.lwm2m.core.senml import ContentFormat

__all__ = ["LWM2M_ROOT_TYPE", "Link", "format_links", "object_paths", "object_versions", "parse_links"]

LWM2M_ROOT_TYPE = "oma.lwm2m"
DEFAULT_OBJECT_VERSION = "1.0"

# Values RFC 6690 defines as quoted strings; LwM2M peers expect rt="..." even for one word.
_ALWAYS_QUOTED = frozenset({"rt", "if", "title", "anchor", "rel", "rev"})
_TOKEN = re.compile(r"[A-Za-z0-9!#$&+\-.:<=>?@\[\]^_`|~*/]+")
_VERSION = re.compile(r"[0-9]+\.[0-9]+")


@dataclass(frozen=True)
class Link:
    """One link: a target URI reference and its attributes (``None`` for a flag such as ``obs``)."""

    target: str
    params: Mapping[str, str | None] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def path(self) -> Path | None:
        """The LwM2M path the target names, or None for ``/`` and non-LwM2M targets."""
        try:
            return Path.parse(self.target)
        except InvalidInput:
            return None

    def __str__(self) -> str:
        parts = [f"<{self.target}>"]
        for name, value in self.params.items():
            if value is None:
                parts.append(name)
            elif name in _ALWAYS_QUOTED or not _TOKEN.fullmatch(value):
                escaped = value.replace("\\", "\\\\").replace('"', '\\"')
                parts.append(f'{name}="{escaped}"')
            else:
                parts.append(f"{name}={value}")
        return ";".join(parts)


def format_links(
    paths: Iterable[Path],
    *,
    objects: Mapping[int, ObjectDef] = OBJECTS,
    content_format: int | None = ContentFormat.SENML_JSON,
) -> str:
    """The registration payload for these object and instance paths, sorted, root link first.

    ``objects`` supplies versions: an object known there with a version other than 1.0 gets an
    object-level link with ``ver``. Objects it does not know are listed without one.
    """
    root_params: dict[str, str | None] = {"rt": LWM2M_ROOT_TYPE}
    if content_format is not None:
        root_params["ct"] = str(int(content_format))
    links = [Link("/", root_params)]
    unique = set()
    for path in paths:
        if path.resource_id is not None:
            raise InvalidInput(f"{path}: registration lists objects and instances, not resources")
        unique.add(path)
    announced: set[int] = set()
    for path in sorted(unique):
        definition = objects.get(path.object_id)
        version = definition.version if definition is not None else DEFAULT_OBJECT_VERSION
        versioned = version != DEFAULT_OBJECT_VERSION
        if versioned and path.object_id not in announced:
            announced.add(path.object_id)
            links.append(Link(f"/{path.object_id}", {"ver": version}))
        if not (versioned and path.is_object):
            links.append(Link(str(path)))
    return ",".join(str(link) for link in links)


class _Scanner:
    """A cursor over link-format text; errors name the offset so a bad payload is easy to find."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> InvalidInput:
        return InvalidInput(f"link format: {message} at offset {self.pos}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take_until(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        self.pos += 1  # the opening quote
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                chars.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                return "".join(chars)
            else:
                chars.append(char)
        raise self.fail("unterminated quoted string")


def parse_links(text: str) -> list[Link]:
    """Parse a link-format document; whitespace between items and quoted commas are fine."""
    scanner = _Scanner(text)
    links: list[Link] = []
    scanner.skip_space()
    if not scanner.peek():
        return links
    while True:
        scanner.skip_space()
        if scanner.peek() != "<":
            raise scanner.fail("expected '<'")
        scanner.pos += 1
        target = scanner.take_until(">")
        if scanner.peek() != ">":
            raise scanner.fail("unterminated '<'")
        scanner.pos += 1
        params: dict[str, str | None] = {}
        scanner.skip_space()
        while scanner.peek() == ";":
            scanner.pos += 1
            scanner.skip_space()
            name = scanner.take_until('=;, \t\r\n"<>').lower()
            if not name:
                raise scanner.fail("empty attribute name")
            scanner.skip_space()
            value: str | None = None
            if scanner.peek() == "=":
                scanner.pos += 1
                scanner.skip_space()
                value = scanner.quoted() if scanner.peek() == '"' else scanner.take_until(";, \t\r\n")
            params.setdefault(name, value)
            scanner.skip_space()
        links.append(Link(target, params))
        if not scanner.peek():
            return links
        if scanner.peek() != ",":
            raise scanner.fail(f"unexpected {scanner.peek()!r}")
        scanner.pos += 1


def _root(links: Iterable[Link]) -> str:
    """The LwM2M root prefix: ``""`` by default, ``/lwm2m`` for ``</lwm2m>;rt="oma.lwm2m"``."""
    for link in links:
        types = (link.params.get("rt") or "").split()
        if LWM2M_ROOT_TYPE in types:
            return link.target.rstrip("/")
    return ""


def _object_links(links: list[Link]) -> list[tuple[Path, Link]]:
    root = _root(links)
    found: list[tuple[Path, Link]] = []
    for link in links:
        target = link.target
        if LWM2M_ROOT_TYPE in (link.params.get("rt") or "").split():
            continue
        if root:
            if not target.startswith(root + "/"):
                raise InvalidInput(f"link format: <{target}> is outside the LwM2M root <{root}>")
            target = target[len(root) :]
        try:
            path = Path.parse(target)
        except InvalidInput as exc:
            raise InvalidInput(f"link format: <{link.target}> is not an object link ({exc.detail})") from None
        if path.resource_id is not None:
            raise InvalidInput(f"link format: <{link.target}> names a resource; registration lists objects")
        found.append((path, link))
    return found


def object_paths(links: Iterable[Link]) -> tuple[Path, ...]:
    """The object and object-instance paths a registration announces, sorted and without duplicates."""
    return tuple(sorted({path for path, _ in _object_links(list(links))}))


def object_versions(links: Iterable[Link]) -> dict[int, str]:
    """The ``ver`` each object announces; objects without one are version 1.0 and left out."""
    versions: dict[int, str] = {}
    for path, link in _object_links(list(links)):
        version = link.params.get("ver")
        if version is None:
            continue
        if not _VERSION.fullmatch(version):
            raise InvalidInput(f"link format: <{link.target}> has the version {version!r}, not 'major.minor'")
        versions.setdefault(path.object_id, version)
    return versions
