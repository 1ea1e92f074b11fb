"""pytest-httpserver handlers and payload builders that speak the real gateway shapes (shared/crm-apis.md 4)."""
