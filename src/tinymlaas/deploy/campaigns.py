"""Update campaigns: a staged rollout of one module to a fleet, stopped early when too many devices fail.

A campaign sends to a small first stage (the canaries), waits until every device of that stage has
an outcome, and only then widens to the next stage, so a bad module reaches few devices before the
failure threshold halts it. Everything here is a pure value: each operation returns a new
``Campaign``, and the caller (a service with storage and LwM2M) persists it and does the sending.

Rules callers rely on:

- Rollout order is the plan's target order (``select_targets`` gives sorted endpoints for ``board:``
  and ``tag:`` selectors and keeps a hand-written list's order, so a list can put canaries first).
- Stage ``k`` covers the first ``ceil(stages[k] * n / 100)`` targets. An endpoint counts as
  *attempted* once it left PENDING for anything but CANCELLED, so a device the compatibility gate
  REFUSED uses its place in the stage.
- Only FAILED counts as a failure; REFUSED never reached the device. ``max_failures`` given as an
  ``int`` is an absolute count, given as a ``float`` (0.0 to 1.0) a fraction of the installations
  sent so far; the campaign halts as soon as failures *exceed* it.
- Devices already sent to keep reporting after a halt or a cancel, and ``record`` accepts those
  reports, so the stored view matches the fleet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.lwm2m.core import UpdateResult, UpdateState

__all__ = [
    "ACTIVE_CAMPAIGN_STATES",
    "CAMPAIGN_TRANSITIONS",
    "INSTALLATION_TRANSITIONS",
    "IN_FLIGHT_INSTALLATION_STATES",
    "TERMINAL_INSTALLATION_STATES",
    "Campaign",
    "CampaignPlan",
    "CampaignProgress",
    "CampaignState",
    "DeviceRef",
    "InstallationState",
    "installation_state_for",
    "select_targets",
]


class InstallationState(Enum):
    """Where one device stands in one campaign."""

    # Chosen as a target; nothing sent yet.
    PENDING = "pending"
    # The compatibility gate said the device cannot run the module; nothing is sent. Terminal.
    REFUSED = "refused"
    # The Package URI (object 9 resource 3) was written to the device.
    SENT = "sent"
    # The device reports the download under way, or downloaded and being verified.
    DOWNLOADING = "downloading"
    # The package is delivered and the device is installing and self-testing it.
    INSTALLING = "installing"
    # The device reported INSTALLED: self-test passed and the model is confirmed. Terminal unless the
    # campaign is rolled back.
    SUCCEEDED = "succeeded"
    # The device reported a failure Update Result, or stopped answering in time. Terminal; the device's
    # A/B slots keep it on its previous model.
    FAILED = "failed"
    # The campaign was cancelled or rolled back before this device was sent anything. Terminal.
    CANCELLED = "cancelled"
    # A campaign rollback put the previous model back on this device. Terminal.
    ROLLED_BACK = "rolled_back"
    # A campaign rollback could not put the previous model back (none kept, or it no longer passes its
    # self-test); the device keeps the campaign's model. Terminal.
    ROLLBACK_FAILED = "rollback_failed"


_I = InstallationState

INSTALLATION_TRANSITIONS: Mapping[InstallationState, frozenset[InstallationState]] = MappingProxyType(
    {
        _I.PENDING: frozenset({_I.REFUSED, _I.SENT, _I.CANCELLED}),
        _I.REFUSED: frozenset(),
        # Observations can be coalesced, so a report may skip the states in between.
        _I.SENT: frozenset({_I.DOWNLOADING, _I.INSTALLING, _I.SUCCEEDED, _I.FAILED}),
        _I.DOWNLOADING: frozenset({_I.INSTALLING, _I.SUCCEEDED, _I.FAILED}),
        _I.INSTALLING: frozenset({_I.SUCCEEDED, _I.FAILED}),
        _I.SUCCEEDED: frozenset({_I.ROLLED_BACK, _I.ROLLBACK_FAILED}),
        _I.FAILED: frozenset(),
        _I.CANCELLED: frozenset(),
        _I.ROLLED_BACK: frozenset(),
        _I.ROLLBACK_FAILED: frozenset(),
    }
)

# Done for the purpose of stage advance and completion. SUCCEEDED is here although rollback can still
# move it: a stage is finished once each of its devices has an outcome.
TERMINAL_INSTALLATION_STATES = frozenset(
    {_I.REFUSED, _I.SUCCEEDED, _I.FAILED, _I.CANCELLED, _I.ROLLED_BACK, _I.ROLLBACK_FAILED}
)
# Sent and not yet done: the device is still working on the update and will report again.
IN_FLIGHT_INSTALLATION_STATES = frozenset(
    s for s in InstallationState if s is not _I.PENDING and s not in TERMINAL_INSTALLATION_STATES
)


class CampaignState(Enum):
    """The life of a campaign as a whole."""

    # Planned, nothing sent; the plan can still be discarded by cancelling.
    DRAFT = "draft"
    # Sending stage by stage.
    RUNNING = "running"
    # Failures crossed the plan's threshold; nothing new is sent. Cancel keeps what succeeded, rollback
    # reverts it.
    HALTED = "halted"
    # Every target has an outcome and the threshold held.
    COMPLETED = "completed"
    # Stopped by a person; targets not yet sent were marked CANCELLED.
    CANCELLED = "cancelled"
    # Devices that succeeded are being put back on their previous model.
    ROLLING_BACK = "rolling_back"
    # Every succeeded device was reverted (or its revert failed, on record) and none is still in flight.
    # Terminal.
    ROLLED_BACK = "rolled_back"


_C = CampaignState

CAMPAIGN_TRANSITIONS: Mapping[CampaignState, frozenset[CampaignState]] = MappingProxyType(
    {
        _C.DRAFT: frozenset({_C.RUNNING, _C.CANCELLED}),
        _C.RUNNING: frozenset({_C.HALTED, _C.COMPLETED, _C.CANCELLED, _C.ROLLING_BACK}),
        _C.HALTED: frozenset({_C.CANCELLED, _C.ROLLING_BACK}),
        _C.COMPLETED: frozenset({_C.ROLLING_BACK}),
        _C.CANCELLED: frozenset({_C.ROLLING_BACK}),
        _C.ROLLING_BACK: frozenset({_C.ROLLED_BACK}),
        _C.ROLLED_BACK: frozenset(),
    }
)

# The states in which the campaign runner still has work: sending stages, or reverting devices.
ACTIVE_CAMPAIGN_STATES = frozenset({_C.RUNNING, _C.ROLLING_BACK})
# Installations whose device may still fetch the package: told where it is, or fetching it now.
_FETCHING_INSTALLATION_STATES = frozenset({_I.SENT, _I.DOWNLOADING})

# What a device can report once it was sent the package, whatever the campaign does meanwhile.
_DEVICE_REPORTS = frozenset({_I.DOWNLOADING, _I.INSTALLING, _I.SUCCEEDED, _I.FAILED})
# Which installation moves ``record`` takes in each campaign state. CANCELLED is never among them: it
# comes only from cancel() and rollback(). A first send (SENT or REFUSED) happens only while RUNNING.
_RECORDABLE: Mapping[CampaignState, frozenset[InstallationState]] = MappingProxyType(
    {
        _C.DRAFT: frozenset(),
        _C.RUNNING: _DEVICE_REPORTS | {_I.SENT, _I.REFUSED},
        _C.HALTED: _DEVICE_REPORTS,
        _C.COMPLETED: frozenset(),
        _C.CANCELLED: _DEVICE_REPORTS,
        _C.ROLLING_BACK: _DEVICE_REPORTS | {_I.ROLLED_BACK, _I.ROLLBACK_FAILED},
        _C.ROLLED_BACK: frozenset(),
    }
)


def installation_state_for(state: UpdateState, result: UpdateResult) -> InstallationState | None:
    """What a device's object 9 Update State and Update Result say about its installation.

    None when the report carries no news (INITIAL with no failure). The agent reaches INSTALLED only
    after its self-test passed and it confirmed the slot, so INSTALLED means SUCCEEDED; the caller
    still checks that the reported package is the campaign's.
    """
    if result >= UpdateResult.NOT_ENOUGH_STORAGE:
        return _I.FAILED
    if state is UpdateState.INSTALLED:
        return _I.SUCCEEDED
    if state is UpdateState.DELIVERED:
        return _I.INSTALLING
    if state in (UpdateState.DOWNLOAD_STARTED, UpdateState.DOWNLOADED):
        return _I.DOWNLOADING
    return None


@dataclass(frozen=True)
class CampaignPlan:
    """Who gets the module, in which stages, and how many failures stop the rollout.

    ``stages`` are cumulative percentages of ``targets``, e.g. ``(10, 50, 100)``.
    """

    stages: tuple[int, ...]
    max_failures: int | float
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.stages:
            raise InvalidInput("A campaign needs at least one stage; use (100,) to send to all at once")
        if any(isinstance(pct, bool) or not isinstance(pct, int) for pct in self.stages):
            raise InvalidInput(f"Stages are whole percentages, got {self.stages}")
        if any(not 1 <= pct <= 100 for pct in self.stages):
            raise InvalidInput(f"Stages must lie within 1..100 percent, got {self.stages}")
        if any(b <= a for a, b in zip(self.stages, self.stages[1:], strict=False)):
            raise InvalidInput(f"Stages must be strictly increasing, got {self.stages}")
        if self.stages[-1] != 100:
            raise InvalidInput(
                f"The last stage must be 100 percent so every target is reached, got {self.stages}"
            )
        limit = self.max_failures
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            raise InvalidInput(f"max_failures must be a count (int) or a fraction (float), got {limit!r}")
        if isinstance(limit, int) and limit < 0:
            raise InvalidInput(f"max_failures as a count must be at least 0, got {limit}")
        if isinstance(limit, float) and not 0.0 <= limit <= 1.0:
            raise InvalidInput(f"max_failures as a fraction must lie within 0.0..1.0, got {limit}")
        if not self.targets:
            raise InvalidInput("A campaign needs at least one target device")
        if any(not isinstance(t, str) or not t for t in self.targets):
            raise InvalidInput("Target endpoints must be non-empty strings")
        duplicates = sorted(name for name, count in Counter(self.targets).items() if count > 1)
        if duplicates:
            raise InvalidInput(f"Target endpoints are listed more than once: {', '.join(duplicates)}")

    def stage_size(self, stage: int) -> int:
        """How many targets stage ``stage`` (0-based) covers, counting all earlier stages too."""
        return -(-self.stages[stage] * len(self.targets) // 100)

    def exceeded(self, failures: int, sent: int) -> bool:
        """Whether ``failures`` out of ``sent`` installations cross the threshold."""
        if isinstance(self.max_failures, float):
            return failures > self.max_failures * sent
        return failures > self.max_failures


@dataclass(frozen=True)
class CampaignProgress:
    """Counts for a dashboard: every installation state appears, with 0 where none is in it."""

    counts: Mapping[InstallationState, int]
    total: int
    done: int
    percent_done: float
    stage: int
    stages: int


@dataclass(frozen=True)
class Campaign:
    """One campaign's state; ``current_stage`` is the 0-based index into ``plan.stages``."""

    id: str
    plan: CampaignPlan
    state: CampaignState = CampaignState.DRAFT
    installations: Mapping[str, InstallationState] = field(default_factory=dict)
    current_stage: int = 0

    def __post_init__(self) -> None:
        installations = dict(self.installations) or dict.fromkeys(self.plan.targets, _I.PENDING)
        if set(installations) != set(self.plan.targets):
            raise InvalidInput(f"Campaign {self.id}: installations must cover exactly the plan's targets")
        if not 0 <= self.current_stage < len(self.plan.stages):
            raise InvalidInput(f"Campaign {self.id}: stage {self.current_stage} is not in the plan")
        ordered = {target: installations[target] for target in self.plan.targets}
        object.__setattr__(self, "installations", MappingProxyType(ordered))

    @property
    def serves_package(self) -> bool:
        """Whether a device may still fetch the package: the campaign is sending, or a device it sent
        to has not finished downloading (a halt or a cancel lets those finish).

        Once False nothing of this campaign fetches it again, so the package can be withdrawn.
        """
        return self.state is _C.RUNNING or any(
            s in _FETCHING_INSTALLATION_STATES for s in self.installations.values()
        )

    def endpoints(self, state: InstallationState) -> tuple[str, ...]:
        """Endpoints whose installation is in ``state``, in rollout order."""
        return tuple(e for e, s in self.installations.items() if s is state)

    def _move(self, to: CampaignState) -> Campaign:
        if to not in CAMPAIGN_TRANSITIONS[self.state]:
            raise Conflict(f"Campaign {self.id} is {self.state.value} and cannot become {to.value}")
        return replace(self, state=to)

    def start(self) -> Campaign:
        """Begin sending; ``next_batch`` then names the first stage."""
        return self._move(_C.RUNNING)._settle()

    def next_batch(self) -> tuple[str, ...]:
        """Endpoints to send to now: the current stage's targets still PENDING, in rollout order.

        Empty unless the campaign is RUNNING. Recording REFUSED or SENT for each of them is how the
        caller says it dealt with them; the stage advances once each of its devices has an outcome.
        """
        if self.state is not _C.RUNNING:
            return ()
        eligible = self.plan.targets[: self.plan.stage_size(self.current_stage)]
        return tuple(e for e in eligible if self.installations[e] is _I.PENDING)

    def record(self, endpoint: str, new_state: InstallationState) -> Campaign:
        """Take one device's new installation state, then halt, advance or complete as the counts say.

        NotFound for an endpoint outside the campaign; Conflict for a move the installation's table
        forbids, one the campaign's state does not take (CANCELLED comes only from ``cancel``), or a
        first send to a device outside ``next_batch``.
        """
        if endpoint not in self.installations:
            raise NotFound(f"Endpoint {endpoint!r} is not a target of campaign {self.id}")
        current = self.installations[endpoint]
        if new_state not in INSTALLATION_TRANSITIONS[current]:
            raise Conflict(
                f"Installation on {endpoint!r} is {current.value} and cannot become {new_state.value}"
            )
        if new_state not in _RECORDABLE[self.state]:
            raise Conflict(
                f"Campaign {self.id} is {self.state.value}; {endpoint!r} cannot become {new_state.value}"
            )
        if current is _I.PENDING and endpoint not in self.next_batch():
            raise Conflict(f"{endpoint!r} is not in the current stage of campaign {self.id}")
        installations = dict(self.installations)
        installations[endpoint] = new_state
        return replace(self, installations=installations)._settle()

    def _settle(self) -> Campaign:
        """Apply the campaign-level consequences of the installations' current states."""
        if self.state is _C.RUNNING:
            counts = Counter(self.installations.values())
            sent = sum(n for s, n in counts.items() if s not in (_I.PENDING, _I.REFUSED, _I.CANCELLED))
            if self.plan.exceeded(counts[_I.FAILED], sent):
                return self._move(_C.HALTED)
            campaign = self
            while campaign._stage_finished():
                if campaign.current_stage == len(self.plan.stages) - 1:
                    return campaign._move(_C.COMPLETED)
                campaign = replace(campaign, current_stage=campaign.current_stage + 1)
            return campaign
        if self.state is _C.ROLLING_BACK and not any(
            s is _I.SUCCEEDED or s in IN_FLIGHT_INSTALLATION_STATES for s in self.installations.values()
        ):
            return self._move(_C.ROLLED_BACK)
        return self

    def _stage_finished(self) -> bool:
        covered = self.plan.targets[: self.plan.stage_size(self.current_stage)]
        return all(self.installations[e] in TERMINAL_INSTALLATION_STATES for e in covered)

    def _cancel_pending(self) -> dict[str, InstallationState]:
        return {e: _I.CANCELLED if s is _I.PENDING else s for e, s in self.installations.items()}

    def cancel(self) -> Campaign:
        """Stop sending: every target not yet sent becomes CANCELLED; devices in flight still report."""
        return replace(self._move(_C.CANCELLED), installations=self._cancel_pending())

    def rollback(self) -> tuple[Campaign, tuple[str, ...]]:
        """Start reverting: returns the campaign ROLLING_BACK and the endpoints to put back now.

        Targets not yet sent become CANCELLED. The caller reverts each returned endpoint and records
        ROLLED_BACK (or ROLLBACK_FAILED) for it; a device still in flight that later reports
        SUCCEEDED must be reverted too (``endpoints(SUCCEEDED)`` names them). The campaign becomes
        ROLLED_BACK once none is SUCCEEDED or in flight.
        """
        moved = replace(self._move(_C.ROLLING_BACK), installations=self._cancel_pending())
        return moved._settle(), moved.endpoints(_I.SUCCEEDED)

    def progress(self) -> CampaignProgress:
        """Counts per installation state and the share of targets with an outcome."""
        counts = Counter(self.installations.values())
        total = len(self.installations)
        done = sum(counts[s] for s in TERMINAL_INSTALLATION_STATES)
        return CampaignProgress(
            counts=MappingProxyType({s: counts[s] for s in InstallationState}),
            total=total,
            done=done,
            percent_done=100.0 * done / total,
            stage=self.current_stage,
            stages=len(self.plan.stages),
        )


@dataclass(frozen=True)
class DeviceRef:
    """What target selection needs to know of a registered device."""

    endpoint: str
    board: str
    tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", frozenset(self.tags))


def select_targets(devices: Iterable[DeviceRef], selector: str) -> tuple[str, ...]:
    """Endpoints chosen by ``selector``: ``board:ID``, ``tag:NAME`` or ``ep1,ep2,...``.

    Board and tag selections come back sorted by endpoint, so the same fleet gives the same rollout
    order; an explicit list keeps its order (first named, first sent) and drops repeats. InvalidInput
    when the selection is empty or names an endpoint that is not registered.
    """
    known = {device.endpoint: device for device in devices}
    kind, _, value = selector.strip().partition(":")
    if kind in ("board", "tag") and value:
        value = value.strip()
        if kind == "board":
            chosen = sorted(e for e, d in known.items() if d.board == value)
        else:
            chosen = sorted(e for e, d in known.items() if value in d.tags)
        if not chosen:
            raise InvalidInput(f"No registered device matches {kind} {value!r}")
        return tuple(chosen)
    if kind in ("board", "tag"):
        raise InvalidInput(f"Selector {selector!r} names no {kind}")
    names = [name.strip() for name in selector.split(",")]
    if not any(names):
        raise InvalidInput("The selector is empty: give board:ID, tag:NAME or a list of endpoints")
    if not all(names):
        raise InvalidInput(f"Selector {selector!r} has an empty entry")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidInput(f"Unknown endpoint(s) in selector: {', '.join(unknown)}")
    return tuple(dict.fromkeys(names))
