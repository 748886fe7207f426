"""Request and response bodies, one module per group of resources.

``XCreate`` comes in, ``XPublic`` goes out, ``XsPublic`` is a page of a list. Routers import from the
module that owns their schemas; this package re-exports the shared ones.
"""

from tinymlaas.api.schemas.core import *  # noqa: F403
from tinymlaas.api.schemas.core import __all__ as _core

__all__ = list(_core)
