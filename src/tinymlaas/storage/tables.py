"""SQLAlchemy 2 tables. Portable SQL only (SQLite by default, any SQLAlchemy URL works).

Lineage is explicit: snapshot -> training run -> model -> variant -> module, each row naming the
row it came from. Devices hold what they last reported; live registrations stay in the LwM2M server's
registration store, so a device row outlives the process that saw it register. A campaign and its
installations live only here, so a restarted server carries on where the last one stopped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AlertAckRow",
    "ApiTokenRow",
    "AuditEventRow",
    "Base",
    "CampaignRow",
    "CollectedSampleRow",
    "DashboardSessionRow",
    "DatasetRow",
    "DeviceCredentialRow",
    "DeviceEventRow",
    "DeviceRow",
    "InstallationRow",
    "JobRow",
    "ModelRow",
    "ModuleRow",
    "PipelineRow",
    "SampleRow",
    "SearchRow",
    "SnapshotRow",
    "SnapshotSampleRow",
    "SplitPlanRow",
    "TrainingRunRow",
    "VariantRow",
]


def _now() -> datetime:
    return datetime.now(UTC)


# The key of an append-only history (device events, the audit trail): 64-bit where the database has
# a separate type for it, since a large fleet outgrows PostgreSQL's 32-bit INTEGER within months even
# though old rows are pruned; SQLite keeps INTEGER, the only type it numbers rows with by itself.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        bytes: LargeBinary,
    }


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    task: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    input_shape: Mapped[list[Any]]
    labels: Mapped[list[Any]]
    description: Mapped[str] = mapped_column(String(1024), default="")
    # What devices may say about their samples: "accept" keeps a label a device sends, "unlabelled"
    # stores field data without one, so labels in that dataset come from people only.
    field_labels: Mapped[str] = mapped_column(String(16), default="accept", server_default="accept")
    # How models trained on this dataset scale their inputs (data.scaling.ScalingMethod).
    input_scaling: Mapped[str] = mapped_column(
        String(16), default="standardize", server_default="standardize"
    )
    # Generated for a dry run: kept out of every production list, with all that is made from it.
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SampleRow(Base):
    __tablename__ = "samples"
    __table_args__ = (UniqueConstraint("dataset_id", "blob", name="uq_sample_content"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    blob: Mapped[str] = mapped_column(String(64))  # sha256 of the .npy bytes in the blob store
    label: Mapped[str | None] = mapped_column(String(128))
    target: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class CollectedSampleRow(Base):
    """A sample a device uploaded, under the id the device gave it.

    The key (dataset, sample key) is what makes an upload idempotent: a device that resends a sample it
    never saw acknowledged finds its key here and nothing is stored twice. ``sample_id`` is the stored
    sample, which an identical sample stored earlier may already have been.
    """

    __tablename__ = "collected_samples"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    sample_key: Mapped[str] = mapped_column(String(128), primary_key=True)  # the device's id for it
    sample_id: Mapped[str] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(128), index=True)  # LwM2M endpoint name, as sent
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the device's clock
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SnapshotRow(Base):
    """An immutable dataset version; its id is the content hash of spec + members + labels."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    spec: Mapped[dict[str, Any]]
    sample_count: Mapped[int] = mapped_column(Integer)
    label_counts: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SnapshotSampleRow(Base):
    """A member of a snapshot, with the label it had then (later relabelling does not change it)."""

    __tablename__ = "snapshot_samples"

    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True)
    blob: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str | None] = mapped_column(String(128))
    target: Mapped[float | None] = mapped_column(Float)


class TrainingRunRow(Base):
    __tablename__ = "training_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id"), index=True)
    recipe: Mapped[dict[str, Any]]
    split_counts: Mapped[dict[str, Any]]
    history: Mapped[dict[str, Any]]
    metric_name: Mapped[str] = mapped_column(String(32))
    metric_value: Mapped[float] = mapped_column(Float)
    epochs_run: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    # Classification only: {"labels": [...], "counts": [[...]]}, rows the true class, columns the
    # predicted one, counted on the test split. None for regression and for runs that predate it.
    confusion_matrix: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ModelRow(Base):
    __tablename__ = "models"
    # A sandbox model numbers its versions apart, so a dry run never takes a production version.
    __table_args__ = (UniqueConstraint("name", "sandbox", "version", name="uq_model_version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))  # "trained" | "imported"
    training_run_id: Mapped[str | None] = mapped_column(ForeignKey("training_runs.id"), index=True)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"), index=True)
    keras_blob: Mapped[str | None] = mapped_column(String(64))  # absent for an imported .tflite
    arch: Mapped[str] = mapped_column(String(64))
    params: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    float_metric: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # data.scaling.InputScaling as a dict; None: inputs go to the model as measured.
    input_scaling: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # services.crossval.CrossValidation as a dict, for a snapshot whose test split is small.
    cross_validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_file: Mapped[str] = mapped_column(String(1024), default="")
    # Trained by a dry run on a sandbox dataset; so are its variants and modules, never deployed.
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    # Read-only paths for loading a model's lineage in one go; rows are added through their own ids.
    run: Mapped[TrainingRunRow | None] = relationship(viewonly=True)
    variants: Mapped[list[VariantRow]] = relationship(viewonly=True, order_by="VariantRow.created_at")


class VariantRow(Base):
    __tablename__ = "variants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    quantization: Mapped[str] = mapped_column(String(16))
    tflite_blob: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    info: Mapped[dict[str, Any]]
    arena_bytes: Mapped[int | None] = mapped_column(Integer)
    arena_tries: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]]  # runtime -> {"name", "value"} on the test split
    runtime_errors: Mapped[dict[str, Any]]  # runtime -> reason it cannot run
    selftests: Mapped[dict[str, Any]]  # runtime -> self-test vectors
    method: Mapped[str | None] = mapped_column(String(16))  # int8: "ptq" or "qat"
    # int8: every quantization attempt with its metric and why the kept one was kept.
    quantization_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evaluated_on: Mapped[str | None] = mapped_column(ForeignKey("snapshots.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    modules: Mapped[list[ModuleRow]] = relationship(viewonly=True, order_by="ModuleRow.created_at")


class ModuleRow(Base):
    __tablename__ = "modules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    variant_id: Mapped[str] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"), index=True)
    board_id: Mapped[str] = mapped_column(String(64), index=True)
    compiler: Mapped[str] = mapped_column(String(64))
    runtime: Mapped[str] = mapped_column(String(32))
    package_blob: Mapped[str | None] = mapped_column(String(64))  # None when compilation was refused
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    flash_bytes: Mapped[int | None] = mapped_column(Integer)
    ram_bytes: Mapped[int | None] = mapped_column(Integer)
    fits: Mapped[bool]
    reasons: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class DeviceRow(Base):
    """A device the server has seen, with the latest of what it reported about itself.

    The JSON columns hold the device's own words, never catalog figures: ``capabilities`` from the
    TinyML Runtime object (26241), ``identity`` from Device (3), ``installed`` from Software Management
    (9) and ``telemetry`` from the runtime's inference counters. ``{}`` means not reported (yet).
    """

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(128), unique=True)  # LwM2M endpoint client name
    board_id: Mapped[str | None] = mapped_column(String(64), index=True)  # as reported, may be unknown
    registration_id: Mapped[str | None] = mapped_column(String(32))  # the latest one, kept when offline
    online: Mapped[bool] = mapped_column(Boolean)
    # The server process the device registered with last (``ServerRow.id``); its presence follows it.
    server_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(256))  # the transport's peer URI (coap://host:port)
    lifetime: Mapped[int | None] = mapped_column(Integer)  # seconds
    lwm2m_version: Mapped[str | None] = mapped_column(String(8))
    objects: Mapped[list[Any]]  # object instance paths from the registration, e.g. "/3/0"
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    capabilities: Mapped[dict[str, Any]]
    identity: Mapped[dict[str, Any]]
    installed: Mapped[dict[str, Any]]
    telemetry: Mapped[dict[str, Any]]
    tags: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class DeviceEventRow(Base):
    """One thing that happened to a device (registered, went offline, a read failed, ...), for history."""

    __tablename__ = "device_events"

    # An integer key keeps events in the order they were recorded, even within one clock tick.
    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(ForeignKey("devices.endpoint", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]


class CampaignRow(Base):
    """A staged rollout of one module; ``plan`` holds stages, max_failures and the ordered targets."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    module_id: Mapped[str] = mapped_column(ForeignKey("modules.id"), index=True)
    selector: Mapped[str] = mapped_column(String(1024))
    plan: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    current_stage: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class InstallationRow(Base):
    """One device in one campaign. ``updated_at`` is its last progress, which the stall timeout measures.

    ``state_changes`` lists every state the installation entered with when, oldest first
    (``{"state": "sent", "at": ISO 8601}``), so a campaign's rollout can be replayed over time; rows
    stored before it was kept hold ``[]``.
    """

    __tablename__ = "installations"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    update_result: Mapped[int | None] = mapped_column(Integer)  # object 9 resource 9, as last read
    detail: Mapped[dict[str, Any]]  # gate reasons, status reason, or why it timed out
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    state_changes: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")


class JobRow(Base):
    """A background job. Workers in other processes write progress, log and outcome here themselves,
    so any process (server, CLI, dashboard) sees the same state and a restarted server finds it."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0.0 to 1.0
    message: Mapped[str] = mapped_column(String(1024), default="")  # the latest progress line
    # Where the job stands, as data: the lifecycle phase it runs (a single-step job runs one), the
    # pipeline step that phase works on, and the last epoch trained of those planned.
    phase: Mapped[str | None] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(16))
    epoch: Mapped[int | None] = mapped_column(Integer)
    epochs: Mapped[int | None] = mapped_column(Integer)
    # Per figure Keras names (loss, val_loss, accuracy …), its value at each epoch trained so far, so a
    # page draws the curves while the job runs instead of parsing them out of the log.
    history: Mapped[dict[str, list[float]] | None] = mapped_column(JSON)
    log: Mapped[str] = mapped_column(Text, default="")  # newline-terminated lines, appended
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(4096))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ApiTokenRow(Base):
    """A bearer token for the REST API. Only the sha256 of its secret is kept: the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # hex digest
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: never


class DeviceCredentialRow(Base):
    """A provisioned device: the DTLS PSK identity and key bound to one LwM2M endpoint name.

    The key is kept as is because DTLS-PSK needs the same secret on both ends; it never leaves the
    server after provisioning printed it once. ``revoked_at`` ends the device's access without losing
    which endpoint the identity belonged to.
    """

    __tablename__ = "device_credentials"

    endpoint: Mapped[str] = mapped_column(String(128), primary_key=True)
    identity: Mapped[str] = mapped_column(String(128), unique=True)
    psk: Mapped[bytes] = mapped_column(LargeBinary)
    board_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DashboardSessionRow(Base):
    """A dashboard login, kept server-side so logout and token revocation end it at once.

    ``id`` is the sha256 of the secret in the person's cookie; the secret itself is not stored.
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEventRow(Base):
    """Who changed what, when: one row per state-changing request, whoever made it."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    actor: Mapped[str] = mapped_column(String(160))  # "token <name> (<id>)", "device <endpoint>", "cli"
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    detail: Mapped[dict[str, Any]]


class AlertAckRow(Base):
    """Someone acknowledged a fleet alert: who, and when.

    Alerts are worked out from reports, not stored; ``alert_id`` is the id an alert keeps for as long
    as the same occurrence stands (``services.fleet_health``), so an acknowledgement holds while the
    alert is active and after it resolves, and a new occurrence is a new alert to acknowledge.
    """

    __tablename__ = "alert_acks"

    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(128), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(32))
    acknowledged_by: Mapped[str] = mapped_column(String(160))  # the audit trail's actor
    acknowledged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SplitPlanRow(Base):
    """Every cut of one int8 variant between a device and the next node, costed, and the choice.

    ``plan`` is the planner's result as JSON (each candidate with its figures and their sources), kept
    because planning runs the model in QEMU and LiteRT. Building a cut adds one model per part
    (``head_model_id``, ``tail_model_id``, each with its variant) and records in ``build`` the cut,
    the parts' modules and the end-to-end accuracy measured through them.
    """

    __tablename__ = "split_plans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[str] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    chain: Mapped[str] = mapped_column(String(200))  # "nano33ble:ble:rpi4"
    objective: Mapped[str] = mapped_column(String(16))
    chosen: Mapped[int | None] = mapped_column(Integer)  # the chosen cut's index; None: no cut fits
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    head_model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    tail_model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    build: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class PipelineRow(Base):
    """A declared graph of stages on nodes, and what applying it deployed and configured.

    ``spec`` is the declaration as validated (``deploy.pipelines``); ``applied`` holds, per stage, the
    campaign that installs its module and the per-hop keys written to its nodes (secrets: never shown).
    """

    __tablename__ = "pipelines"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # deploy.pipelines.PipelineState
    applied: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SearchRow(Base):
    """One constraint-aware model search: what it was asked, every trial's config and figures, and
    the Pareto front per board (``training.search_space``).

    ``trials`` and ``fronts`` are kept whole as JSON because the trials ran in Ray and are gone; the
    front's models are ordinary models (named in ``fronts``), so they compile and deploy as usual.
    """

    __tablename__ = "searches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(128), index=True)
    snapshot_id: Mapped[str] = mapped_column(String(64))
    arch: Mapped[str] = mapped_column(String(64))
    boards: Mapped[list[Any]] = mapped_column(JSON)
    budget: Mapped[dict[str, Any]] = mapped_column(JSON)  # max_ram, max_flash, max_latency_ms
    trials_planned: Mapped[int] = mapped_column(Integer)
    workers: Mapped[int] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # training.search_space.SearchState
    trials: Mapped[list[Any]] = mapped_column(JSON, default=list)
    fronts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Counts, the closest trials and the sentence when nothing met the budget, wall time.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServerRow(Base):
    """A server process on this store, while it runs: ``seen_at`` is renewed every few seconds.

    The devices registered with a server are online only while it lives: one that stops sets its own
    devices offline, and the others set offline the devices of a server no longer seen (killed).
    """

    __tablename__ = "servers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeaseRow(Base):
    """A named lease several server processes on one store contend for; the holder does the work.

    ``expires_at`` is when another process may take it over unless the holder renews it first, so a
    killed holder is replaced after at most one lease term and no two processes drive the same thing.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
