"""URL map: `/health`, `/metrics`, the `/v1` API (+ schema and docs), the `/dashboard/` admin."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from minirag import metrics, views, widget

# Chat first: Django keeps, with every request, the list of the patterns it tried before the one
# that matched, and a streamed answer keeps its request for the whole answer (30 patterns, ≈ 3.7 KB
# per open stream when chat came after tenants, bots and sources). No two apps' routes overlap, so
# the order changes nothing else (minirag/tests/test_project.py).
api_v1 = [
    path("", include("chat.urls")),
    path("system/health", views.SystemHealthView.as_view(), name="system-health"),
    path("system/health/detailed", views.DetailedHealthView.as_view(), name="system-health-detailed"),
    path("", include("tenants.urls")),
    path("", include("bots.urls")),
    path("", include("sources.urls")),
    path("", include("inbox.urls")),
    path("", include("webhooks.urls")),
    path("", include("providers.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("v1/", include(api_v1)),
    path("health", views.liveness, name="health"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("dashboard/widget/minirag-widget.js", widget.widget_script, name="widget-script"),
    path("dashboard/widget/minirag-widget-extra.js", widget.widget_extra_script, name="widget-extra-script"),
    path("widget-demo/", widget.widget_demo, name="widget-demo"),
    path("dashboard/", admin.site.urls),
    path("", RedirectView.as_view(url="/v1/docs", permanent=False)),
]

handler400 = "minirag.error_handlers.bad_request"
handler404 = "minirag.error_handlers.page_not_found"
handler500 = "minirag.error_handlers.server_error"
