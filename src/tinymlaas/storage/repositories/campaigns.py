"""The campaign aggregate: a rollout and the installation of each of its target devices."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinymlaas.errors import NotFound
from tinymlaas.storage.tables import CampaignRow, InstallationRow

__all__ = ["CampaignRepository"]


class CampaignRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, campaign: CampaignRow, installations: Iterable[InstallationRow]) -> CampaignRow:
        self.session.add(campaign)
        self.session.flush()  # the campaign row first: installations reference it
        self.session.add_all(list(installations))
        self.session.flush()
        return campaign

    def campaign(self, campaign_id: str) -> CampaignRow:
        """The campaign, its row locked until the transaction ends where the database can (PostgreSQL).

        Every change to a campaign reads it, applies a step to the value and writes it back; the lock
        makes a second writer wait and then read what the first wrote, instead of overwriting it with
        a step taken from an older state. SQLite needs none: it lets one writer in at a time.
        """
        row = self.session.get(CampaignRow, campaign_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise NotFound(f"no campaign {campaign_id!r} (see 'campaigns list')")
        return row

    def campaigns(
        self, states: Iterable[str] | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[CampaignRow]:
        """Newest first (id breaks ties so pages never overlap), optionally only those in ``states``."""
        query = select(CampaignRow).order_by(CampaignRow.created_at.desc(), CampaignRow.id)
        if states is not None:
            query = query.where(CampaignRow.state.in_(list(states)))
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def campaigns_of_modules(self, module_ids: Iterable[str]) -> list[CampaignRow]:
        """The campaigns that sent any of these modules, newest first."""
        query = (
            select(CampaignRow)
            .where(CampaignRow.module_id.in_(list(module_ids)))
            .order_by(CampaignRow.created_at.desc(), CampaignRow.id)
        )
        return list(self.session.scalars(query))

    def count(self, states: Iterable[str] | None = None) -> int:
        """How many campaigns ``campaigns`` would list without paging."""
        query = select(func.count()).select_from(CampaignRow)
        if states is not None:
            query = query.where(CampaignRow.state.in_(list(states)))
        return self.session.scalar(query) or 0

    def installations(self, campaign_id: str) -> dict[str, InstallationRow]:
        """Endpoint -> installation row of one campaign."""
        rows = self.session.scalars(select(InstallationRow).where(InstallationRow.campaign_id == campaign_id))
        return {row.endpoint: row for row in rows}

    def installations_to_alert(
        self, states: Iterable[str], resolving: str
    ) -> list[tuple[str, InstallationRow]]:
        """(campaign id, installation) for each installation in ``states`` and each in ``resolving``
        on a device that has one in ``states``, newest campaign first: what fleet alerts are worked out
        from, without reading the installations of devices that never needed attention."""
        states = list(states)
        alerting = select(InstallationRow.endpoint).where(InstallationRow.state.in_(states))
        query = (
            select(InstallationRow.campaign_id, InstallationRow)
            .join(CampaignRow, InstallationRow.campaign_id == CampaignRow.id)
            .where(
                InstallationRow.state.in_(states)
                | ((InstallationRow.state == resolving) & InstallationRow.endpoint.in_(alerting))
            )
            .order_by(CampaignRow.created_at.desc(), CampaignRow.id, InstallationRow.endpoint)
        )
        return [(campaign_id, row) for campaign_id, row in self.session.execute(query)]

    def campaigns_with_installations_in(self, states: Iterable[str]) -> list[str]:
        """Ids of campaigns where some device is in one of ``states``, whatever the campaign's own state."""
        query = select(InstallationRow.campaign_id).where(InstallationRow.state.in_(list(states))).distinct()
        return list(self.session.scalars(query))

    def installations_of(self, endpoint: str) -> list[tuple[InstallationRow, CampaignRow]]:
        """One device's installations with their campaigns, newest campaign first."""
        query = (
            select(InstallationRow, CampaignRow)
            .join(CampaignRow, InstallationRow.campaign_id == CampaignRow.id)
            .where(InstallationRow.endpoint == endpoint)
            .order_by(CampaignRow.created_at.desc(), CampaignRow.id)
        )
        return [(installation, campaign) for installation, campaign in self.session.execute(query)]
