"""Typed settings shared by every service and tool.

Only this module reads the environment. Every value has the prefix ``GW_`` and a sane
local default, so a fresh checkout runs against the local stack without any set-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout (or installed tree) that holds ``deploy/``; paths default relative to it."""

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_MONGO_URL = "mongodb://127.0.0.1:27017"


def _known_zone(value: str) -> str:
    """Fail at start-up, naming the setting, rather than at the first page or counter."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone (an IANA name like Asia/Shanghai)") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name (``Asia/Shanghai``), checked when the settings load."""


class GwSettings(BaseSettings):
    """Settings every Gridwhistle process understands (environment prefix ``GW_``)."""

    model_config = SettingsConfigDict(env_prefix="GW_", extra="ignore", frozen=True)

    amqp_url: str = Field(DEFAULT_AMQP_URL, description="RabbitMQ connection URL")
    amqp_failover: str = Field(
        "",
        description="Further nodes of the same RabbitMQ cluster, comma-separated host:port (same user and "
        "vhost as GW_AMQP_URL): each (re)connect attempt goes to the next node of the list",
    )
    amqp_heartbeat: int = Field(
        5,
        ge=0,
        le=600,
        description="AMQP heartbeat in seconds: a node that stops answering is left after about three of them",
    )
    publish_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a publish may wait for the broker's confirm (a blocked or lost node); then it fails",
    )
    amqp_management_url: str = Field(
        "http://guest:guest@127.0.0.1:15672",
        description="RabbitMQ management API (queue depths, vhosts, users)",
    )
    mongo_url: str = Field(DEFAULT_MONGO_URL, description="MongoDB (or Mongo-wire) connection URL")
    mongo_db: str = Field("gridwhistle", description="Database holding the read models")
    registry_path: Path = Field(
        PROJECT_ROOT / "deploy" / "config" / "registry" / "changjia.yaml",
        description="Registry YAML (towns, grids, staff, departments)",
    )
    rules_path: Path = Field(
        PROJECT_ROOT / "deploy" / "config" / "routing.yaml",
        description="Routing rules YAML (category x severity -> tier, departments, deadlines)",
    )
    prefetch: int = Field(32, ge=1, le=1000, description="Prefetch per subscriber")
    log_level: str = Field("INFO", description="Log level")
    log_format: Literal["json", "console"] = Field("json", description="Log line format")
    token_secret: SecretStr = Field(
        SecretStr("gridwhistle-dev-secret-change-me"),
        description="HMAC secret signing grid bearer tokens and Open311 api keys",
    )
    token_secrets_previous: str = Field(
        "", description="Comma-separated former token secrets, accepted for verification only (rotation)"
    )
    state_dir: Path = Field(PROJECT_ROOT / ".state", description="Local stack state (data, logs, pids)")
    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds (0.0.0.0 in containers)")
    graceful_timeout: float = Field(
        20.0,
        gt=0,
        description="Seconds the whole shutdown may take: HTTP drain, then in-flight messages and background "
        "work in parallel (keep it below the pod's termination grace period, 35 s in deploy/k8s)",
    )

    def verification_secrets(self) -> tuple[SecretStr, ...]:
        """The current token secret first, then every previous one still accepted (a rotation)."""
        previous = [s.strip() for s in self.token_secrets_previous.split(",") if s.strip()]
        return (self.token_secret, *(SecretStr(s) for s in previous))

    @property
    def shutdown_budget(self) -> tuple[float, float]:
        """``(http drain, in-flight messages)`` seconds: the two phases of a shutdown, one after the
        other, summing to ``graceful_timeout`` (the sweeper's last pass runs beside the messages)."""
        http = min(5.0, self.graceful_timeout / 4)
        return http, self.graceful_timeout - http

    @property
    def amqp_nodes(self) -> list[str]:
        """Every node URL of the broker: ``amqp_url`` first, then each failover address with its
        user, vhost and query, and the heartbeat unless the URL sets one."""
        parts = urlsplit(self.amqp_url)
        userinfo = parts.netloc.rpartition("@")[0]
        query = parts.query or ""
        if "heartbeat=" not in query:
            query = "&".join(q for q in (query, f"heartbeat={self.amqp_heartbeat}") if q)
        netlocs = [parts.netloc.rpartition("@")[2]]
        netlocs += [address.strip() for address in self.amqp_failover.split(",") if address.strip()]
        return [
            parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc, query=query).geturl()
            for netloc in netlocs
        ]

    @property
    def amqp_host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.amqp_url)
        return parts.hostname or "127.0.0.1", parts.port or 5672

    @property
    def mongo_host_port(self) -> tuple[str, int]:
        netloc = urlsplit(self.mongo_url).netloc.rsplit("@", 1)[-1]
        first = netloc.split(",")[0]
        host, _, port = first.partition(":")
        return host or "127.0.0.1", int(port or 27017)
