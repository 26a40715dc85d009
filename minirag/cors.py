"""CORS for the widget's routes, and only those.

The widget runs on customer sites and calls the routes a bot token may use (views that declare
`bot_token_actions`: the chat turn, reading its own chats, feedback, and the visitor's side of a
hand-off to a person — `handoff`, `release`, `typing` and the chat's `events` stream). Every other
route sends no CORS headers at all, so no other site's page can read a tenant's API responses in a
browser.

Preflights (`OPTIONS` with `Access-Control-Request-Method`) carry no `Authorization` header by
the CORS standard, so they cannot be checked against a token: they are answered for any origin
and grant nothing by themselves. The actual request is then checked per token
(tenants/authentication.py): `Access-Control-Allow-Origin` is echoed only for a bot token that
allows the caller's origin, or on an error that did not authenticate anyone (a refused origin, a
revoked token), so the widget can show the visitor why — never for tenant tokens or dashboard
sessions. No cookies are involved (`Allow-Credentials` is never sent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin

from tenants.authentication import Principal

ALLOWED_METHODS = "GET, POST, PATCH"
# Last-Event-ID: a fetch() client resuming the chat's event stream may send it as a header (the
# widget sends `?lastEventId=` instead, which needs no preflight entry).
ALLOWED_HEADERS = "Authorization, Content-Type, Accept, X-MiniRAG-Visitor, Last-Event-ID"
EXPOSED_HEADERS = "Retry-After, X-Total-Count"
PREFLIGHT_MAX_AGE_SECONDS = 600
WIDGET_ROUTE_FLAG = "_minirag_widget_route"


def is_widget_route(view_func: Callable[..., Any]) -> bool:
    view_class = getattr(view_func, "cls", None)
    return bool(getattr(view_class, "bot_token_actions", ()))


def _may_read_response(request: HttpRequest, response: HttpResponseBase, origin: str) -> bool:
    principal = getattr(request, "auth", None)
    if isinstance(principal, Principal):
        return principal.is_bot_token and principal.api_token is not None and principal.api_token.allows_origin(origin)
    return response.status_code >= 400


class WidgetCorsMiddleware(MiddlewareMixin):
    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if not is_widget_route(view_func):
            return None
        setattr(request, WIDGET_ROUTE_FLAG, True)
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and origin and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
            patch_vary_headers(response, ["Origin"])
            return response
        return None

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        origin = request.headers.get("Origin")
        if not origin or not getattr(request, WIDGET_ROUTE_FLAG, False):
            return response
        patch_vary_headers(response, ["Origin"])
        if "Access-Control-Allow-Origin" not in response and _may_read_response(request, response, origin):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response
