"""How the API renders every error: `{"detail": "<readable message>"}` with the right status.
Validation errors are 422 and add `errors` (field path → messages)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from minirag.errors import ApplicationError

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is unavailable right now; please try again shortly."

# --- Rendering --------------------------------------------------------------------------------


def flatten_errors(detail: Any, path: str = "") -> dict[str, list[str]]:
    """DRF/Django nested error structures → {"field.sub.0": ["message", ...]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            child = key if not path else f"{path}.{key}"
            if key in ("non_field_errors", "__all__"):
                child = path
            for sub_path, messages in flatten_errors(value, child).items():
                flat.setdefault(sub_path, []).extend(messages)
    elif isinstance(detail, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in detail):
            flat.setdefault(path, []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item in ({}, [], None):
                    continue
                for sub_path, messages in flatten_errors(item, f"{path}.{index}" if path else str(index)).items():
                    flat.setdefault(sub_path, []).extend(messages)
    else:
        flat.setdefault(path, []).append(str(detail))
    return flat


def summarize_errors(errors: dict[str, list[str]]) -> str:
    """{"email": ["This field is required."]} → "email: This field is required." (one sentence per field)."""
    parts = []
    for field, messages in errors.items():
        text = " ".join(message if message.endswith((".", "?", "!")) else f"{message}." for message in messages)
        parts.append(f"{field}: {text}" if field else text)
    return " ".join(parts) or "Invalid input."


def validation_response(errors: dict[str, list[str]]) -> Response:
    return Response(
        {"detail": summarize_errors(errors), "errors": errors},
        status=status.HTTP_422_UNPROCESSABLE_ENTITY,
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: every error becomes `{"detail": ...}` with the right status."""
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = exc.errors
        return Response(body, status=exc.status_code)
    if isinstance(exc, drf_exceptions.ValidationError):
        return validation_response(flatten_errors(exc.detail))
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return validation_response(flatten_errors(detail))
    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        # The server is down, restarting or out of connections (the pool timed out): a failure
        # that passes, not a bug. Operators see it in the log; the caller gets a clear 503.
        logger.error("Database unavailable: %s", exc)
        return Response({"detail": DATABASE_UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body is too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected exception: Django logs it and answers 500 (see server_error)
    detail = response.data.get("detail") if isinstance(response.data, dict) else response.data
    if not isinstance(detail, str):
        detail = summarize_errors(flatten_errors(detail))
    response.data = {"detail": str(detail)}
    # An error a client must tell from others of its status (a spent budget from a rate limit: both
    # 429) names itself in `code`, an additive field.
    public_code = getattr(exc, "public_code", None)
    if public_code:
        response.data["code"] = public_code
    return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/v1/", "/health")) or request.path == "/v1"


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)
