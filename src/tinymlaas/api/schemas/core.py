"""Request and response bodies: ``XCreate`` in, ``XPublic`` out, ``XsPublic`` for a page of a list.

Fields mirror the service views (the dicts the CLI's ``--json`` prints), so both adapters show the same
thing; nested reports whose shape a device or a runtime decides stay free-form objects.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "BoardPublic",
    "BoardsPublic",
    "CampaignCreate",
    "CampaignPublic",
    "CampaignsPublic",
    "DatasetCreate",
    "DatasetPublic",
    "DatasetsPublic",
    "DeviceDetailPublic",
    "DevicePublic",
    "DevicesPublic",
    "InstallationPublic",
    "ModelDetailPublic",
    "ModelPublic",
    "ModelsPublic",
    "Problem",
]


class Problem(BaseModel):
    """RFC 9457 problem details; validation problems add ``errors``, one per field."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


class BoardPublic(BaseModel):
    id: str
    name: str
    board_class: str
    soc: str
    core: str
    clock_mhz: int
    flash_bytes: int
    ram_bytes: int
    usable_flash_bytes: int
    usable_ram_bytes: int
    runtimes: list[str]
    accelerator: str | None
    transports: list[str]
    sensors: list[str]
    sources: dict[str, str] = Field(description="Field name -> where the figure comes from.")
    notes: str


class BoardsPublic(BaseModel):
    data: list[BoardPublic]
    count: int


class DatasetCreate(BaseModel):
    """A new dataset filled by a built-in generator."""

    name: str = Field(min_length=1, max_length=128, examples=["sine-demo"])
    generator: str = Field(examples=["sine"], description="sine, gestures or digits.")
    samples: int | None = Field(None, ge=1, le=100_000, description="Default: the generator's own.")
    seed: int | None = Field(None, description="Default: the server's configured seed.")


class DatasetPublic(BaseModel):
    id: str
    name: str
    task: str
    kind: str
    input_shape: list[int]
    labels: list[str]
    description: str
    samples: int
    unlabelled: int
    collected: int = Field(description="Samples uploaded by devices.")
    label_counts: dict[str, int]
    snapshots: list[dict[str, Any]]


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class ModelPublic(BaseModel):
    id: str
    name: str
    version: int
    origin: str
    arch: str
    params: int
    training_run: str | None
    float_metric: dict[str, Any] | None
    source_file: str
    created_at: str


class ModelDetailPublic(ModelPublic):
    spec: dict[str, Any] | None
    run: dict[str, Any] | None
    variants: list[dict[str, Any]]
    modules: list[dict[str, Any]]


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int


class DevicePublic(BaseModel):
    endpoint: str
    id: str
    board: str | None
    online: bool
    address: str | None
    lifetime_s: int | None
    lwm2m_version: str | None
    objects: list[str]
    registered_at: str | None
    last_seen: str | None
    model: str | None
    last_result: str | None
    capabilities: dict[str, Any]
    identity: dict[str, Any]
    installed: dict[str, Any]
    telemetry: dict[str, Any]
    tags: list[str]


class DeviceDetailPublic(DevicePublic):
    events: list[dict[str, Any]] = Field(description="Latest first.")


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int


class CampaignCreate(BaseModel):
    """A staged rollout of one compiled module to the devices a selector names."""

    module: str = Field(examples=["mod_3f9a2c1b7d04"])
    selector: str = Field(
        examples=["board:pico"], description="board:ID, tag:NAME, or endpoints separated by commas."
    )
    stages: list[int] = Field([100], min_length=1, description="Cumulative percentages, ending at 100.")
    max_failures: int | float = Field(0, description="A count, or a fraction of the targets.")


class InstallationPublic(BaseModel):
    endpoint: str
    state: str
    update_result: int | None
    update_result_text: str | None
    detail: dict[str, Any]
    started_at: str | None
    finished_at: str | None


class CampaignPublic(BaseModel):
    id: str
    module: str
    selector: str
    state: str
    stage: int = Field(description="1-based.")
    stages: list[int]
    max_failures: int | float
    targets: int
    done: bool
    percent_done: float
    counts: dict[str, int]
    created_at: str | None
    updated_at: str | None
    installations: list[InstallationPublic]


class CampaignsPublic(BaseModel):
    data: list[CampaignPublic]
    count: int
