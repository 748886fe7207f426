"""The product's one error tree.

Each error carries the HTTP status and CoAP response code it maps to, so every adapter (CLI, REST,
LwM2M) reports the same failure the same way without its own mapping table.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "RuntimeFailure",
    "StoreUnavailable",
    "TinymlaasError",
    "TooLarge",
    "UnsupportedModel",
]


class TinymlaasError(Exception):
    """Base of every error the product raises on purpose."""

    http_status: int = 500
    coap_code: str = "5.00"
    title: str = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(TinymlaasError):
    """The caller sent something malformed: a corrupt file, a ragged CSV, a wrong shape."""

    http_status = 422
    coap_code = "4.00"
    title = "Invalid input"


class NotFound(TinymlaasError):
    """A named thing (dataset, model, board, ...) does not exist."""

    http_status = 404
    coap_code = "4.04"
    title = "Not found"


class Conflict(TinymlaasError):
    """The request clashes with what is stored (a duplicate name, an immutable record)."""

    http_status = 409
    coap_code = "4.00"
    title = "Conflict"


class Forbidden(TinymlaasError):
    """The sender is known but may not do this (another device's name, a role too weak)."""

    http_status = 403
    coap_code = "4.03"
    title = "Forbidden"


class TooLarge(InvalidInput):
    """An upload or request body over the configured limit; nothing of it is kept."""

    http_status = 413
    coap_code = "4.13"
    title = "Content too large"


class UnsupportedModel(InvalidInput):
    """A model file is not one we can read (not TFLite/Keras, truncated, unsupported ops)."""

    http_status = 415
    coap_code = "4.15"
    title = "Unsupported model"


class RuntimeFailure(TinymlaasError):
    """A real runtime (TensorFlow, TFLM, LiteRT) failed on input we considered valid."""

    http_status = 500
    coap_code = "5.00"
    title = "Runtime failure"


class StoreUnavailable(TinymlaasError):
    """The store's database server could not be reached or refused us; trying again later may work."""

    http_status = 503
    coap_code = "5.03"
    title = "Store unavailable"
