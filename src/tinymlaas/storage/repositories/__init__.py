"""Repositories: the only code that queries the tables, one class per aggregate."""

from tinymlaas.storage.repositories.campaigns import CampaignRepository
from tinymlaas.storage.repositories.datasets import DatasetRepository, Member, SampleQuery
from tinymlaas.storage.repositories.devices import DeviceRepository
from tinymlaas.storage.repositories.jobs import JobRepository
from tinymlaas.storage.repositories.models import ModelRepository
from tinymlaas.storage.repositories.tokens import TokenRepository

__all__ = [
    "CampaignRepository",
    "DatasetRepository",
    "DeviceRepository",
    "JobRepository",
    "Member",
    "ModelRepository",
    "SampleQuery",
    "TokenRepository",
]
