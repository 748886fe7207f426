"""Boards from the catalog: public, since they describe hardware, not anything of the user's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, Page, page
from tinymlaas.api.schemas import BoardPublic, BoardsPublic

router = APIRouter(prefix="/boards", tags=["boards"])


@router.get("", response_model=BoardsPublic)
def list_boards(context: ContextDep, paging: Annotated[Page, Depends()]) -> BoardsPublic:
    """The boards in the catalog (built-in plus the server's extra board directories)."""
    boards = [BoardPublic(**board.as_dict()) for board in context.catalog.boards.values()]
    return BoardsPublic(data=page(boards, paging), count=len(boards))


@router.get("/{board_id}", response_model=BoardPublic)
def show_board(context: ContextDep, board_id: str) -> BoardPublic:
    """One board, with the source of every figure."""
    return BoardPublic(**context.catalog.board(board_id).as_dict())
