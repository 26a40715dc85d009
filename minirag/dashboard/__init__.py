"""The operator console at /dashboard/: Django's admin, made tenant-aware.

Platform operators (superusers without a tenant) see every tenant; a tenant's owners and admins log
in to the same pages and reach only their own tenant's rows, because their requests run inside
their tenant's scope (tenants.middleware) — the pages do not merely hide other tenants' links.
"""
