"""Models of the `webhooks` app (tenant-owned; they inherit tenants.tenancy.TenantOwnedModel)."""
