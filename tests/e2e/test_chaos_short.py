"""The short chaos run ``make test`` does: on the real three-node cluster, with two replicas of
dispatch and stats, one service replica and then the node leading the department queues are
SIGKILLed under load; both rows must have lost nothing, counted nothing twice and recovered in time.
(The whole fault table is ``make chaos``.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.simulator.chaos import RECOVERY_GOAL
from services.simulator.faults import SHORT
from shared.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_short_chaos_on_the_cluster_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    faults = [arg for key in SHORT for arg in ("--fault", key)]
    timing = ["--rate", "4", "--lead", "3", "--tail", "5", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "chaos", *faults, *timing],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    rows = figures["rows"]
    assert [row["fault"] for row in rows] == [
        "SIGKILL dispatch replica 1",
        "kill the node leading the department queues",
    ]
    assert figures["broker_nodes"] == 3 and figures["replicas"] == {"dispatch": 2, "stats": 2}
    for row in rows:
        assert row["acknowledged"] == row["attempted"] > 0, row
        assert row["lost"] == 0 and row["duplicated"] == 0, row
        assert row["server_errors"] == 0 and row["figures_equal"], row
        assert row["recovered_s"] is not None and row["recovered_s"] <= RECOVERY_GOAL, row
    assert "| kill the node leading the department queues |" in out.with_suffix(".md").read_text()
