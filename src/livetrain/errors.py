"""One exception family for everything a user can get wrong.

Every error a view raises is a `LivetrainError`; the app's single error handler
renders it as `{"error": code, "message": text}` with its HTTP status.
"""

from __future__ import annotations

from typing import Any


class LivetrainError(Exception):
    """An error with a machine-readable code, an HTTP status and a human message."""

    code = "error"
    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status or type(self).status_code
        self.detail = detail
        if code:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        """The JSON body a client receives."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ValidationError(LivetrainError):
    """The request is well-formed but a value is wrong."""

    code = "validation_error"
    status_code = 400


class NotFound(LivetrainError):
    """An id names nothing that exists."""

    code = "not_found"
    status_code = 404


class Conflict(LivetrainError):
    """The request clashes with the current state (a run already going, say)."""

    code = "conflict"
    status_code = 409


class PayloadTooLarge(LivetrainError):
    """The request body is over the configured limit."""

    code = "payload_too_large"
    status_code = 413


class IntegrityError(LivetrainError):
    """A stored file does not match the checksum recorded for it (disk corruption or tampering)."""

    code = "integrity_error"
    status_code = 500
