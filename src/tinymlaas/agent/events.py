"""What an agent tells its operator: the events behind ``tinymlaas agent``'s JSON lines and the fleet's log.

A failing callback must never stop a device from updating, so ``EventLog`` logs the failure and moves on.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["AgentEvent", "EventCallback", "EventLog"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentEvent:
    """Something worth telling the operator: ``kind`` is one of registered, registration-failed,
    deregistered, update (a state change), download (one block, ``block`` is its number), installed and
    install-failed; when collecting samples also collect-paused, collect-resumed, collect-dropped and
    collect-rejected (see ``tinymlaas.agent.uploader``)."""

    kind: str
    message: str
    block: int | None = None


EventCallback = Callable[[AgentEvent], Awaitable[None] | None]


class EventLog:
    """One device's events: each goes to the log (all but the many download blocks) and to ``on_event``."""

    def __init__(self, endpoint: str, on_event: EventCallback | None) -> None:
        self._endpoint = endpoint
        self._on_event = on_event

    async def emit(self, kind: str, message: str, block: int | None = None) -> None:
        if kind != "download":
            _log.info("%s: %s", self._endpoint, message)
        if self._on_event is None:
            return
        try:
            result = self._on_event(AgentEvent(kind, message, block))
            if inspect.isawaitable(result):
                await result
        except Exception:
            _log.exception("event callback failed on %s", kind)
