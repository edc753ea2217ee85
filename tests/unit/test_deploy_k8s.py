"""deploy/k8s is validated offline: kustomize (pinned, built from the Go module proxy into
.state/bin) renders the base and the county overlay; core kinds are checked against the
Kubernetes OpenAPI schemas shipped by kubernetes-validate (strict: unknown fields fail), the
operator kinds against the hand-written schemas in deploy/k8s/schemas (only the fields we use)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZE_VERSION = "v5.5.0"
KUBERNETES_VERSION = "1.32.0"
GRACEFUL_TIMEOUT_S = 20
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication-keda-v1alpha1.json",
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmqcluster-rabbitmq-v1beta1.json",
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"): "mongodbcommunity-mongodbcommunity-v1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("rabbitmq.com/v1beta1", "User"): "user-rabbitmq-v1beta1.json",
    ("rabbitmq.com/v1beta1", "Permission"): "permission-rabbitmq-v1beta1.json",
}
REGISTRIES = {"base": ROOT / "deploy" / "config" / "registry" / "changjia.yaml"}
REGISTRIES["overlays/county"] = REGISTRIES["base"].parent / "county"
"""The registry each kustomization ships in its gridwhistle-registry ConfigMap."""


@pytest.fixture(scope="session")
def kustomize() -> Path:
    """The pinned kustomize; `go install`ed into .state/bin on first use (cached afterwards)."""
    target = ROOT / ".state" / "bin" / "kustomize"
    if not target.exists():
        go = shutil.which("go") or "/usr/local/go/bin/go"
        assert Path(go).exists(), "go not found: kustomize is built from the Go module proxy"
        target.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(target.parent)}
        result = subprocess.run(
            [go, "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    return target


def render(kustomize: Path, path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(kustomize), "build", "--load-restrictor", "LoadRestrictionsNone", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session", params=["base", "overlays/county"])
def manifests(request: pytest.FixtureRequest, kustomize: Path) -> list[dict[str, Any]]:
    return render(kustomize, K8S / request.param)


def validate(doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        schema = json.loads((K8S / "schemas" / CRD_SCHEMAS[key]).read_text(encoding="utf-8"))
        jsonschema.validate(doc, schema)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests if d["kind"] == kind}


def test_every_rendered_manifest_is_valid_against_its_schema(manifests: list[dict[str, Any]]) -> None:
    failures = []
    for doc in manifests:
        try:
            validate(doc)
        except Exception as error:  # collect all, report all
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {error}")
    assert not failures, "\n".join(failures)


def test_validation_rejects_a_misspelt_field(manifests: list[dict[str, Any]]) -> None:
    deployment = json.loads(json.dumps(by_kind(manifests, "Deployment")["intake"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = deployment["spec"]["template"]["spec"][
        "containers"
    ][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    scaled = json.loads(json.dumps(by_kind(manifests, "ScaledObject")["dispatch"]))
    scaled["spec"]["triggers"][0]["metadata"]["mode"] = "QueueLenght"
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


def misspelt(doc: dict[str, Any], path: tuple[str | int, ...], key: str, wrong: str) -> dict[str, Any]:
    """A deep copy of ``doc`` with ``key`` of the mapping at ``path`` renamed to ``wrong``."""
    copy: dict[str, Any] = json.loads(json.dumps(doc))
    target: Any = copy
    for step in path:
        target = target[step]
    target[wrong] = target.pop(key)
    return copy


def test_validation_rejects_a_misspelt_field_in_the_monitoring_kinds(manifests: list[dict[str, Any]]) -> None:
    monitor = by_kind(manifests, "ServiceMonitor")["gridwhistle"]
    rule = by_kind(manifests, "PrometheusRule")["gridwhistle"]
    validate(monitor)
    validate(rule)
    for doc, path, key, wrong in (
        (monitor, ("spec",), "jobLabel", "jobLable"),
        (monitor, ("spec", "endpoints", 0), "metricRelabelings", "metricsRelabelings"),
        (monitor, ("spec", "endpoints", 0, "metricRelabelings", 0), "sourceLabels", "source_labels"),
        (rule, ("spec", "groups", 0, "rules", 0), "annotations", "anotations"),
        (rule, ("spec", "groups", 0, "rules", 0), "for", "for_"),
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(misspelt(doc, path, key, wrong))


def test_checked_in_monitoring_equals_the_generator_output() -> None:
    from tools import k8s_monitoring

    assert k8s_monitoring.main(["--check"]) == 0, "run: .venv/bin/python -m tools.k8s_monitoring"


def test_the_prometheus_rule_carries_every_alert_of_the_rule_file(manifests: list[dict[str, Any]]) -> None:
    rule_file = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts" / "gridwhistle.yml").read_text("utf-8"))
    rule = by_kind(manifests, "PrometheusRule")["gridwhistle"]
    assert rule["spec"]["groups"] == rule_file["groups"]
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(alerts) == len(set(alerts)) >= 8


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and the In/NotIn/Exists operators)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        match expression["operator"]:
            case "In" if value not in expression["values"]:
                return False
            case "NotIn" if value in expression["values"]:
                return False
            case "Exists" if value is None:
                return False
            case "DoesNotExist" if value is not None:
                return False
    return True


def test_the_service_monitor_scrapes_intake_dispatch_and_stats_under_their_job_names(
    manifests: list[dict[str, Any]],
) -> None:
    from tools import k8s_monitoring

    config = yaml.safe_load(k8s_monitoring.PROMETHEUS_CONFIG.read_text("utf-8"))
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    monitor = by_kind(manifests, "ServiceMonitor")["gridwhistle"]["spec"]
    services = by_kind(manifests, "Service")
    selected = {name for name, s in services.items() if selects(monitor["selector"], s["metadata"]["labels"])}
    assert selected == {"intake", "dispatch", "stats"}
    (endpoint,) = monitor["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    for name in selected:
        assert endpoint["port"] in {p["name"] for p in services[name]["spec"]["ports"]}
        job = services[name]["metadata"]["labels"][monitor["jobLabel"]]
        assert job == f"gridwhistle-{name}" and jobs[job]["metrics_path"] == endpoint["path"]
        assert endpoint["metricRelabelings"] == k8s_monitoring.relabelings(jobs[job]["metric_relabel_configs"])
    rabbitmq = by_kind(manifests, "ServiceMonitor")["rabbitmq"]["spec"]
    # the labels the RabbitMQ cluster operator puts on the Service of the RabbitmqCluster "rabbitmq"
    operator_labels = {"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/component": "rabbitmq"}
    assert selects(rabbitmq["selector"], operator_labels)
    assert "rabbitmq" in by_kind(manifests, "RabbitmqCluster")
    relabelled = {e["relabelings"][0]["replacement"]: e["path"] for e in rabbitmq["endpoints"]}
    assert relabelled == {name: jobs[name]["metrics_path"] for name in ("rabbitmq", "rabbitmq-per-object")}


def test_services_have_probes_resources_secrets_and_a_long_enough_grace_period(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = by_kind(manifests, "Deployment")
    assert {"intake", "dispatch", "stats", "department-bot"} <= set(deployments)
    for name in ("intake", "dispatch", "stats"):
        pod = deployments[name]["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > GRACEFUL_TIMEOUT_S
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
        assert secret_refs == {"gridwhistle-secrets", f"gridwhistle-gw-{name}"}  # its own broker user's
    assert not by_kind(manifests, "Secret"), "secrets are referenced, never committed"


def test_every_service_has_a_service_and_a_disruption_budget(manifests: list[dict[str, Any]]) -> None:
    assert {"intake", "dispatch", "stats"} <= set(by_kind(manifests, "Service"))
    assert {"intake", "dispatch", "stats", "department-bot"} <= set(by_kind(manifests, "PodDisruptionBudget"))


def test_keda_scales_dispatch_stats_and_bots_on_queue_length(manifests: list[dict[str, Any]]) -> None:
    scaled = by_kind(manifests, "ScaledObject")
    queues = {name: {t["metadata"]["queueName"] for t in s["spec"]["triggers"]} for name, s in scaled.items()}
    assert queues["dispatch"] == {"dispatch.events", "dispatch.commands"}
    assert queues["stats"] == {"stats.events"}
    assert all(q.startswith("dept.") for q in queues["department-bot"])
    deployments = set(by_kind(manifests, "Deployment"))
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()} <= deployments


def test_config_maps_carry_the_registry_rules_and_alerts(manifests: list[dict[str, Any]]) -> None:
    names = {n.rsplit("-", 1)[0]: d for n, d in by_kind(manifests, "ConfigMap").items()}
    assert "changjia.yaml" in names["gridwhistle-registry"]["data"]
    assert "routing.yaml" in names["gridwhistle-routing"]["data"]
    assert "groups:" in names["gridwhistle-prometheus-rules"]["data"]["gridwhistle.yml"]


def test_county_overlay_runs_the_whole_county_on_clusters(kustomize: Path) -> None:
    county = render(kustomize, K8S / "overlays" / "county")
    registry = next(d for d in county if d["metadata"]["name"].startswith("gridwhistle-registry"))
    assert len([k for k in registry["data"] if k.startswith("town")]) == 9
    assert by_kind(county, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3
    assert by_kind(county, "MongoDBCommunity")["mongodb"]["spec"]["members"] == 3
    assert all(d["metadata"].get("namespace") == "gridwhistle" for d in county if d["kind"] != "Namespace")


def test_every_dashboard_ships_as_a_configmap_for_the_grafana_sidecar(kustomize: Path) -> None:
    from tools import dashboards

    for path in (K8S / "base", K8S / "overlays" / "county"):
        maps = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in render(kustomize, path) if d["kind"] == "ConfigMap"}
        board = maps["gridwhistle-grafana-dashboards"]
        assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert set(board["data"]) == {d.filename for d in dashboards.dashboards()}
        for name, text in board["data"].items():
            assert text == (dashboards.DASHBOARD_DIR / name).read_text(encoding="utf-8")
        assert maps["gridwhistle-grafana-datasource"]["metadata"]["labels"]["grafana_datasource"] == "1"


def test_checked_in_service_and_department_users_equal_the_generator_output() -> None:
    from tools import k8s_broker_users

    assert k8s_broker_users.main(["--check"]) == 0, "run: .venv/bin/python -m tools.k8s_broker_users"


def department_objects(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {
        n: d
        for n, d in by_kind(manifests, kind).items()
        if d["metadata"]["labels"]["app.kubernetes.io/name"] == "department-user"
    }


@pytest.mark.parametrize("path", sorted(REGISTRIES))
def test_every_registry_department_has_a_broker_user_and_its_permissions(kustomize: Path, path: str) -> None:
    from shared.registry import load_registry
    from shared.topology import department_permissions, department_user
    from tools.k8s_broker_users import credentials_secret

    rendered = render(kustomize, K8S / path)
    users, permissions = department_objects(rendered, "User"), department_objects(rendered, "Permission")
    departments = [d.department_id for d in load_registry(REGISTRIES[path]).all_departments()]
    assert len(users) == len(permissions) == len(departments) == len(set(departments))
    cluster = {"name": next(iter(by_kind(rendered, "RabbitmqCluster")))}
    by_department = {u["metadata"]["annotations"]["gridwhistle.io/department-id"]: u for u in users.values()}
    assert set(by_department) == set(departments)
    for department, user in by_department.items():
        name = user["metadata"]["name"]
        assert user["metadata"]["annotations"]["gridwhistle.io/username"] == department_user(department)
        assert user["spec"] == {
            "rabbitmqClusterReference": cluster,
            "importCredentialsSecret": {"name": credentials_secret(department)},
        }
        permission = permissions[name]["spec"]
        assert permission["userReference"] == {"name": name}
        assert permission["rabbitmqClusterReference"] == cluster and permission["vhost"] == "/"
        assert permission["permissions"] == department_permissions(department)
    assert not by_kind(rendered, "Secret"), "the credentials are imported from Secrets made outside git"


def test_validation_rejects_a_misspelt_field_in_the_broker_user_kinds(manifests: list[dict[str, Any]]) -> None:
    user = next(iter(by_kind(manifests, "User").values()))
    permission = next(iter(by_kind(manifests, "Permission").values()))
    validate(user)
    validate(permission)
    for doc, path, key, wrong in (
        (user, ("spec",), "importCredentialsSecret", "importCredentialSecret"),
        (user, ("spec",), "rabbitmqClusterReference", "rabbitMQClusterReference"),
        (permission, ("spec", "permissions"), "configure", "configur"),
        (permission, ("spec",), "userReference", "userRef"),
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(misspelt(doc, path, key, wrong))


def test_the_department_bot_connects_as_its_departments_own_user(manifests: list[dict[str, Any]]) -> None:
    from shared.topology import department_user
    from tools.k8s_broker_users import credentials_secret
    from tools.rabbitmq_definitions import BOT_DEPARTMENT, K8S_TARGET

    container = by_kind(manifests, "Deployment")["department-bot"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["gridwhistle", "dept", "work", BOT_DEPARTMENT]
    env = {e["name"]: e for e in container["env"]}
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env.values() if "secretKeyRef" in e.get("valueFrom", {})}
    department_secret = credentials_secret(BOT_DEPARTMENT)
    assert department_secret in refs and "department-amqp-url" not in str(container)
    user = next(
        u
        for u in by_kind(manifests, "User").values()
        if u["spec"]["importCredentialsSecret"]["name"] == department_secret
    )
    assert user["metadata"]["annotations"]["gridwhistle.io/department-id"] == BOT_DEPARTMENT
    # the URL is assembled from that Secret's keys (dependent env vars) and names the RabbitmqCluster's Service
    url = env["GW_AMQP_URL"]["value"]
    for var in ("DEPT_AMQP_USERNAME", "DEPT_AMQP_PASSWORD"):
        assert f"$({var})" in url and list(env).index(var) < list(env).index("GW_AMQP_URL")
        assert env[var]["valueFrom"]["secretKeyRef"]["name"] == department_secret
    assert url.endswith(f"@{next(iter(by_kind(manifests, 'RabbitmqCluster')))}:5672/")
    # the operator owns the department users: none in the definitions (re-imported without a password at boot)
    definitions = json.loads(K8S_TARGET.read_text(encoding="utf-8"))
    assert department_user(BOT_DEPARTMENT) not in {u["name"] for u in definitions["users"]}
    assert not any(u["name"].startswith("dept-") for u in definitions["users"])


def test_the_secrets_listing_names_every_secret_a_user_imports(
    kustomize: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools import k8s_broker_users

    assert k8s_broker_users.main(["--secrets", "county"]) == 0
    listed = dict(line.split(" ") for line in capsys.readouterr().out.splitlines())
    users = by_kind(render(kustomize, K8S / "overlays" / "county"), "User").values()
    assert set(listed) == {u["spec"]["importCredentialsSecret"]["name"] for u in users}
    assert {listed[u["spec"]["importCredentialsSecret"]["name"]] for u in users} == {
        u["metadata"]["annotations"]["gridwhistle.io/username"] for u in users
    }


SERVICES = ("intake", "dispatch", "stats")


def test_each_service_connects_as_its_own_broker_user_with_exactly_its_permissions(
    manifests: list[dict[str, Any]],
) -> None:
    from shared.topology import QUEUE_OWNERS, service_permissions, service_user
    from tools.k8s_broker_users import service_credentials_secret
    from tools.rabbitmq_definitions import OPERATOR_USER

    assert set(QUEUE_OWNERS) == set(SERVICES)
    deployments = by_kind(manifests, "Deployment")
    users, permissions = by_kind(manifests, "User"), by_kind(manifests, "Permission")
    cluster = next(iter(by_kind(manifests, "RabbitmqCluster")))
    imported = {u["spec"]["importCredentialsSecret"]["name"]: u for u in users.values()}
    secrets = set()
    for name in SERVICES:
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        secret = service_credentials_secret(name)
        secrets.add(secret)
        # the URL is assembled from its own Secret's keys (dependent env vars, defined before it)
        assert env["GW_AMQP_URL"]["value"] == f"amqp://$(AMQP_USERNAME):$(AMQP_PASSWORD)@{cluster}:5672/"
        for var, key in (("AMQP_USERNAME", "username"), ("AMQP_PASSWORD", "password")):
            assert env[var]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
            assert list(env).index(var) < list(env).index("GW_AMQP_URL")
        # nothing else of the broker: no management URL, no other AMQP key of the shared Secret
        assert "GW_AMQP_MANAGEMENT_URL" not in env
        shared_keys = {
            e["valueFrom"]["secretKeyRef"]["key"] for e in env.values() if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert not {k for k in shared_keys if "amqp" in k}, shared_keys
        # that Secret is the one the service's User imports, and its Permission is service_permissions
        user = imported[secret]
        username = user["metadata"]["annotations"]["gridwhistle.io/username"]
        assert username == service_user(name) != OPERATOR_USER
        assert user["metadata"]["name"] == username
        assert user["spec"]["rabbitmqClusterReference"] == {"name": cluster}
        permission = permissions[user["metadata"]["name"]]["spec"]
        assert permission["userReference"] == {"name": user["metadata"]["name"]}
        assert (permission["vhost"], permission["rabbitmqClusterReference"]) == ("/", {"name": cluster})
        assert permission["permissions"] == service_permissions(name)
    assert len(secrets) == len(SERVICES)


def test_the_secrets_listing_gives_each_service_its_own_username_and_never_the_operators(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shared.topology import service_user
    from tools import k8s_broker_users
    from tools.rabbitmq_definitions import OPERATOR_USER

    for deployment in ("base", "county"):
        assert k8s_broker_users.main(["--secrets", deployment]) == 0
        listed = dict(line.split(" ") for line in capsys.readouterr().out.splitlines())
        for name in SERVICES:
            assert listed[k8s_broker_users.service_credentials_secret(name)] == service_user(name)
        assert OPERATOR_USER not in listed.values()


def test_k8s_definitions_keep_only_the_operator_and_monitoring_users() -> None:
    """Service users are the topology operator's (a definitions user is re-imported without a password
    at every broker boot); the operator's user is an administrator that no manifest connects as."""
    from tools.rabbitmq_definitions import K8S_TARGET, OPERATOR_USER

    definitions = json.loads(K8S_TARGET.read_text(encoding="utf-8"))
    assert {u["name"]: u["tags"] for u in definitions["users"]} == {
        OPERATOR_USER: ["administrator"],
        "monitoring": ["monitoring"],
    }


def test_no_manifest_connects_as_the_operator_user(manifests: list[dict[str, Any]]) -> None:
    from tools.rabbitmq_definitions import OPERATOR_USER

    for deployment in by_kind(manifests, "Deployment").values():
        text = json.dumps(deployment)
        assert f"//{OPERATOR_USER}:" not in text and "amqp-management-url" not in text
    (auth,) = by_kind(manifests, "TriggerAuthentication").values()
    assert [(r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]] == [
        ("gridwhistle-secrets", "keda-amqp-url")
    ]
