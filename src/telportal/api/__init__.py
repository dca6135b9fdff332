"""HTTP API: thin handlers over the domain, OpenAPI as the contract."""
