"""Compiled modules read back: listings, the fit report against the board, and the package download.

The fit report sets the figures recorded at compile time (flash and RAM the module needs) against the
board's usable flash and RAM from the catalog, one check per reason a module can be refused, so a
person sees which limit a module hits and by how much. The package a device gets is the module zip
signed with the server's key, byte for byte what a campaign sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tinymlaas.catalog.board import Board, RuntimeProfile
from tinymlaas.deploy.package import model_line, sign_package
from tinymlaas.deploy.signing import issue_sequence, load_or_create_signing_key
from tinymlaas.errors import Conflict, NotFound
from tinymlaas.services._reports import iso
from tinymlaas.services.context import Context
from tinymlaas.services.views import module_view
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModuleRow

__all__ = [
    "ModuleName",
    "fit_report",
    "list_modules",
    "module_download",
    "module_names",
    "modules_page",
    "show_module",
]


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def _listed(repo: ModelRepository, row: ModuleRow) -> dict[str, Any]:
    variant = repo.variant(row.variant_id)
    model = repo.model(variant.model_id)
    return {
        **module_view(row),
        "model": {"id": model.id, "name": model.name, "version": model.version},
        "quantization": variant.quantization,
        "created_at": iso(row.created_at),
        "sandbox": model.sandbox,
    }


def list_modules(ctx: Context, *, board: str | None = None, fits: bool | None = None) -> list[dict[str, Any]]:
    """Every compiled module of a production model, newest first, with the model and quantization it
    came from; a dry run's modules are reached by id only."""
    return modules_page(ctx, board=board, fits=fits)[0]


def modules_page(
    ctx: Context,
    *,
    board: str | None = None,
    fits: bool | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of ``list_modules`` and how many modules it lists in all.

    Filtered and paged in SQL, so a page looks up only its own modules' variants and models.
    """
    with ctx.session() as session:
        repo = ModelRepository(session)
        rows = repo.all_modules(board_id=board, fits=fits, limit=limit, offset=offset)
        return [_listed(repo, row) for row in rows], repo.count_modules(board_id=board, fits=fits)


def show_module(ctx: Context, module_id: str) -> dict[str, Any]:
    """One module with its manifest (None when compilation was refused)."""
    with ctx.session() as session:
        repo = ModelRepository(session)
        row = repo.module(module_id)
        return {**_listed(repo, row), "manifest": row.manifest}


@dataclass(frozen=True)
class ModuleName:
    """What a person calls a module: the model, its version, the variant's quantization and the board.

    A module id (``mod_d816a844bb08``) says nothing to someone choosing or following a rollout; the
    lineage it was built from does.
    """

    id: str
    model: str
    version: int
    quantization: str
    board: str

    @property
    def text(self) -> str:
        """``gestures v2 · int8 · pico``."""
        return f"{self.model} v{self.version} · {self.quantization} · {self.board}"


def module_names(ctx: Context, module_ids: Iterable[str]) -> dict[str, ModuleName]:
    """Module id -> its human name, for each of ``module_ids`` that is stored (each looked up once)."""
    names: dict[str, ModuleName] = {}
    with ctx.session() as session:
        repo = ModelRepository(session)
        for module_id in set(module_ids):
            try:
                module = repo.module(module_id)
            except NotFound:
                continue
            variant = repo.variant(module.variant_id)
            model = repo.model(variant.model_id)
            names[module_id] = ModuleName(
                module_id, model.name, model.version, variant.quantization, module.board_id
            )
    return names


def _check(name: str, passed: bool | None, reason: str, **figures: Any) -> dict[str, Any]:
    return {"check": name, "passed": passed, "reason": reason, **figures}


def _size_check(
    memory: str, needed: int | None, usable: int, board: Board, unmeasured: str
) -> dict[str, Any]:
    """Flash and RAM are judged alike; where compiling recorded no figure, ``passed`` is None."""
    return _check(
        memory.lower(),
        None if needed is None else needed <= usable,
        unmeasured
        if needed is None
        else f"needs {_kib(needed)} of {memory}, {board.name} leaves {_kib(usable)} for a model",
        needed_bytes=needed,
        usable_bytes=usable,
    )


def _checks(
    row: ModuleRow,
    board: Board,
    runtime: RuntimeProfile,
    ops: list[str],
    *,
    runtime_error: str | None,
    ran: bool,
) -> list[dict[str, Any]]:
    missing = runtime.unsupported(tuple(ops))
    checks = [
        _check(
            "runtime",
            runtime.id in board.runtimes,
            f"{board.name} runs {runtime.id}"
            if runtime.id in board.runtimes
            else f"{board.name} does not run {runtime.id} (it runs {', '.join(board.runtimes)})",
        ),
        _check(
            "ops",
            not missing,
            f"{runtime.name} does not implement {', '.join(missing)}"
            if missing
            else f"{runtime.name} implements all {len(ops)} ops ({', '.join(ops)})",
        ),
        _check(
            "runs",
            False if runtime_error else ran or None,
            runtime_error
            or (
                f"the model ran in {runtime.name} when the variant was measured"
                if ran
                else f"the model was never run in {runtime.name}"
            ),
        ),
        _size_check("flash", row.flash_bytes, board.usable_flash_bytes, board, "flash use was not recorded"),
        _size_check(
            "RAM",
            row.ram_bytes,
            board.usable_ram_bytes,
            board,
            "RAM use is unknown: no tensor arena was measured for this runtime",
        ),
    ]
    refusals = [r for r in row.reasons if "compiler refused" in r]
    checks.append(
        _check(
            "package",
            row.package_blob is not None,
            f"the {row.compiler} compiler built a package"
            if row.package_blob is not None
            else "; ".join(refusals) or "no package was built",
        )
    )
    return checks


def fit_report(ctx: Context, module_id: str) -> dict[str, Any]:
    """Flash and RAM needed against the board's usable figures, and every check with its verdict.

    ``passed`` is None where a figure was never measured. ``fits`` and ``reasons`` are the verdict
    recorded at compile time, which is what the deployment gate goes by.
    """
    with ctx.session() as session:
        repo = ModelRepository(session)
        row = repo.module(module_id)
        variant = repo.variant(row.variant_id)
        ops = list(variant.info["ops"])
        runtime_error = variant.runtime_errors.get(row.runtime)
        ran = row.runtime in variant.selftests
        report: dict[str, Any] = {
            "module": row.id,
            "variant": row.variant_id,
            "board": row.board_id,
            "runtime": row.runtime,
            "fits": row.fits,
            "reasons": list(row.reasons),
            "flash_bytes": row.flash_bytes,
            "ram_bytes": row.ram_bytes,
        }
    try:
        board = ctx.catalog.board(row.board_id)
        runtime = ctx.catalog.runtime(row.runtime)
    except NotFound as exc:
        unknown = {"usable_flash_bytes": None, "usable_ram_bytes": None, "checks": []}
        return {**report, **unknown, "note": exc.detail}
    return {
        **report,
        "board_name": board.name,
        "usable_flash_bytes": board.usable_flash_bytes,
        "usable_ram_bytes": board.usable_ram_bytes,
        "checks": _checks(row, board, runtime, ops, runtime_error=runtime_error, ran=ran),
        "note": None,
    }


def module_download(ctx: Context, module_id: str, *, signed: bool = True) -> tuple[str, bytes]:
    """(file name, bytes): the signed package a device is sent, or with ``signed=False`` the module as built.

    A module that does not fit its board, or a dry run compiled, is never sent to a device, so it has
    no signed package; its unsigned module can still be downloaded for inspection. The file name says
    which one it is.
    """
    with ctx.session() as session:
        repo = ModelRepository(session)
        row = repo.module(module_id)
        blob, fits, board, reasons = row.package_blob, row.fits, row.board_id, list(row.reasons)
        manifest = dict(row.manifest or {})
        sandbox = repo.in_sandbox(row)
    if blob is None:
        raise Conflict(f"module {module_id} has no package: {'; '.join(reasons) or 'none was built'}")
    if not signed:
        return f"{module_id}-{board}-unsigned.zip", ctx.blobs.get(blob)
    if not fits:
        raise Conflict(
            f"module {module_id} does not fit {board} ({'; '.join(reasons)}), so no device is sent a "
            "signed package of it; ask for the unsigned module instead"
        )
    if sandbox:
        raise Conflict(
            f"module {module_id} was compiled by a dry run, so no device is sent a signed package of it; "
            "ask for the unsigned module instead, or train and compile on a production dataset"
        )
    key = load_or_create_signing_key(ctx.settings.keys_dir)
    sequence = issue_sequence(ctx.settings.keys_dir, model_line(manifest))
    return f"{module_id}-{board}-signed.zip", sign_package(ctx.blobs.get(blob), key, sequence=sequence)
