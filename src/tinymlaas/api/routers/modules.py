"""Compiled modules, their fit reports and packages; all of it needs ``models:read``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from tinymlaas.api.deps import ContextDep, Page, require
from tinymlaas.api.schemas.modules import FitReportPublic, ModuleDetailPublic, ModulePublic, ModulesPublic
from tinymlaas.services import modules as service
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/modules", tags=["models"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.MODELS_READ))]

_ZIP = {200: {"content": {"application/zip": {}}, "description": "The package zip."}}


@router.get("", response_model=ModulesPublic)
def list_modules(
    context: ContextDep,
    _token: Reader,
    paging: Annotated[Page, Depends()],
    board: Annotated[str | None, Query(description="Only modules compiled for this board.")] = None,
    fits: Annotated[bool | None, Query(description="Only modules that fit (true) or not (false).")] = None,
) -> ModulesPublic:
    """Every compiled module, newest first, with its flash and RAM needs and fit verdict."""
    found, count = service.modules_page(
        context, board=board, fits=fits, limit=paging.limit, offset=paging.offset
    )
    return ModulesPublic(data=[ModulePublic(**m) for m in found], count=count)


@router.get("/{module_id}", response_model=ModuleDetailPublic)
def show_module(context: ContextDep, _token: Reader, module_id: str) -> ModuleDetailPublic:
    """One module with its manifest: files and their sha256, arena, ops, shapes, self-test vectors."""
    return ModuleDetailPublic(**service.show_module(context, module_id))


@router.get("/{module_id}/fit", response_model=FitReportPublic)
def show_module_fit(context: ContextDep, _token: Reader, module_id: str) -> FitReportPublic:
    """Flash and RAM the module needs against what its board leaves for a model, check by check."""
    return FitReportPublic(**service.fit_report(context, module_id))


@router.get("/{module_id}/package", response_class=Response, responses=_ZIP)
def download_module_package(
    context: ContextDep,
    _token: Reader,
    module_id: str,
    signed: Annotated[
        bool, Query(description="false: the module zip as compiled, without the server's signature.")
    ] = True,
) -> Response:
    """The package a device is sent: the module zip plus ``manifest.sig``, signed with the server's key.

    The file name ends in ``-signed.zip`` or, with ``signed=false``, ``-unsigned.zip``. 409 when the
    module has no package (compilation was refused) or, for the signed one, when it does not fit its
    board: such a module is never sent to a device.
    """
    name, data = service.module_download(context, module_id, signed=signed)
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
