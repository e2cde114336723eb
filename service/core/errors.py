"""Domain errors raised by crud; service.main maps each to one HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    """The request contradicts the stored state (idempotency clash, disallowed transition)."""

    status_code = 409


class Forbidden(ServiceError):
    status_code = 403


class Invalid(ServiceError):
    """Well-formed but unusable input (no team to dispatch to, refused webhook URL)."""

    status_code = 422
