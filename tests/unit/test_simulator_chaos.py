"""The chaos run's books: lag, recovery, verdict and the table (pure; no stack needed)."""

from __future__ import annotations

import pytest

from services.simulator.chaos import FaultRow, ReadModelWatcher, chaos_markdown, recovered_after, select_faults
from services.simulator.faults import FAULTS, SHORT

pytestmark = pytest.mark.unit


def _row(**changes: object) -> FaultRow:
    fields: dict[str, object] = {
        "fault": "SIGKILL dispatch replica 1",
        "note": "",
        "attempted": 48,
        "acknowledged": 48,
        "lost": 0,
        "duplicated": 0,
        "recovered_s": 3.0,
        "max_latency_s": 0.4,
        "answers_503": 0,
        "server_errors": 0,
        "figures_equal": True,
        "fault_at_s": 4.0,
        "fault_seconds": 5.0,
    }
    fields.update(changes)
    return FaultRow(**fields)  # type: ignore[arg-type]


def test_lag_is_acknowledged_minus_counted_since_the_first_reading() -> None:
    watcher = ReadModelWatcher(["http://127.0.0.1:1"], ["t"])
    watcher.series = [(0.0, 100), (1.0, 101), (2.0, 101), (3.0, 104)]
    accepted_at = [0.5, 0.6, 1.5, 2.5, 2.6]
    assert watcher.lag(accepted_at) == [(0.0, 0), (1.0, 1), (2.0, 2), (3.0, 1)]


def test_recovery_waits_for_a_new_acknowledgement_and_the_lag_to_settle() -> None:
    lag = [(0.0, 1), (1.0, 1), (2.0, 6), (3.0, 9), (4.0, 4), (5.0, 1), (6.0, 0)]
    # Fault at 1.5 s; intake acknowledges again at 1.6 s; the lag is back to its lead-in value at 5 s.
    assert recovered_after(lag, [0.5, 1.6, 2.2], fault_start=1.5, floor=1) == pytest.approx(3.5)


def test_recovery_counts_from_the_fault_even_when_intake_is_down_for_a_while() -> None:
    lag = [(0.0, 0), (1.0, 0), (2.0, 0), (3.0, 0), (9.0, 0)]
    # Nothing is acknowledged between 1 s and 8 s (intake killed): recovered at the first reading after 8 s.
    assert recovered_after(lag, [0.5, 8.0], fault_start=1.0, floor=1) == pytest.approx(8.0)


def test_no_recovery_when_nothing_is_acknowledged_after_the_fault() -> None:
    assert recovered_after([(0.0, 0), (5.0, 0)], [0.2], fault_start=1.0, floor=1) is None


def test_no_recovery_while_the_read_models_stay_behind() -> None:
    assert recovered_after([(0.0, 0), (2.0, 5), (3.0, 8)], [0.1, 1.5], fault_start=1.0, floor=2) is None


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        ({}, True),
        ({"lost": 1}, False),
        ({"duplicated": 1}, False),
        ({"server_errors": 1}, False),
        ({"figures_equal": False}, False),
        ({"recovered_s": None}, False),
        ({"recovered_s": 30.5}, False),
        ({"answers_503": 12}, True),  # a 503 is the honest "retry later"
    ],
)
def test_a_row_is_clean_only_without_loss_duplicates_server_errors_or_slow_recovery(
    change: dict[str, object], ok: bool
) -> None:
    assert _row(**change).ok is ok


def test_every_issue_fault_is_in_the_run_and_the_short_run_is_a_service_and_a_node_kill() -> None:
    keys = [fault.key for fault in FAULTS]
    assert keys == [
        "kill-intake",
        "kill-dispatch-1",
        "kill-dispatch-2",
        "kill-stats-1",
        "kill-stats-2",
        "kill-leader-node",
        "pause-node",
        "restart-store",
        "disk-alarm",
        "poison",
        "burst",
    ]
    assert SHORT == ("kill-dispatch-1", "kill-leader-node")
    assert [f.key for f in select_faults(list(SHORT))] == list(SHORT)
    with pytest.raises(ValueError, match="unknown fault"):
        select_faults(["kill-everything"])


def test_markdown_table_has_one_row_per_fault_with_the_jepsen_columns() -> None:
    text = chaos_markdown([_row(), _row(fault="restart the store", recovered_s=None)], "title")
    header = next(line for line in text.splitlines() if line.startswith("| fault"))
    for column in ("attempted", "acknowledged (202)", "lost", "duplicated", "recovered after (s)", "max client"):
        assert column in header
    assert "| SIGKILL dispatch replica 1 | 48 | 48 | 0 | 0 | 3.0 | 0.4 | 0 | 0 |" in text
    assert "| restart the store | 48 | 48 | 0 | 0 | never |" in text
