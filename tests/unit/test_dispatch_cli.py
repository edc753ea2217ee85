"""``gridwhistle dispatch rules check`` and ``explain`` as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.dispatch.cli import dispatch_app
from shared.settings import GwSettings

pytestmark = pytest.mark.unit

runner = CliRunner()


def test_rules_check_accepts_the_shipped_file() -> None:
    result = runner.invoke(dispatch_app, ["rules", "check", str(GwSettings().rules_path)])
    assert result.exit_code == 0, result.output
    assert "17 rules" in result.output


def test_rules_check_rejects_an_unknown_department_and_says_where(tmp_path: Path) -> None:
    bad = tmp_path / "routing.yaml"
    text = GwSettings().rules_path.read_text(encoding="utf-8")
    bad.write_text(text.replace('"{town}.service_center"', '"{town}.no_such_office"', 1), encoding="utf-8")
    result = runner.invoke(dispatch_app, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert "open311-service-item" in result.output and "changjia.no_such_office" in result.output


def test_explain_prints_the_winning_rule_and_why_earlier_rules_were_skipped() -> None:
    args = ["explain", "--grid", "changjia-g017", "--category", "dispute", "--severity", "major", "--stage", "whistled"]
    result = runner.invoke(dispatch_app, args)
    assert result.exit_code == 0, result.output
    assert "match whistled-dispute" in result.output
    assert "skip urgent-dispute: stage is whistled" in result.output
    assert "changjia.judicial_mediation" in result.output
