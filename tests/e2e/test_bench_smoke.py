"""``gridwhistle bench`` at a tiny size: it runs every phase against the real stack and writes
its figures (no figure is judged here: performance lives in ``make bench``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_bench_smoke_profile_runs_every_phase_and_writes_its_json_and_chart(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "bench", "--profile", "smoke", "--out", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [figures] = tmp_path.glob("*.json")
    report = json.loads(figures.read_text())
    assert report["profile"] == "smoke"
    assert report["raw"]["broker"]["messages_per_s"] > 0
    assert report["raw"]["pipeline"]["matters_per_s"] > 0
    assert {"insert_many_per_s", "insert_one_per_s", "update_by_id_per_s"} <= report["raw"]["store"].keys()
    assert report["system"]["matters"] == 30 and report["system"]["figures_equal_plan"] is True
    assert report["stats_alone"]["events_per_s"] > 0
    assert set(report["history"]) == {"300", "600"}
    assert all(
        set(point["reads"]) == {"matter_ms", "town_30_days_ms", "backlog_ms"} for point in report["history"].values()
    )
    assert "system_vs_raw_pipeline" in report["ratios"]
    assert len(report["latency"]) == 2
    assert figures.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
