"""Where the API lives; one constant so every router builds its own full paths."""

API_PREFIX = "/api/v1"
