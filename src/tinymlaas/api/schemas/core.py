"""Request and response bodies: ``XCreate`` in, ``XPublic`` out, ``XsPublic`` for a page of a list.

Fields mirror the service views (the dicts the CLI's ``--json`` prints), so both adapters show the same
thing; nested reports whose shape a device or a runtime decides stay free-form objects.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from tinymlaas.api.schemas.variants import VariantPublic
from tinymlaas.services.campaigns import CampaignView, InstallationView
from tinymlaas.services.datasets import FieldLabels, ScalingMethod
from tinymlaas.services.fleet import DeviceDetail, DeviceView
from tinymlaas.services.models import ModelDetail
from tinymlaas.services.views import ModelSummary

__all__ = [
    "BoardPublic",
    "BoardsPublic",
    "CampaignCreate",
    "CampaignPublic",
    "CampaignsPublic",
    "DatasetCreate",
    "DatasetPublic",
    "DatasetUpdate",
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


_INPUT_SCALING = (
    "How models trained on the dataset scale their inputs, per feature or channel, learnt from the "
    "train split and applied inside every module: standardize, minmax or none."
)
_FIELD_LABELS = (
    "What becomes of the labels devices send: accept keeps them, unlabelled drops them "
    "(field samples are stored unlabelled, for people to label)."
)


class DatasetCreate(BaseModel):
    """A new dataset filled by a built-in generator."""

    name: str = Field(min_length=1, max_length=128, examples=["sine-demo"])
    generator: str = Field(examples=["sine"], description="sine, gestures or digits.")
    samples: int | None = Field(
        None,
        ge=1,
        le=5_000,
        description="Default: the generator's own. The request answers once every sample is stored "
        "(about 0.5 ms each), so it takes at most 5,000; import a file for more.",
    )
    seed: int | None = Field(None, description="Default: the server's configured seed.")
    field_labels: FieldLabels = Field(FieldLabels.ACCEPT, description=_FIELD_LABELS)


class DatasetUpdate(BaseModel):
    """What can change of a dataset after it was made; at least one field."""

    field_labels: FieldLabels | None = Field(None, description=_FIELD_LABELS)
    input_scaling: ScalingMethod | None = Field(None, description=_INPUT_SCALING)

    @model_validator(mode="after")
    def _changes_something(self) -> DatasetUpdate:
        if self.field_labels is None and self.input_scaling is None:
            raise ValueError("give field_labels or input_scaling")
        return self


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
    field_labels: FieldLabels = Field(description=_FIELD_LABELS)
    input_scaling: ScalingMethod = Field(description=_INPUT_SCALING)
    label_counts: dict[str, int]
    snapshots: list[dict[str, Any]]


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class ModelPublic(ModelSummary):
    """A model version, as the service gives it."""


class ModelDetailPublic(ModelDetail):
    """A model with its run, variants and modules, as the service gives it."""

    variants: list[VariantPublic] = Field(description="Oldest first.")


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int


class DevicePublic(DeviceView):
    """A device as it last reported, as the service gives it."""


class DeviceDetailPublic(DeviceDetail):
    """A device with its latest events, as the service gives it."""


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
    allow_degraded: bool = Field(
        False,
        description="Deploy a module whose accuracy as shipped is worse than its float model's beyond "
        "the allowed drop (the variant's `degraded`); refused with 422 without it.",
    )


class InstallationPublic(InstallationView):
    """One target's installation, as the service reports it."""


class CampaignPublic(CampaignView):
    """A campaign, as the service reports it, verdicts included."""

    installations: list[InstallationPublic]


class CampaignsPublic(BaseModel):
    data: list[CampaignPublic]
    count: int
