"""Settings shared by several services: time zones and token secret rotation."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from services.console.config import ConsoleSettings
from services.intake.config import IntakeSettings
from services.stats.config import StatsSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("settings", "field"), [(StatsSettings, "stats_timezone"), (ConsoleSettings, "console_timezone")]
)
def test_an_unknown_time_zone_is_refused_at_start_up_naming_the_setting(settings: type, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        settings(**{field: "Mars/Olympus_Mons"})
    problem = error.value.errors()[0]
    assert problem["loc"] == (field,)
    assert "'Mars/Olympus_Mons' is not a known time zone" in problem["msg"]


def test_the_pages_and_the_counters_use_the_configured_zone() -> None:
    assert StatsSettings(stats_timezone="Asia/Urumqi").zone.key == "Asia/Urumqi"
    assert ConsoleSettings(console_timezone="Asia/Shanghai").zone.key == "Asia/Shanghai"


@pytest.mark.parametrize("settings", [IntakeSettings, ConsoleSettings])
def test_verification_accepts_the_current_secret_first_then_each_previous_one(settings: type) -> None:
    config = settings(token_secret="new-secret", token_secrets_previous=" old-1, ,old-2 ")
    assert [s.get_secret_value() for s in config.verification_secrets()] == ["new-secret", "old-1", "old-2"]
    assert settings(token_secret=SecretStr("only")).verification_secrets() == (SecretStr("only"),)
