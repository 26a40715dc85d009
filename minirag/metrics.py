"""Request ids and Prometheus metrics for the HTTP server; `GET /metrics`.

`RequestObservabilityMiddleware` (first in MIDDLEWARE) gives every request an id (see
`minirag.logs`), echoes it as `X-Request-ID`, and — when metrics are on — counts the request and
times it, labelled by route name (the URL pattern's name, never the raw path, so tenant ids never
become labels), method and status:

    minirag_http_requests_total{method,route,status}
    minirag_http_request_duration_seconds{method,route}   (time until the response starts;
                                                           a streamed answer keeps flowing after it)

Metrics are off unless `MINIRAG_METRICS_TOKEN` is set: `/metrics` then answers 404, and with it
only a request bearing `Authorization: Bearer <token>` (compared in constant time) gets the text
exposition; others get 401. Only process-level numbers are exposed, never tenant data.

Under gunicorn (deploy/gunicorn.conf.py) every worker writes to `PROMETHEUS_MULTIPROC_DIR` and a
scrape adds up all workers; elsewhere (uvicorn, tests) the numbers are this process's.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from minirag.logs import accept_request_id, bind_request_id, unbind_request_id

REQUEST_ID_HEADER = "X-Request-ID"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"
STATIC_ROUTE = "static"

REQUESTS = Counter(
    "minirag_http_requests_total",
    "HTTP requests answered, by route name, method and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "minirag_http_request_duration_seconds",
    "Time from receiving an HTTP request to starting its response, by route name and method.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


def metrics_enabled() -> bool:
    return bool(settings.METRICS_TOKEN)


def route_name(request: HttpRequest) -> str:
    """The URL pattern's name; `static` for files servestatic answered, `<unmatched>` for requests
    answered before URL resolution (an https redirect) or matching no route."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or UNMATCHED_ROUTE
    if request.path.startswith(settings.STATIC_URL):
        return STATIC_ROUTE
    return UNMATCHED_ROUTE


def _record(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    method = request.method if request.method in _METHODS else "OTHER"
    route = route_name(request)
    REQUESTS.labels(method=method, route=route, status=str(response.status_code)).inc()
    LATENCY.labels(method=method, route=route).observe(time.perf_counter() - started)


class RequestObservabilityMiddleware:
    """Request id in and out; per-route counters and latency when metrics are on. Sync and async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        started = time.perf_counter()
        request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = bind_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            unbind_request_id(token)
        return self._finish(request, response, request_id, started)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = bind_request_id(request_id)
        try:
            response = await self.get_response(request)
        finally:
            unbind_request_id(token)
        return self._finish(request, response, request_id, started)

    def _finish(
        self, request: HttpRequest, response: HttpResponseBase, request_id: str, started: float
    ) -> HttpResponseBase:
        response[REQUEST_ID_HEADER] = request_id
        if metrics_enabled():
            _record(request, response, started)
        return response


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: Prometheus text exposition, for the holder of MINIRAG_METRICS_TOKEN only."""
    expected = settings.METRICS_TOKEN
    if not expected:
        raise Http404("Metrics are not enabled.")
    supplied = _bearer_token(request)
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        response = JsonResponse({"detail": "A valid metrics token is required."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
