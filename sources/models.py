"""Models of the `sources` app (tenant-owned; they inherit tenants.tenancy.TenantOwnedModel)."""
