"""Repositories: the only code that queries the tables, one class per aggregate."""

from tinymlaas.storage.repositories.campaigns import CampaignRepository
from tinymlaas.storage.repositories.datasets import DatasetRepository, Member
from tinymlaas.storage.repositories.devices import DeviceRepository
from tinymlaas.storage.repositories.models import ModelRepository

__all__ = ["CampaignRepository", "DatasetRepository", "DeviceRepository", "Member", "ModelRepository"]
