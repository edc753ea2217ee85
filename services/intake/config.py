"""Settings of the intake service (``GW_`` prefix, on top of the shared ones)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import GwSettings


class IntakeSettings(GwSettings):
    """What intake needs beyond ``GwSettings``."""

    intake_port: int = Field(8010, ge=1, le=65535, description="HTTP port of the intake service (GW_INTAKE_PORT)")
    stats_public_url: str = Field(
        "http://127.0.0.1:8030", description="Public base URL of the stats service (for status_url)"
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest body of POST /v1/reports")
    max_batch_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest body of a batch")
    max_batch_items: int = Field(500, ge=1, le=5000, description="Most reports in one batch")
    retry_after_seconds: int = Field(5, ge=1, description="Retry-After sent with a 503")
    open311_window_days: int = Field(90, ge=1, description="Default look-back of GET requests.json")
    open311_max_results: int = Field(1000, ge=1, le=10000, description="Most requests GET requests.json returns")
