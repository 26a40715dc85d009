"""The domain exceptions services raise.

Services raise the `ApplicationError` family and stay free of HTTP concerns; each carries the
status the API answers with (rendered by minirag/error_handlers.py) and a readable `detail` that
management commands print as is.
"""

from __future__ import annotations

from rest_framework import status


class ApplicationError(Exception):
    """A failure the caller can understand and act on; carries its HTTP status."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class InvalidInputError(ApplicationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY

    @classmethod
    def for_field(cls, field: str, message: str) -> InvalidInputError:
        return cls(f"{field}: {message}", errors={field: [message]})


class UnauthorizedError(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT


class ForbiddenError(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN


class PayloadTooLargeError(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class ServiceUnavailableError(ApplicationError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
