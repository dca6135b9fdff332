"""Configuration: defaults < one YAML file < TELPORTAL_* environment < command-line flags.

Everything is validated once at start. A bad value stops the process with a
message naming the key and where it came from, never with a traceback.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from telportal.compiled import INTERPRETED_ENV
from telportal.net.dns import nameserver_address

ENV_PREFIX = "TELPORTAL_"
# Environment variables that are not settings: the loader's own, and the one that
# runs the protocol core interpreted (read at import, before any configuration).
ENV_RESERVED = frozenset({"TELPORTAL_CONFIG", INTERPRETED_ENV})


class ConfigError(Exception):
    """A configuration problem, worded for the person who must fix it."""


class SiteRole(StrEnum):
    ACCESS = "access"
    CENTER = "center"
    CONTROL = "control"


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_LISTEN_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


def parse_listen(value: object) -> object:
    """Accept 'HOST:PORT' or '[IPv6]:PORT'."""
    if not isinstance(value, str):
        return value
    m = _LISTEN_RE.match(value.strip())
    if m is None:
        raise ValueError(f"expected HOST:PORT or [IPV6]:PORT, got {value!r}")
    port = int(m["port"])
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    return ListenAddress(host=m["v6"] or m["host"], port=port)


Listen = Annotated[ListenAddress, BeforeValidator(parse_listen)]


def _zone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Section):
    name: str = Field("local", min_length=1, max_length=63)
    region: str = Field("default", min_length=1, max_length=63)
    # The all-in-one server plays every role.
    roles: tuple[SiteRole, ...] = (SiteRole.ACCESS, SiteRole.CENTER, SiteRole.CONTROL)


class AuthConfig(_Section):
    token_ttl_seconds: int = Field(12 * 3600, ge=60, le=30 * 24 * 3600)
    login_max_failures: int = Field(10, ge=1, le=1000)
    login_window_seconds: int = Field(300, ge=1)
    login_ban_seconds: int = Field(900, ge=1)


class SipConfig(_Section):
    """SIP beyond the UDP/TCP address of `sip_listen`."""

    tcp: bool = True  # TCP on the same address as UDP
    tls_listen: Listen | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ws_listen: Listen | None = None
    # Requests whose domain names no tenant (phones that register to an IP
    # address) belong to this tenant; none means they are refused.
    default_tenant: str | None = None
    # A tenant is also reached as <slug>.<domain_suffix> when this is set.
    domain_suffix: str | None = None
    min_expires: int = Field(60, ge=1, le=3600)
    max_expires: int = Field(3600, ge=60, le=86400)
    keepalive_seconds: int = Field(30, ge=5, le=3600)
    # Offered in this order. RFC 8760 puts the preferred first, but SIPp 3.6 and
    # baresip 1.0 read only the first challenge and know only MD5 (decision 0007):
    # MD5 first lets every phone in; a site of SHA-256 phones may reverse it.
    digest_algorithms: tuple[Literal["SHA-256", "MD5"], ...] = Field(
        ("MD5", "SHA-256"), min_length=1
    )
    auth_max_failures: int = Field(20, ge=1, le=10000)
    auth_window_seconds: int = Field(60, ge=1)
    auth_ban_seconds: int = Field(600, ge=1)
    # Where carriers' names are looked up (RFC 3263: NAPTR, SRV, A/AAAA): "host" or
    # "host:port" ("[::1]:53"); empty means the system's resolv.conf.
    dns_servers: tuple[str, ...] = ()
    dns_timeout: float = Field(2.0, gt=0, le=30)
    # A carrier's server that leaves an INVITE without any answer (not even 100
    # Trying) this long is passed over for the next one DNS gave (RFC 3263 4.3).
    failover_seconds: float = Field(5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _tls_needs_files(self) -> "SipConfig":
        if self.tls_listen is not None and (self.tls_cert is None or self.tls_key is None):
            raise ValueError("tls_listen needs tls_cert and tls_key")
        if self.min_expires > self.max_expires:
            raise ValueError("min_expires must not exceed max_expires")
        for entry in self.dns_servers:
            nameserver_address(entry)  # raises ValueError naming a bad entry
        return self


class MediaSettings(_Section):
    """RTP for calls the platform answers (IVR) or anchors."""

    # Defaults to the host of sip_listen; a wildcard needs advertised_address.
    bind_address: str | None = None
    advertised_address: str | None = None
    port_min: int = Field(20000, ge=1024, le=65535)
    port_max: int = Field(29999, ge=1024, le=65535)
    # A caller whose RTP stops this long (and who has not put us on hold) is gone
    # without a BYE (a crashed phone, a lost network): the call is hung up, so no
    # ghost waits in a queue or holds an agent.
    rtp_timeout_seconds: float = Field(60.0, ge=2.0, le=3600.0)
    # Port pairs of ended calls kept open for later calls (opening and closing a pair
    # is a good part of a short call's cost), and how long one waits before a new call
    # gets it, so that late packets of its old call never reach the new one. 0 pairs:
    # each pair is closed when its call ends.
    idle_port_pairs: int = Field(4096, ge=0, le=32768)
    port_reuse_after_seconds: float = Field(1.0, ge=0.0, le=60.0)

    @model_validator(mode="after")
    def _range(self) -> "MediaSettings":
        if self.port_min > self.port_max:
            raise ValueError("port_min must not exceed port_max")
        return self


class RecordingSettings(_Section):
    """Recording of calls answered by agents (MISSION M8: quality and disputes)."""

    # Record every call an agent answers, from the moment it is bridged.
    agent_calls: bool = True
    # stereo: caller left, agent right (for analytics); mixed: one channel, smaller files.
    layout: Literal["stereo", "mixed"] = "stereo"


class AcdSettings(_Section):
    """The ACD of a site with the center role."""

    # An agent of a queue whose phone registers is signed in and ready at once; off,
    # agents sign in and go ready from their desktop (the API).
    ready_on_register: bool = True


class EmailSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class EmailSettings(_Section):
    """Email about cases' SLA alarms and escalations (issue 7), sent over SMTP."""

    # Off by default: the demo and the tests have no mail server to talk to.
    enabled: bool = False
    smtp_host: str = Field("localhost", min_length=1)
    smtp_port: int | None = Field(None, ge=1, le=65535)
    security: EmailSecurity = EmailSecurity.STARTTLS
    validate_certs: bool = True
    username: str | None = None
    # SecretStr: shown as ********** if the settings are ever printed or logged.
    password: SecretStr | None = None
    from_address: str = Field("telportal@localhost", pattern=r"^[^@\s]+@[^@\s]+$")
    # Where people open a case from the email; None: http://<http_listen>/.
    desktop_url: str | None = None
    # Used when no language is known for the person or their tenant: en or zh-CN.
    language: Literal["en", "zh-CN"] = "en"
    # A tenant's default language, by tenant slug: {"acme": "zh-CN"}.
    tenant_languages: dict[str, Literal["en", "zh-CN"]] = Field(default_factory=dict)
    # For deadlines when the tenant's case calendar names no zone.
    timezone: Annotated[str, AfterValidator(_zone_name)] = "UTC"
    max_attempts: int = Field(8, ge=1, le=100)
    retry_first_seconds: float = Field(30, gt=0)
    retry_max_seconds: float = Field(3600, gt=0)
    timeout_seconds: float = Field(30, gt=0, le=600)
    poll_seconds: float = Field(5, gt=0, le=3600)
    # At start, alarms of this many minutes back whose emails were never stored (the
    # process stopped between the alarm and its email) are stored and sent.
    catch_up_minutes: int = Field(60, ge=0, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _login_pairs(self) -> "EmailSettings":
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.retry_first_seconds > self.retry_max_seconds:
            raise ValueError("retry_first_seconds must not exceed retry_max_seconds")
        return self

    @property
    def port(self) -> int:
        """The configured port, else the usual one for the security chosen."""
        if self.smtp_port is not None:
            return self.smtp_port
        return {EmailSecurity.NONE: 25, EmailSecurity.STARTTLS: 587, EmailSecurity.TLS: 465}[
            self.security
        ]


class Config(_Section):
    data_dir: Path = Path("data")
    database_url: str | None = None
    http_listen: Listen = ListenAddress("127.0.0.1", 8080)
    # One log line per HTTP request (uvicorn's access log): about 34 us of CPU each.
    http_access_log: bool = True
    sip_listen: Listen = ListenAddress("0.0.0.0", 5060)  # noqa: S104 - phones reach us from the LAN
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    auto_migrate: bool = True
    site: SiteConfig = SiteConfig()
    auth: AuthConfig = AuthConfig()
    sip: SipConfig = SipConfig()
    media: MediaSettings = MediaSettings()
    recording: RecordingSettings = RecordingSettings()
    acd: AcdSettings = AcdSettings()
    email: EmailSettings = EmailSettings()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'telportal.db').resolve()}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _env_value(raw: str) -> object:
    # Lists and mappings may be given as JSON; everything else stays a string and
    # is coerced by the model, so "0.0.0.0:5060" is never read as a YAML number.
    if raw.startswith(("[", "{")):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _set_path(target: dict[str, Any], path: list[str], value: object) -> None:
    node = target
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path}{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of settings")
    return data


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Merge the sources and validate. `overrides` holds command-line flags (dotted keys)."""
    env = env or {}
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}

    config_path = path or (Path(env["TELPORTAL_CONFIG"]) if env.get("TELPORTAL_CONFIG") else None)
    if config_path is not None:
        merged = _read_yaml(config_path)
        origin.update({k: f"config file {config_path}" for k in merged})

    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if not all(parts):
            raise ConfigError(f"environment variable {name}: malformed setting name")
        _set_path(merged, parts, _env_value(raw))
        origin[".".join(parts)] = f"environment variable {name}"

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        _set_path(merged, dotted.split("."), value)
        origin[dotted] = f"option --{dotted.replace('_', '-').replace('.', '-')}"

    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


def _describe(exc: ValidationError, origin: Mapping[str, str]) -> str:
    lines = []
    for err in exc.errors():
        key = _dotted(err["loc"])
        source = next((origin[k] for k in (key, *_parents(key)) if k in origin), None)
        if source is None:
            # A section-level rule (one setting needs another): name what set its parts.
            parts = sorted({v for k, v in origin.items() if k.startswith(key + ".")})
            source = ", ".join(parts) or "defaults"
        if err["type"] == "extra_forbidden":
            problem = "unknown setting"
        else:
            problem = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"setting '{key}' (from {source}): {problem}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _parents(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
