"""Scripted HTTP answers for the simulator: URL (or "METHOD URL") -> response.

    "GET https://bank.example/api/accounts/123":   # method and URL: exact match
      status: 200
      json: {balance: 1234.5}
    "https://bank.example/api/slow":               # URL alone: any method
      timeout: true
    "https://bank.example/api/down":
      error: connection refused
    "https://bank.example/api/garbled":
      body: "<html>not json</html>"

A response gives at most one of `json`, `body`, `timeout`, `error`; `status` defaults to
200. A request without a matching entry fails as an HTTP error, which is what a flow
meets when an enterprise system is unreachable.
"""

import json
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from telportal.ivr.actions import HttpRequest
from telportal.ivr.events import HttpFailed, HttpResponded


class FixtureResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    status: int = Field(200, ge=100, le=599)
    json_: Any = Field(None, alias="json")
    body: str | None = None
    timeout: bool = False
    error: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "FixtureResponse":
        kinds = [
            "json" in self.model_fields_set or "json_" in self.model_fields_set,
            self.body is not None,
            self.timeout,
            self.error is not None,
        ]
        if sum(kinds) > 1:
            raise ValueError("give at most one of json, body, timeout, error")
        return self

    def content(self) -> bytes:
        if self.body is not None:
            return self.body.encode("utf-8")
        if "json" in self.model_fields_set or "json_" in self.model_fields_set:
            return json.dumps(self.json_, ensure_ascii=False).encode("utf-8")
        return b""


class FixtureError(ValueError):
    """A fixture file or mapping that cannot be used; the message names the entry."""


class HttpFixture:
    def __init__(self, entries: Mapping[str, Any] | None = None) -> None:
        self.responses: dict[str, FixtureResponse] = {}
        for key, value in (entries or {}).items():
            try:
                self.responses[str(key).strip()] = FixtureResponse.model_validate(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                detail = first["msg"].removeprefix("Value error, ")
                raise FixtureError(f"{key}: {where + ': ' if where else ''}{detail}") from None

    @classmethod
    def from_text(cls, text: str) -> "HttpFixture":
        """From YAML or JSON text (JSON is YAML)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FixtureError(f"not YAML or JSON: {exc}") from None
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise FixtureError("a fixture maps URLs (or 'METHOD URL') to responses")
        return cls(data)

    def answer(self, request: HttpRequest) -> HttpResponded | HttpFailed:
        response = self.responses.get(f"{request.method} {request.url}")
        if response is None:
            response = self.responses.get(request.url)
        if response is None:
            return HttpFailed(
                request.ref, "error", f"no fixture for {request.method} {request.url}"
            )
        if response.timeout:
            return HttpFailed(request.ref, "timeout")
        if response.error is not None:
            return HttpFailed(request.ref, "error", response.error)
        return HttpResponded(request.ref, response.status, response.content())
