"""Settings of the dispatch service (environment prefix ``GW_``)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import GwSettings


class DispatchSettings(GwSettings):
    """``GW_DISPATCH_PORT``, ``GW_SWEEP_INTERVAL``, ``GW_PARK_TIMEOUT``..."""

    dispatch_port: int = Field(8020, ge=1, le=65535, description="HTTP port (/healthz, /metrics)")
    sweep_interval: float = Field(5.0, gt=0, description="Seconds between deadline/outbox sweeps")
    park_timeout: float = Field(900.0, gt=0, description="Seconds a parked command waits before rejection")
    outbox_grace: float = Field(
        10.0, ge=0, description="Seconds after which a transition left in flight counts as abandoned and is finished"
    )
    max_cas_retries: int = Field(100, ge=1, description="Optimistic-concurrency retries per message")
