"""Settings: one TOML file plus BCCD_* environment overrides, validated once into frozen objects."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# SPEC S4 defaults.
DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024  # 25 MiB, advertised as SIZE (RFC 1870)
DEFAULT_MAX_RECIPIENTS = 50  # RFC 5321 §4.5.3.1.8 requires accepting at least 100 only for relays
DEFAULT_MAX_CONNECTIONS = 200
DEFAULT_COMMAND_TIMEOUT = 300.0  # RFC 5321 §4.5.3.2.7: server timeout of at least 5 minutes
DEFAULT_DATA_TIMEOUT = 600.0  # whole-DATA deadline: a slow-loris sender cannot hold a slot forever
DEFAULT_LINE_LENGTH = 1000  # RFC 5321 §4.5.3.1.6 text line incl. CRLF; we accept up to 998+CRLF+slack
DEFAULT_DATA_LINE_CAP = 1024 * 1024  # longer DATA lines are accepted (a defect) up to this hard cap
DEFAULT_MAX_CONNECTIONS_PER_IP = 20
DEFAULT_SESSION_TIMEOUT = 1800.0  # a whole session, however busy: NOOPs cannot keep a slot forever
DEFAULT_MAX_COMMANDS = 10_000  # commands per session
DEFAULT_COMMAND_RATE = 100.0  # commands per second per session, sustained (bursts of 10 s worth)
DEFAULT_MAX_IDLE_COMMANDS = 100  # NOOP, RSET, HELP, VRFY, EXPN, HELO/EHLO each, per session
DEFAULT_MAX_FAILED_RCPTS = 20  # refused RCPTs per session before 421 (address harvesting)
DEFAULT_DRAIN_TIMEOUT = 30.0  # seconds DATA in progress may take to finish after SIGTERM
# The embedded default keeps its SQLite file in one place whatever the working directory (issue 12 item 9).
DEFAULT_DATA_DIR = "~/.local/share/bccd"
SQLITE_FILE_NAME = "bccd.sqlite3"
DEFAULT_DNS_TIMEOUT = 2.0  # one DNS query, all retries (issue 11)
DEFAULT_DNS_BUDGET = 5.0  # all DNS of one message's SPF/DKIM/DMARC: a slow resolver never holds DATA longer


def default_db_url(data_dir: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(data_dir).expanduser().resolve() / SQLITE_FILE_NAME}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SmtpSettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=0, le=65535)
    hostname: str = "bccd.localhost"
    bcc_domains: tuple[str, ...] = ("bcc.localhost",)
    max_message_size: int = Field(default=DEFAULT_MAX_MESSAGE_SIZE, gt=0)
    max_recipients: int = Field(default=DEFAULT_MAX_RECIPIENTS, gt=0)
    max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, gt=0)
    command_timeout: float = Field(default=DEFAULT_COMMAND_TIMEOUT, gt=0)
    data_timeout: float = Field(default=DEFAULT_DATA_TIMEOUT, gt=0)
    max_line_length: int = Field(default=DEFAULT_LINE_LENGTH, ge=78)
    max_data_line_length: int = Field(default=DEFAULT_DATA_LINE_CAP, ge=1000)
    max_connections_per_ip: int = Field(default=DEFAULT_MAX_CONNECTIONS_PER_IP, gt=0)
    session_timeout: float = Field(default=DEFAULT_SESSION_TIMEOUT, gt=0)
    max_commands: int = Field(default=DEFAULT_MAX_COMMANDS, gt=0)
    command_rate: float = Field(default=DEFAULT_COMMAND_RATE, gt=0)
    max_idle_commands: int = Field(default=DEFAULT_MAX_IDLE_COMMANDS, gt=0)
    max_failed_rcpts: int = Field(default=DEFAULT_MAX_FAILED_RCPTS, gt=0)
    drain_timeout: float = Field(default=DEFAULT_DRAIN_TIMEOUT, ge=0)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    reuse_port: bool = False

    @field_validator("bcc_domains")
    @classmethod
    def _lower_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one Smart Bcc domain is needed")
        out = []
        for domain in value:
            domain = domain.strip().lower().rstrip(".")
            if not domain or "@" in domain:
                raise ValueError(f"not a domain: {domain!r}")
            out.append(domain.encode("idna").decode("ascii"))
        return tuple(out)


class HttpSettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=0, le=65535)
    enabled: bool = True
    reuse_port: bool = False
    # Where people reach the web pages (login links are built on it), e.g. https://bccd.example.com.
    # Unset: the API answers with the address the request came to, the CLI with http://host:port.
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not (value.startswith("http://") or value.startswith("https://")) or len(value) < 9:
            raise ValueError("must be an http:// or https:// URL")
        return value

    def base_url(self) -> str:
        """The public URL, or the listening address when none is configured."""
        return self.public_url or f"http://{self.host}:{self.port}"


class DatabaseSettings(_Frozen):
    # Where the default SQLite file lives; unused when url names a database.
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    url: SecretStr = SecretStr(default_db_url(DEFAULT_DATA_DIR))
    pool_size: int = Field(default=5, gt=0)
    # Group commit: concurrent SMTP sessions share one transaction (one fsync) per batch.
    commit_batch_max: int = Field(default=64, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _url_from_data_dir(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("url"):
            data = {**data, "url": default_db_url(data.get("data_dir") or DEFAULT_DATA_DIR)}
        return data

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class WebhookSettings(_Frozen):
    """`[webhooks]`: delivery of events to the CRM's endpoints (issue 9)."""

    enabled: bool = True  # run the delivery worker in `bccd serve`
    allow_private: bool = False  # SSRF guard: allow endpoints on loopback/private/link-local addresses
    timeout: float = Field(default=10.0, gt=0)  # seconds per request (connect, read, write)
    concurrency: int = Field(default=32, gt=0)  # deliveries in flight per node
    per_endpoint_concurrency: int = Field(default=4, gt=0)  # a slow endpoint holds at most this many
    poll_interval: float = Field(default=0.5, gt=0)  # seconds between looks at the queue when idle
    retry_base: float = Field(default=5.0, gt=0)  # first retry after ~this many seconds, doubling
    retry_max: float = Field(default=3600.0, gt=0)  # retries at least this often once backed off
    retry_for: float = Field(default=26 * 3600.0, gt=0)  # give up on an event this long after it


class DnsSettings(_Frozen):
    """`[dns]`: the resolver sender authentication (SPF, DKIM, DMARC; issue 11) asks."""

    # "host:port" or "host" (port 53), IP addresses ("[::1]:53" for IPv6); empty: the system resolver.
    servers: tuple[str, ...] = ()
    timeout: float = Field(default=DEFAULT_DNS_TIMEOUT, gt=0)  # seconds for one query, retries included
    budget: float = Field(default=DEFAULT_DNS_BUDGET, gt=0)  # seconds of DNS for one message, all lookups

    @field_validator("servers")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for server in value:
            parse_dns_server(server)  # ValueError names the bad entry
        return value


def parse_dns_server(server: str) -> tuple[str, int]:
    """`"127.0.0.1:5353"` → ("127.0.0.1", 5353); `"[::1]:53"`, `"::1"` and `"10.0.0.1"` work too."""
    text = server.strip()
    host, port = text, 53
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"not host:port: {server!r}")
        if rest:
            port = _port(rest[1:], server)
    elif text.count(":") == 1:
        host, _, rest = text.partition(":")
        port = _port(rest, server)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not an IP address (DNS servers are named by address): {server!r}") from None
    return host, port


def _port(text: str, server: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in {server!r}")
    return int(text)


class OutboundSettings(_Frozen):
    """`[outbound]`: the SMTP relay bccd sends its own mail through — the codes that confirm alternative
    sender addresses (issue 11). No host: bccd sends nothing and an admin confirms aliases instead."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True  # STARTTLS before authenticating (required when offered: never plain AUTH)
    username: str | None = None
    password: SecretStr | None = None
    # The From address of bccd's mail; unset: postmaster@<smtp.hostname>.
    from_: str | None = Field(default=None, alias="from")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class LogSettings(_Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class Settings(BaseSettings):
    """Everything bccd reads at start-up. Environment: BCCD_<SECTION>__<KEY>, e.g. BCCD_SMTP__PORT."""

    model_config = SettingsConfigDict(
        env_prefix="BCCD_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    smtp: SmtpSettings = SmtpSettings()
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = LogSettings()
    webhooks: WebhookSettings = WebhookSettings()
    dns: DnsSettings = DnsSettings()
    outbound: OutboundSettings = OutboundSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the TOML file (passed as init kwargs).
        return (env_settings, init_settings)


class ConfigError(Exception):
    """A configuration file or environment value is invalid; the message names the key."""


def load_settings(path: Path | None = None) -> Settings:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"{key}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
