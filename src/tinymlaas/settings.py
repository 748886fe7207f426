"""One settings object for the whole product.

Every command and service reads its configuration from here, so a value can be set the same way
everywhere: a command-line flag, a ``TINYMLAAS_*`` environment variable, or the default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


LOCAL_DATA_DIR = ".data"  # what `make demo` and `make test` use, in the repository


def _default_data_dir() -> Path:
    """``./.data`` when the current directory has one (the store ``make demo`` fills), else the user's.

    A person who ran the demo and then types a command in the same directory sees the demo's devices
    and models rather than an empty store of the same name elsewhere.
    """
    local = Path.cwd() / LOCAL_DATA_DIR
    if local.is_dir():
        return local
    return Path.home() / ".local" / "share" / "tinymlaas"


class Settings(BaseSettings):
    """Where state lives and how the lifecycle steps behave by default."""

    model_config = SettingsConfigDict(env_prefix="TINYMLAAS_", frozen=True)

    data_dir: Path = Field(default_factory=_default_data_dir)
    # Any SQLAlchemy URL; empty means SQLite inside data_dir (the embedded default). For several
    # servers or job workers on several machines: ``postgresql+psycopg://user:password@host/db``.
    database_url: str = ""
    # Where blobs (samples, models, packages) live: empty means files under data_dir; ``s3://bucket``
    # or ``s3://bucket/prefix`` an S3-compatible object store every worker can reach. Credentials
    # come from the usual AWS variables or files; ``s3_endpoint_url`` names a server other than AWS.
    blob_url: str = ""
    s3_endpoint_url: str = ""
    # What runs background jobs: ``local`` worker processes on this machine, or ``ray`` tasks on a
    # Ray cluster at ``ray_address`` (empty starts a Ray instance on this machine).
    executor: Literal["local", "ray"] = "local"
    ray_address: str = ""
    # Extra directories of board files (TOML) that add to or override the built-in catalog.
    boards_dirs: tuple[Path, ...] = ()
    # Seed for splits and training, so a rerun on the same snapshot gives the same model.
    seed: int = 1234
    # Largest file an importer accepts, in bytes (protects the store from runaway uploads).
    max_import_bytes: int = 512 * 1024 * 1024
    # Largest file accepted over HTTP (dataset imports, samples, models), in bytes; more gets 413.
    max_upload_bytes: int = 64 * 1024 * 1024
    # Largest HTTP body that is not a multipart upload (JSON, form fields), in bytes; more gets 413.
    # Checked as bytes arrive, so an oversized body is never held in memory or parsed.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Bounds on one multipart form, so a flood of tiny parts cannot cost more than its size suggests:
    # files in it, other fields in it, and bytes in one of those other fields.
    max_form_files: int = Field(default=4, ge=1)
    max_form_fields: int = Field(default=256, ge=1)
    max_form_part_bytes: int = Field(default=64 * 1024, ge=1)
    # Requests one API token may make: a bucket of ``api_rate_burst`` refilled at ``api_rate_per_s``;
    # an empty bucket is answered 429 with Retry-After. Generous, to stop runaway clients only.
    api_rate_per_s: float = Field(default=100.0, gt=0)
    api_rate_burst: int = Field(default=2000, ge=1)
    # Upper bound for the tensor-arena search, in bytes.
    arena_search_max_bytes: int = 64 * 1024 * 1024
    # A variant whose accuracy as shipped is this many points below the float model's (or whose
    # interval no longer overlaps it) is ``degraded``: deploy refuses it unless allowed explicitly.
    degraded_threshold_points: float = Field(default=2.0, ge=0)
    # Post-training int8 losing more than this many points triggers quantization-aware training.
    qat_trigger_points: float = Field(default=1.0, ge=0)
    # A test split smaller than this decides the int8 drop by too few samples: the drop is then
    # cross-validated over ``crossval_folds`` folds of the whole snapshot (0 turns it off).
    crossval_below_test_samples: int = Field(default=100, ge=0)
    crossval_folds: int = Field(default=5, ge=0, le=20)
    # Where ``serve`` listens for LwM2M devices (CoAP over UDP). Loopback by default: exposing the
    # server to a network is a deliberate choice (``0.0.0.0`` or an interface address).
    coap_host: str = "127.0.0.1"
    coaps_port: int = 5684  # IANA "coaps": DTLS-PSK, how provisioned devices talk to the server
    coap_port: int = 5683  # IANA "coap": plain CoAP, opened only with ``allow_nosec``
    # Where ``serve`` answers the REST API; loopback by default for the same reason as CoAP.
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Background jobs (training, squeezing, compiling) ``serve`` runs at once, each in its own process.
    job_workers: int = Field(default=2, ge=1)
    # Several ``serve`` processes may share one store; the one holding the campaign lease drives
    # campaigns and pipelines, renewing it every pass. When its holder stops renewing (killed, cut off),
    # another takes the lease over after this many seconds.
    campaign_lease_s: float = Field(default=10.0, gt=0, le=3600)
    # Development only: take LwM2M requests from devices over plain CoAP (NoSec), where the endpoint name
    # a device claims is all there is to go by. Off, a device must prove who it is over DTLS.
    allow_nosec: bool = False
    # Sample uploads one device may make, per second on average and in one burst (a token bucket per
    # device); more are refused with 4.29 so no single device can flood a dataset.
    upload_rate_per_s: float = Field(default=10.0, gt=0)
    upload_burst: int = Field(default=60, ge=1)
    # Device events and telemetry samples older than this are deleted by the running server.
    event_retention_days: int = Field(default=30, ge=1)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tinymlaas.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def keys_dir(self) -> Path:
        """The package signing key pair; agents trust the public half."""
        return self.data_dir / "keys"

    @property
    def uploads_dir(self) -> Path:
        """Where HTTP uploads are spooled while they are checked; each file is removed once handled."""
        return self.data_dir / "uploads"

    @property
    def demo_fleet_dir(self) -> Path:
        """The state directories of the emulated devices ``demo`` starts."""
        return self.data_dir / "demo-fleet"
