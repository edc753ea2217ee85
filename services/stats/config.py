"""Settings of the stats service (environment prefix ``GW_``, like every setting)."""

from __future__ import annotations

from functools import cached_property
from zoneinfo import ZoneInfo

from pydantic import Field

from shared.settings import GwSettings, TimeZoneName


class StatsSettings(GwSettings):
    """``GwSettings`` plus what only stats needs."""

    stats_port: int = Field(8030, ge=1, le=65535, description="HTTP port of the stats service")
    stats_timezone: TimeZoneName = Field(
        "Asia/Shanghai",
        description="Time zone whose calendar days the counters are bucketed by (and from/to refer to)",
    )
    stats_refresh_seconds: float = Field(
        5.0, gt=0, le=300, description="How often the read-model and queue-depth metric snapshots refresh"
    )
    stats_prefetch: int = Field(
        256, ge=1, le=4096, description="Unacknowledged events one stats process holds (what a batch can draw on)"
    )
    stats_batch_max: int = Field(
        128, ge=1, le=1000, description="Most events applied in one transaction (a quiet queue gives batches of one)"
    )

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.stats_timezone)
