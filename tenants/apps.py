from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from minirag.health import register_tenant_counter
        from tenants import checks, signals  # noqa: F401  (checks registers the scoped-manager check)
        from tenants.rls import install_scope_wrapper
        from tenants.selectors import identity_counts

        signals.connect()
        # Every PostgreSQL connection tells the database which tenant the code acts for.
        connection_created.connect(install_scope_wrapper, dispatch_uid="minirag_rls_scope")
        register_tenant_counter(identity_counts)
