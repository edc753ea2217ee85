"""Grid bearer tokens and Open311 api keys: signing, scope, rotation, CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from services.intake.config import IntakeSettings
from services.intake.tokens import TokenError, issue_token, tokens_app, verify_token
from tests.factories import CHANGJIA_YAML

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.unit

SECRET = SecretStr("unit-test-secret-of-at-least-32-bytes")
OLD = SecretStr("the-previous-secret-still-accepted-00")


def test_grid_token_round_trip_names_town_and_grid() -> None:
    claims = verify_token(issue_token(SECRET, town_id="changjia", grid_id="changjia-g001"), [SECRET], kind="grid")
    assert (claims.town_id, claims.grid_id, claims.kind) == ("changjia", "changjia-g001", "grid")
    assert claims.may_report_for("changjia", "changjia-g001")
    assert not claims.may_report_for("changjia", "changjia-g002")


def test_town_wide_open311_key_covers_the_towns_grids_only() -> None:
    claims = verify_token(
        issue_token(SECRET, town_id="changjia", grid_id=None, kind="open311"), [SECRET], kind="open311"
    )
    assert claims.may_report_for("changjia", "changjia-g042")
    assert not claims.may_report_for("town02", "town02-g001")


def test_token_of_the_other_kind_is_refused() -> None:
    key = issue_token(SECRET, town_id="changjia", grid_id="changjia-g001", kind="open311")
    with pytest.raises(TokenError):
        verify_token(key, [SECRET], kind="grid")


def test_tampered_unknown_secret_and_expired_tokens_are_refused() -> None:
    token = issue_token(SECRET, town_id="changjia", grid_id="changjia-g001")
    head, payload, signature = token.split(".")
    with pytest.raises(TokenError):
        verify_token(f"{head}.{payload}.{signature[::-1]}", [SECRET], kind="grid")
    with pytest.raises(TokenError):
        verify_token(token, [OLD], kind="grid")
    expired = issue_token(
        SECRET,
        town_id="changjia",
        grid_id="changjia-g001",
        valid_for=timedelta(days=1),
        now=datetime.now(UTC) - timedelta(days=2),
    )
    with pytest.raises(TokenError):
        verify_token(expired, [SECRET], kind="grid")
    with pytest.raises(TokenError):
        verify_token("not-a-token", [SECRET], kind="grid")


def test_tokens_signed_with_a_previous_secret_are_accepted_during_rotation() -> None:
    settings = IntakeSettings(token_secret=SECRET, token_secrets_previous=f" {OLD.get_secret_value()} ,")
    old_token = issue_token(OLD, town_id="changjia", grid_id="changjia-g001")
    assert verify_token(old_token, settings.verification_secrets(), kind="grid").grid_id == "changjia-g001"
    assert len(settings.verification_secrets()) == 2


def test_cli_issues_a_token_for_a_registered_grid_and_refuses_an_unknown_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_REGISTRY_PATH", str(CHANGJIA_YAML))
    monkeypatch.setenv("GW_TOKEN_SECRET", SECRET.get_secret_value())
    runner = CliRunner()
    issued = runner.invoke(tokens_app, ["issue", "--grid", "changjia-g017", "--days", "30"])
    assert issued.exit_code == 0, issued.output
    claims = verify_token(issued.output.strip(), [SECRET], kind="grid")
    assert (claims.town_id, claims.grid_id) == ("changjia", "changjia-g017")
    key = runner.invoke(tokens_app, ["issue", "--open311", "--town", "changjia"])
    assert verify_token(key.output.strip(), [SECRET], kind="open311").grid_id is None
    unknown = runner.invoke(tokens_app, ["issue", "--grid", "changjia-g999"])
    assert unknown.exit_code != 0
