"""Signal receivers of the tenants app."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.utils import timezone

from tenants.models import User
from tenants.tenancy import tenant_scope_disabled


def record_last_login(sender: Any, user: User, **kwargs: Any) -> None:
    """Replaces Django's `update_last_login`, whose `user.save()` runs wherever `login()` is
    called, often outside any tenant scope. A targeted UPDATE of one column by primary key
    needs no scope and cannot touch another row."""
    now = timezone.now()
    with tenant_scope_disabled("login: record the time of the user's last login"):
        User.all_tenants.filter(pk=user.pk).update(last_login=now)
    user.last_login = now


def connect() -> None:
    from django.db.models.signals import post_delete, post_save

    from tenants.credential_cache import on_credential_write
    from tenants.models import ApiToken, Tenant

    for model in (ApiToken, Tenant, User):
        post_save.connect(on_credential_write, sender=model, dispatch_uid=f"credentials:save:{model.__name__}")
        post_delete.connect(on_credential_write, sender=model, dispatch_uid=f"credentials:delete:{model.__name__}")
    # Same dispatch_uid as Django's receiver: this app is ready before django.contrib.auth, so
    # ours is registered first and Django's later connect() with that uid is ignored.
    user_logged_in.connect(record_last_login, dispatch_uid="update_last_login")
