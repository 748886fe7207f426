"""Repositories: the only code that queries the tables, one class per aggregate."""

from tinymlaas.storage.repositories.alerts import AlertAckRepository
from tinymlaas.storage.repositories.audit import AuditRepository
from tinymlaas.storage.repositories.blobs import BlobReferenceRepository
from tinymlaas.storage.repositories.campaigns import CampaignRepository
from tinymlaas.storage.repositories.credentials import CredentialRepository
from tinymlaas.storage.repositories.datasets import DatasetRepository, Member, SamplePoint, SampleQuery
from tinymlaas.storage.repositories.devices import DeviceRepository
from tinymlaas.storage.repositories.jobs import JobRepository
from tinymlaas.storage.repositories.leases import LeaseRepository, ServerRepository
from tinymlaas.storage.repositories.models import ModelRepository
from tinymlaas.storage.repositories.pipelines import PipelineRepository
from tinymlaas.storage.repositories.sandbox import Removed, SandboxRepository
from tinymlaas.storage.repositories.searches import SearchRepository
from tinymlaas.storage.repositories.sessions import DashboardSessionRepository
from tinymlaas.storage.repositories.splits import SplitPlanRepository
from tinymlaas.storage.repositories.tokens import TokenRepository

__all__ = [
    "AlertAckRepository",
    "AuditRepository",
    "BlobReferenceRepository",
    "CampaignRepository",
    "CredentialRepository",
    "DashboardSessionRepository",
    "DatasetRepository",
    "DeviceRepository",
    "JobRepository",
    "LeaseRepository",
    "Member",
    "ModelRepository",
    "PipelineRepository",
    "Removed",
    "SamplePoint",
    "SampleQuery",
    "SandboxRepository",
    "SearchRepository",
    "ServerRepository",
    "SplitPlanRepository",
    "TokenRepository",
]
