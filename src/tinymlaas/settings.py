"""One settings object for the whole product.

Every command and service reads its configuration from here, so a value can be set the same way
everywhere: a command-line flag, a ``TINYMLAAS_*`` environment variable, or the default.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "tinymlaas"


class Settings(BaseSettings):
    """Where state lives and how the lifecycle steps behave by default."""

    model_config = SettingsConfigDict(env_prefix="TINYMLAAS_", frozen=True)

    data_dir: Path = Field(default_factory=_default_data_dir)
    # Any SQLAlchemy URL; empty means SQLite inside data_dir (the embedded default).
    database_url: str = ""
    # Extra directories of board files (TOML) that add to or override the built-in catalog.
    boards_dirs: tuple[Path, ...] = ()
    # Seed for splits and training, so a rerun on the same snapshot gives the same model.
    seed: int = 1234
    # Largest file an importer accepts, in bytes (protects the store from runaway uploads).
    max_import_bytes: int = 512 * 1024 * 1024
    # Largest file accepted over HTTP (dataset imports, samples, models), in bytes; more gets 413.
    max_upload_bytes: int = 64 * 1024 * 1024
    # Upper bound for the tensor-arena search, in bytes.
    arena_search_max_bytes: int = 64 * 1024 * 1024
    # Where ``serve`` listens for LwM2M devices (CoAP over UDP). Loopback by default: exposing the
    # server to a network is a deliberate choice (``0.0.0.0`` or an interface address).
    coap_host: str = "127.0.0.1"
    coap_port: int = 5683  # IANA "coap"
    # Where ``serve`` answers the REST API; loopback by default for the same reason as CoAP.
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Background jobs (training, squeezing, compiling) ``serve`` runs at once, each in its own process.
    job_workers: int = Field(default=2, ge=1)

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

    @property
    def session_key_file(self) -> Path:
        """The key dashboard session cookies are signed with; never leaves the server."""
        return self.data_dir / "dashboard-session.key"
