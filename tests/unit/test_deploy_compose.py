"""deploy/compose is validated offline: interpolated like `docker compose config` would,
then checked against the compose specification's JSON schema (vendored by check-jsonschema),
plus the promises the schema cannot see (mounted files exist, grace period, replicas)."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yml"
GRACEFUL_TIMEOUT_S = 20

_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name is None:
            return "$"
        current = env.get(name)
        if op in (":-", "-") and (current is None or (op == ":-" and current == "")):
            return arg
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise AssertionError(f"required variable {name} unset: {arg}")
        return current or ""

    return _VAR.sub(substitute, value)


def compose_schema() -> dict[str, Any]:
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return dict(interpolate(raw, read_env(COMPOSE_DIR / ".env.example")))


def test_compose_file_is_valid_against_the_compose_specification_schema(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(compose_schema())
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_schema_validation_catches_a_broken_compose_file(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["intake"]["depends_on"] = 5
    broken["services"]["stats"]["healthcheck"]["intervall"] = "15s"
    errors = list(jsonschema.Draft7Validator(compose_schema()).iter_errors(broken))
    assert len(errors) >= 2


def test_a_missing_required_secret_fails_interpolation() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    env = read_env(COMPOSE_DIR / ".env.example")
    del env["GW_RABBITMQ_PASSWORD"]
    with pytest.raises(AssertionError, match="GW_RABBITMQ_PASSWORD"):
        interpolate(raw, env)


def test_compose_runs_the_whole_system_with_replicas(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"rabbitmq", "mongodb", "prometheus", "grafana", "intake", "dispatch", "stats"} <= set(services)
    assert "bots" in services["department-bot"]["profiles"]  # optional
    for name in ("intake", "dispatch", "stats"):
        assert int(services[name]["deploy"]["replicas"]) >= 1
        assert services[name]["environment"]["GW_HTTP_HOST"] == "0.0.0.0"
        grace = services[name]["stop_grace_period"]
        assert grace.endswith("s") and int(grace[:-1]) > GRACEFUL_TIMEOUT_S
        assert services[name]["command"] == ["gridwhistle", name, "serve"]
    assert "--replSet" in services["mongodb"]["command"]
    assert "rs.initiate" in " ".join(services["mongodb"]["healthcheck"]["test"])


def test_every_mounted_file_exists_in_the_repository(compose: dict[str, Any]) -> None:
    missing = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(".") and not (COMPOSE_DIR / source).exists():
                missing.append(f"{name}: {source}")
    assert not missing
    build = compose["services"]["intake"]["build"]
    assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).is_file()


def test_rabbitmq_definitions_enable_the_topology_and_plugins(compose: dict[str, Any]) -> None:
    plugins = (COMPOSE_DIR / "rabbitmq" / "enabled_plugins").read_text(encoding="utf-8")
    assert "rabbitmq_prometheus" in plugins and "rabbitmq_management" in plugins
    definitions = json.loads((COMPOSE_DIR / "rabbitmq" / "definitions.json").read_text(encoding="utf-8"))
    queues = {q["name"]: q for q in definitions["queues"]}
    assert "dept.changjia.civil_affairs" in queues and "dept.changjia.civil_affairs.dead" in queues
    assert queues["stats.events"]["arguments"]["x-queue-type"] == "quorum"
    assert all(u["password_hash"] == "" for u in definitions["users"])  # no secret in git
    assert {p["name"] for p in definitions["policies"]} == {"gw-work-queues", "gw-dead-letters"}


def test_rabbitmq_definitions_are_generated_from_shared_topology() -> None:
    from tools import rabbitmq_definitions

    assert rabbitmq_definitions.main(["--check"]) == 0, "run: .venv/bin/python -m tools.rabbitmq_definitions"
