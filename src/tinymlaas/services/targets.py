"""Which registered devices a campaign selector names, and what a selector can name.

A rollout's targets are chosen by ``deploy.campaigns.select_targets`` over the devices table; the
dashboard's target picker asks the same function, so the count it shows before a check is the count
the campaign will be planned on.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, computed_field

from tinymlaas.deploy.campaigns import DeviceRef, select_targets
from tinymlaas.errors import InvalidInput
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import DeviceRepository

__all__ = ["TargetMatch", "TargetOption", "match_targets", "target_options"]


class TargetMatch(BaseModel):
    """The devices a selector names, in rollout order, or why it names none."""

    model_config = ConfigDict(from_attributes=True)

    selector: str
    endpoints: list[str]
    error: str | None = Field(description="Why the selector chooses no device; None when it chooses some.")

    @computed_field(description="How many devices the selector chooses.")
    @property
    def count(self) -> int:
        return len(self.endpoints)


class TargetOption(BaseModel):
    """One thing a selector can name: a board, a tag or one device, with how many devices that is."""

    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description="board, tag or device.")
    selector: str = Field(description="What to put in the selector to choose it.")
    label: str
    devices: int
    online: int


def _refs(ctx: Context) -> tuple[list[DeviceRef], dict[str, bool]]:
    with ctx.session() as session:
        rows = DeviceRepository(session).devices()
        refs = [DeviceRef(row.endpoint, row.board_id or "", frozenset(row.tags)) for row in rows]
        return refs, {row.endpoint: row.online for row in rows}


def match_targets(ctx: Context, selector: str) -> TargetMatch:
    """The endpoints ``selector`` chooses now, as a campaign created now would target them."""
    refs, _ = _refs(ctx)
    try:
        endpoints = list(select_targets(refs, selector))
    except InvalidInput as exc:
        return TargetMatch(selector=selector, endpoints=[], error=exc.detail)
    return TargetMatch(selector=selector, endpoints=endpoints, error=None)


def target_options(ctx: Context) -> list[TargetOption]:
    """Every board the registered devices reported and every tag they carry, then each device."""
    refs, online = _refs(ctx)
    boards: Counter[str] = Counter(ref.board for ref in refs if ref.board)
    tags: Counter[str] = Counter(tag for ref in refs for tag in ref.tags)
    boards_online: Counter[str] = Counter(ref.board for ref in refs if ref.board and online[ref.endpoint])
    tags_online: Counter[str] = Counter(tag for ref in refs if online[ref.endpoint] for tag in ref.tags)
    options = [
        TargetOption(
            kind="board",
            selector=f"board:{board}",
            label=f"every {board}",
            devices=boards[board],
            online=boards_online[board],
        )
        for board in sorted(boards)
    ]
    options += [
        TargetOption(
            kind="tag",
            selector=f"tag:{tag}",
            label=f"tagged {tag}",
            devices=tags[tag],
            online=tags_online[tag],
        )
        for tag in sorted(tags)
    ]
    options += [
        TargetOption(
            kind="device",
            selector=ref.endpoint,
            label=f"{ref.endpoint} ({ref.board or 'board not reported'})",
            devices=1,
            online=int(online[ref.endpoint]),
        )
        for ref in sorted(refs, key=lambda ref: ref.endpoint)
    ]
    return options
