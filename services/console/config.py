"""Settings of the console (environment prefix ``GW_``, like every setting)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field

from shared.settings import PROJECT_ROOT, GwSettings, TimeZoneName


class ConsoleSettings(GwSettings):
    """``GwSettings`` plus what only the console needs."""

    console_port: int = Field(8040, ge=1, le=65535, description="HTTP port of the console")
    console_stats_url: str = Field("http://127.0.0.1:8030", description="The stats API the console reads")
    console_intake_url: str = Field(
        "http://127.0.0.1:8010", description="Intake's HTTP API, where grid staff's reports go (as the grid)"
    )
    console_timezone: TimeZoneName = Field("Asia/Shanghai", description="Time zone the pages show times in")
    console_stats_timeout: float = Field(5.0, gt=0, le=60, description="Timeout of one stats API call")
    console_refresh_seconds: float = Field(3.0, gt=0, le=120, description="How often live parts of a page refresh")
    console_session_hours: int = Field(12, ge=1, le=24 * 30, description="How long a sign-in cookie lasts")
    console_assets_dir: Path = Field(
        PROJECT_ROOT / "node_modules" / "htmx.org" / "dist",
        description="htmx from npm (package-lock.json; `make install` runs npm ci)",
    )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.console_timezone)
