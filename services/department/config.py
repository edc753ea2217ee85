"""Settings of the department side (``gridwhistle dept``; environment prefix ``GW_``)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import GwSettings


class DepartmentSettings(GwSettings):
    """``GwSettings`` plus where the department's open matters are read back from on start."""

    dept_stats_url: str = Field(
        "http://127.0.0.1:8030", description="The stats API the inbox reloads its open matters from"
    )
    dept_stats_timeout: float = Field(5.0, gt=0, le=60, description="Timeout of one stats API call")
