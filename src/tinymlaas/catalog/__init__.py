"""The board catalog: built-in board and runtime profiles plus users' own directories of board files."""

from tinymlaas.catalog.board import Board, BoardClass, Footprint, RuntimeProfile
from tinymlaas.catalog.loader import Catalog, load_catalog

__all__ = ["Board", "BoardClass", "Catalog", "Footprint", "RuntimeProfile", "load_catalog"]
