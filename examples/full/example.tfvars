tenant_id = "acme"
