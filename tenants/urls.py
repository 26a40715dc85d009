from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants import views

router = SimpleRouter(trailing_slash=False)
router.register("users", views.UserViewSet, basename="user")
router.register("api-tokens", views.ApiTokenViewSet, basename="api-token")

urlpatterns = [
    path("tenants", views.TenantBootstrapView.as_view(), name="tenant-bootstrap"),
    path("tenants/me", views.TenantMeView.as_view(), name="tenant-me"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    *router.urls,
]
