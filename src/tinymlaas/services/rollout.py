"""A campaign's rollout over time: how many of its devices stood in each installation state, when.

Replayed from the state changes each installation records (``InstallationRow.state_changes``). An
installation stored before those were kept is replayed from the times its row does hold: pending
from the campaign's creation, sent at ``started_at``, its present state at ``finished_at`` (or its
last progress). Whatever was recorded, the replay ends on each device's stored state, so the timeline's
last counts are the campaign's counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby

from tinymlaas.deploy.campaigns import (
    ACTIVE_CAMPAIGN_STATES,
    IN_FLIGHT_INSTALLATION_STATES,
    CampaignState,
    InstallationState,
)
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import CampaignRepository
from tinymlaas.storage.tables import CampaignRow, InstallationRow

__all__ = ["RolloutTimeline", "rollout_timeline"]

_I = InstallationState


@dataclass(frozen=True)
class RolloutTimeline:
    """Devices per installation state at each moment one of them changed state, oldest first.

    ``counts[state][i]`` is how many devices were in ``state`` from ``times[i]`` until ``times[i + 1]``;
    ``states`` lists the states any device passed through, in the installation state machine's order.
    While the campaign is under way, the last moment is the time it was read, so the picture reaches now.
    """

    campaign: str
    devices: int
    states: list[str]
    times: list[datetime]
    counts: dict[str, list[int]]

    @property
    def final(self) -> dict[str, int]:
        """Devices per state now (the states no device is in left out)."""
        return {state: values[-1] for state, values in self.counts.items() if values and values[-1]}


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every one the product stores is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _changes(campaign: CampaignRow, installation: InstallationRow) -> list[tuple[datetime, _I]]:
    """When the installation entered each of its states, oldest first, ending on its stored state."""
    current = _I(installation.state)
    changes = [
        (_utc(datetime.fromisoformat(change["at"])), _I(change["state"]))
        for change in installation.state_changes
    ]
    if not changes:
        changes = [(_utc(campaign.created_at), _I.REFUSED if current is _I.REFUSED else _I.PENDING)]
        if installation.started_at is not None:
            changes.append((_utc(installation.started_at), _I.SENT))
    if changes[-1][1] is not current:
        last = installation.finished_at or installation.updated_at
        changes.append((_utc(last), current))
    # Clocks of different writers may disagree by a little; a device never moves back in time.
    ordered = [changes[0]]
    for at, state in changes[1:]:
        ordered.append((max(at, ordered[-1][0]), state))
    return ordered


def rollout_timeline(ctx: Context, campaign_id: str, *, now: datetime | None = None) -> RolloutTimeline:
    """The campaign's devices per installation state over time; NotFound for an unknown campaign."""
    with ctx.session() as session:
        repository = CampaignRepository(session)
        campaign = repository.campaign(campaign_id)
        installations = repository.installations(campaign_id)
        under_way = CampaignState(campaign.state) in ACTIVE_CAMPAIGN_STATES
        # By time, then rollout order, then each device's own order of changes made at one moment.
        events = sorted(
            (
                (at, order, step, endpoint, state)
                for order, endpoint in enumerate(campaign.plan["targets"])
                for step, (at, state) in enumerate(_changes(campaign, installations[endpoint]))
            ),
            key=lambda event: event[:3],
        )
    standing: dict[str, InstallationState] = {}
    times: list[datetime] = []
    moments: list[Counter[InstallationState]] = []
    for at, group in groupby(events, key=lambda event: event[0]):
        for _, _, _, endpoint, state in group:
            standing[endpoint] = state
        times.append(at)
        moments.append(Counter(standing.values()))
    reading = now or datetime.now(UTC)
    under_way = under_way or any(state in IN_FLIGHT_INSTALLATION_STATES for state in standing.values())
    if moments and under_way and reading > times[-1]:
        times.append(reading)
        moments.append(moments[-1])
    passed = {state for moment in moments for state in moment}
    states = [state for state in InstallationState if state in passed]
    return RolloutTimeline(
        campaign=campaign_id,
        devices=len(installations),
        states=[state.value for state in states],
        times=times,
        counts={state.value: [moment[state] for moment in moments] for state in states},
    )
