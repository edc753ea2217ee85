"""deploy/compose is validated offline: interpolated like `docker compose config` would,
then checked against the compose specification's JSON schema (vendored by check-jsonschema),
plus the promises the schema cannot see (mounted files exist, grace period, replicas)."""

from __future__ import annotations

import json
import re
import shlex
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yml"
GRACEFUL_TIMEOUT_S = 20
SERVICES = ("intake", "dispatch", "stats")

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


@pytest.mark.parametrize("variable", ["GW_RABBITMQ_PASSWORD", *(f"GW_RABBITMQ_{s.upper()}_PASSWORD" for s in SERVICES)])
def test_a_missing_required_secret_fails_interpolation(variable: str) -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    env = read_env(COMPOSE_DIR / ".env.example")
    del env[variable]
    with pytest.raises(AssertionError, match=variable):
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


def unique_broker_passwords() -> dict[str, str]:
    """.env.example with every broker password replaced by a token found nowhere else, so that finding
    one in a container's environment means that container was given it."""
    env = read_env(COMPOSE_DIR / ".env.example")
    return {
        k: f"pw{i}x{k.lower()}" if k.startswith("GW_RABBITMQ_") and k.endswith("PASSWORD") else v
        for i, (k, v) in enumerate(env.items())
    }


@pytest.fixture(scope="module")
def compose_with_unique_passwords() -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return dict(interpolate(raw, unique_broker_passwords()))


def definitions_of_compose() -> dict[str, Any]:
    definitions: dict[str, Any] = json.loads((COMPOSE_DIR / "rabbitmq" / "definitions.json").read_text("utf-8"))
    return definitions


def passwords_set_by_init(compose: dict[str, Any]) -> dict[str, str]:
    """user -> the password rabbitmq-init gives it (its `change_password` lines, the variables resolved
    from the init container's own environment as the shell would)."""
    init = compose["services"]["rabbitmq-init"]
    (script,) = init["command"]
    passwords = {}
    for step in script.split("&&"):
        words = shlex.split(step)
        assert words[:3] == ["rabbitmqctl", "-n", "rabbit@rabbitmq"] and words[3] == "change_password", step
        user, value = words[4], words[5]
        assert value.startswith("$"), f"{user}: the password must come from the environment, not the script"
        passwords[user] = init["environment"][value.removeprefix("$")]
    return passwords


def test_each_service_connects_as_its_own_broker_user_with_its_own_password(
    compose_with_unique_passwords: dict[str, Any],
) -> None:
    from shared.topology import service_user
    from tools.rabbitmq_definitions import OPERATOR_USER

    compose = compose_with_unique_passwords
    env_file = unique_broker_passwords()
    init_passwords = passwords_set_by_init(compose)
    seen = set()
    for name in SERVICES:
        environment = compose["services"][name]["environment"]
        url = urlsplit(environment["GW_AMQP_URL"])
        assert (url.scheme, url.hostname, url.port) == ("amqp", "rabbitmq", 5672)
        user, password = unquote(url.username or ""), unquote(url.password or "")
        assert user == service_user(name) != OPERATOR_USER
        assert password == env_file[f"GW_RABBITMQ_{name.upper()}_PASSWORD"] == init_passwords[user]
        seen.add(password)
        # no management URL either: the operator's user is the only one that could use it
        assert "GW_AMQP_MANAGEMENT_URL" not in environment
    assert len(seen) == len(SERVICES)
    example = read_env(COMPOSE_DIR / ".env.example")
    examples = [example[f"GW_RABBITMQ_{n.upper()}_PASSWORD"] for n in SERVICES] + [example["GW_RABBITMQ_PASSWORD"]]
    assert len(set(examples)) == len(examples), "the example gives every user a password of its own"


def test_no_container_but_the_password_step_holds_the_operator_credentials(
    compose_with_unique_passwords: dict[str, Any],
) -> None:
    from tools.rabbitmq_definitions import OPERATOR_USER

    operator_password = unique_broker_passwords()["GW_RABBITMQ_PASSWORD"]
    assert operator_password in json.dumps(compose_with_unique_passwords["services"]["rabbitmq-init"])
    for name, service in compose_with_unique_passwords["services"].items():
        if name != "rabbitmq-init":
            text = json.dumps(service.get("environment", {}))
            assert operator_password not in text and f"//{OPERATOR_USER}:" not in text, name


def test_compose_definitions_give_each_service_user_exactly_its_permissions(compose: dict[str, Any]) -> None:
    from shared.topology import QUEUE_OWNERS, service_permissions, service_user
    from tools.rabbitmq_definitions import OPERATOR_USER

    definitions = definitions_of_compose()
    users = {u["name"]: u for u in definitions["users"]}
    permissions = {p["user"]: p for p in definitions["permissions"]}
    assert len(permissions) == len(definitions["permissions"]), "one permission entry per user"
    assert set(QUEUE_OWNERS) == set(SERVICES)
    for name in SERVICES:
        user = service_user(name)
        assert users[user]["tags"] == []  # no management API access
        assert permissions[user] == {"user": user, "vhost": "/", **service_permissions(name)}
    assert users[OPERATOR_USER]["tags"] == ["administrator"]
    # every user the definitions create gets a password from rabbitmq-init, and nothing else does
    assert set(passwords_set_by_init(compose)) == set(users)
