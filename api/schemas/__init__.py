"""Request and response bodies of the HTTP API (they are the OpenAPI schema at /docs)."""
