"""Models of the `chat` app (tenant-owned; they inherit tenants.tenancy.TenantOwnedModel)."""
