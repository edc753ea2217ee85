"""The local stack's pure logic: local vs external, decisions, rendering, parsing, pid ownership."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shared.settings import PROJECT_ROOT, GwSettings
from tools.stack import core, install, procs
from tools.stack.cli import stack_app
from tools.stack.components import Component, Mongo, StackContext, make_components
from tools.stack.core import start_groups
from tools.stack.model import (
    CLUSTER,
    COMPONENTS,
    ENV_COMPONENT,
    ENV_OWNER,
    STORE_VERSION,
    Action,
    Health,
    ProcSignature,
    SelectionError,
    StackError,
    StackPaths,
    apt_lists_present,
    cargo_build_env,
    cargo_install_argv,
    cluster_failover,
    cluster_nodes,
    decide_action,
    format_address,
    is_local_host,
    parse_amqp_url,
    parse_cargo_progress,
    parse_epmd_names,
    pidfile_matches,
    prometheus_argv,
    rabbitmq_env,
    render_enabled_plugins,
    render_rabbitmq_conf,
    select_components,
    single_node,
    split_names,
    store_argv,
    store_binary,
    store_cache_dir,
    store_identity,
    tail_lines,
)

pytestmark = pytest.mark.unit


# --- local vs external, and what `up` does -------------------------------------------------


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("rabbit.internal", False),
        ("10.0.0.5", False),
        ("127.0.0.2", False),
        ("0.0.0.0", False),
    ],
)
def test_is_local_host(host: str, local: bool) -> None:
    assert is_local_host(host) is local


@pytest.mark.parametrize(
    ("local", "ours", "healthy", "busy", "expected"),
    [
        (False, False, False, False, Action.REMOTE),
        (False, True, True, True, Action.REMOTE),
        (True, True, True, True, Action.OURS_RUNNING),
        (True, True, False, True, Action.OURS_UNHEALTHY),
        (True, False, True, True, Action.FOREIGN_RUNNING),
        (True, False, False, True, Action.PORT_BUSY),
        (True, False, False, False, Action.START),
    ],
)
def test_decide_action(local: bool, ours: bool, healthy: bool, busy: bool, expected: Action) -> None:
    assert decide_action(local=local, ours_alive=ours, healthy=healthy, port_in_use=busy) is expected


def test_remote_urls_make_components_external(tmp_path: Path) -> None:
    settings = GwSettings(
        amqp_url="amqp://u:p@rabbit.example:5672/", mongo_url="mongodb://db.example:27017", state_dir=tmp_path
    )
    comps = make_components(StackContext(settings, StackPaths(tmp_path, PROJECT_ROOT)))
    assert not comps["rabbitmq"].is_local()
    assert not comps["mongo"].is_local()
    assert comps["prometheus"].is_local()
    assert comps["epmd"].is_local()


def test_default_urls_are_local(tmp_path: Path) -> None:
    settings = GwSettings(state_dir=tmp_path)
    comps = make_components(StackContext(settings, StackPaths(tmp_path, PROJECT_ROOT)))
    assert [c.address_text for c in comps.values()] == [
        "127.0.0.1:4369",
        "127.0.0.1:5672",
        "127.0.0.1:27017",
        "127.0.0.1:9090",
        "127.0.0.1:9095",
        "127.0.0.1:9093",
        "127.0.0.1:5701",
        "127.0.0.1:5702",
        "127.0.0.1:5703",
    ]
    assert all(c.is_local() for c in comps.values())


# --- component selection ------------------------------------------------------------------


def test_select_defaults_to_everything() -> None:
    assert select_components() == COMPONENTS


def test_select_only_accepts_commas_repeats_and_aliases_in_start_order() -> None:
    assert select_components(["prometheus,rabbit", "store"]) == ("rabbitmq", "mongo", "prometheus")
    assert select_components(["mongo, rabbitmq"]) == ("rabbitmq", "mongo")


def test_select_without() -> None:
    assert select_components(without=["prometheus"]) == ("rabbitmq", "mongo", "alertmanager")
    assert select_components(["rabbitmq,mongo"], ["mongo"]) == ("rabbitmq",)


def test_select_rejects_unknown_and_empty() -> None:
    with pytest.raises(SelectionError, match="unknown component 'redis'"):
        select_components(["redis"])
    with pytest.raises(SelectionError, match="no component"):
        select_components(["mongo"], ["mongodb"])


def test_split_names() -> None:
    assert split_names(["a,b", " c ", "", "D,,e"]) == ["a", "b", "c", "d", "e"]


# --- URLs and config rendering ------------------------------------------------------------


def test_parse_amqp_url_defaults() -> None:
    target = parse_amqp_url("amqp://guest:guest@127.0.0.1:5672/")
    assert (target.host, target.port, target.vhost, target.tls) == ("127.0.0.1", 5672, "/", False)
    assert target.uses_defaults
    assert parse_amqp_url("amqp://127.0.0.1").vhost == "/"
    assert parse_amqp_url("amqp://localhost/%2F").vhost == "/"


def test_parse_amqp_url_custom() -> None:
    target = parse_amqp_url("amqps://gw:s%40cret@broker.example/grid%2Fwhistle")
    assert (target.username, target.password, target.vhost) == ("gw", "s@cret", "grid/whistle")
    assert (target.port, target.tls) == (5671, True)
    assert not target.uses_defaults


def test_rabbitmq_conf_binds_loopback_only() -> None:
    conf = render_rabbitmq_conf(5673)
    assert "listeners.tcp.default = 127.0.0.1:5673\n" in conf
    assert "management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = 15672\n" in conf
    assert "prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = 15692\n" in conf
    assert "0.0.0.0" not in conf
    assert "loopback_users" not in conf
    assert "listeners.tcp.default = 127.0.0.1:5672" in render_rabbitmq_conf(5672, amqp_host="localhost")


def test_enabled_plugins() -> None:
    assert render_enabled_plugins() == "[rabbitmq_management,rabbitmq_prometheus].\n"


def test_rabbitmq_env_keeps_everything_under_state(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "state", tmp_path)
    env = rabbitmq_env(paths, single_node("127.0.0.1", 5673))
    assert env["RABBITMQ_NODENAME"] == "gridwhistle@localhost"
    assert env["HOME"] == str(paths.rabbitmq)
    assert env["RABBITMQ_DIST_PORT"] == "25673"
    for key in (
        "RABBITMQ_MNESIA_BASE",
        "RABBITMQ_LOG_BASE",
        "RABBITMQ_CONFIG_FILE",
        "RABBITMQ_ENABLED_PLUGINS_FILE",
        "RABBITMQ_PID_FILE",
        "RABBITMQ_CONF_ENV_FILE",
        "RABBITMQ_ADVANCED_CONFIG_FILE",
        "ERL_CRASH_DUMP",
    ):
        assert Path(env[key]).is_relative_to(paths.state), key
    assert env["RABBITMQ_DIST_PORT"] == "25673"
    assert env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    assert "inet_dist_use_interface {127,0,0,1}" in env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert "inet_dist_use_interface {127,0,0,1}" in env["RABBITMQ_CTL_ERL_ARGS"]


def test_store_and_prometheus_command_lines(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "state", tmp_path)
    binary = tmp_path / "cache" / "bin" / "secantusd-rs"
    assert store_argv(binary, paths, "localhost", 27017) == [
        str(binary),
        "--host",
        "127.0.0.1",
        "--port",
        "27017",
        "--storage-path",
        str(paths.state / "store" / "data"),
        "--cache-size",
        "256M",
    ]
    assert store_argv(binary, paths, "::1", 27018)[1:5] == ["--host", "::1", "--port", "27018"]
    argv = prometheus_argv("/usr/bin/prometheus", paths)
    assert f"--config.file={tmp_path / 'deploy' / 'prometheus' / 'prometheus.yml'}" in argv
    assert f"--storage.tsdb.path={paths.state / 'prometheus'}" in argv
    assert "--web.listen-address=127.0.0.1:9090" in argv
    assert "--web.enable-lifecycle" in argv


def test_format_address() -> None:
    assert format_address("127.0.0.1", 1) == "127.0.0.1:1"
    assert format_address("::1", 2) == "[::1]:2"


def test_paths_live_under_state_and_repo(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "s", tmp_path / "repo")
    assert paths.pidfile("mongo") == tmp_path / "s" / "pids" / "mongo.pid"
    assert paths.log("rabbitmq") == tmp_path / "s" / "logs" / "rabbitmq.log"
    assert paths.store_data == tmp_path / "s" / "store" / "data"


# --- the local store: built once per machine, outside the work tree ------------------------


def test_store_build_is_cached_per_machine_keyed_by_version(tmp_path: Path) -> None:
    cache = store_cache_dir(tmp_path / ".cache")
    assert cache == tmp_path / ".cache" / "gridwhistle" / f"secantus-mdb-{STORE_VERSION}"
    assert store_cache_dir(tmp_path, "9.9.9") != store_cache_dir(tmp_path)
    assert store_binary(cache) == cache / "root" / "bin" / "secantusd-rs"
    argv = cargo_install_argv("/x/cargo", cache)
    assert argv[:3] == ["/x/cargo", "install", "secantus-mdb"]
    assert argv[argv.index("--version") + 1] == STORE_VERSION
    assert {"--locked", "--ignore-rust-version"} <= set(argv)
    assert argv[argv.index("--root") + 1] == str(cache / "root")
    env = cargo_build_env(cache, 2)
    assert env["CARGO_TARGET_DIR"] == str(cache / "target")  # an interrupted build resumes
    assert (env["CARGO_PROFILE_RELEASE_LTO"], env["CARGO_BUILD_JOBS"]) == ("false", "2")


def test_cargo_progress_lines() -> None:
    assert parse_cargo_progress("   Compiling serde_core v1.0.229") == "serde_core"
    assert parse_cargo_progress("  Downloaded adler2 v2.0.1") is None


def test_store_build_is_skipped_when_the_cache_holds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = store_cache_dir(tmp_path)
    store_binary(cache).parent.mkdir(parents=True)
    store_binary(cache).write_text("built")
    monkeypatch.setattr(install, "find_cargo", lambda: pytest.fail("cargo must not run"))
    said: list[str] = []
    assert not install.cargo_install_store("mongo", cache, log=tmp_path / "b.log", say=said.append)
    assert said == []


def test_store_build_without_cargo_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install, "find_cargo", lambda: None)
    with pytest.raises(StackError, match="cargo"):
        install.cargo_install_store("mongo", store_cache_dir(tmp_path), log=tmp_path / "b.log", say=lambda _: None)


def test_store_cache_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert install.cache_home() == tmp_path
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert install.cache_home() == Path.home() / ".cache"


def _comps(tmp_path: Path, **settings: Any) -> dict[str, Component]:
    return make_components(StackContext(GwSettings(state_dir=tmp_path, **settings), StackPaths(tmp_path, PROJECT_ROOT)))


def test_mongo_is_the_local_store_with_no_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    mongo = _comps(tmp_path)["mongo"]
    assert isinstance(mongo, Mongo)
    assert mongo.dependencies() == []
    assert mongo.identity == f"127.0.0.1:27017 (secantus-mdb {STORE_VERSION})"
    assert mongo.command()[0] == str(store_binary(store_cache_dir(tmp_path / "cache")))
    assert mongo.command()[-4:] == ["--storage-path", str(tmp_path / "store" / "data"), "--cache-size", "256M"]


def test_selection_of_the_stack(tmp_path: Path) -> None:
    def names(comps: dict[str, Component]) -> list[str]:
        return [c.name for c in core._selected(["mongo"], comps)]

    assert names(_comps(tmp_path)) == ["mongo"]
    assert names(_comps(tmp_path, mongo_url="mongodb://db.example:27017")) == ["mongo"]
    assert [c.name for c in core._selected(COMPONENTS, _comps(tmp_path))] == [
        "epmd",
        "rabbitmq",
        "mongo",
        "prometheus",
        "alert-inbox",
        "alertmanager",
    ]


def test_alertmanager_runs_single_node_on_loopback_with_its_inbox(tmp_path: Path) -> None:
    comps = _comps(tmp_path)
    argv = comps["alertmanager"].command()
    assert argv[0].endswith("prometheus-alertmanager")
    assert f"--config.file={PROJECT_ROOT / 'deploy' / 'alertmanager' / 'alertmanager.yml'}" in argv
    assert f"--storage.path={tmp_path / 'alertmanager'}" in argv
    assert "--web.listen-address=127.0.0.1:9093" in argv
    assert "--cluster.listen-address=" in argv  # no HA gossip port on 0.0.0.0
    assert [c.name for c in comps["alertmanager"].dependencies()] == ["alert-inbox"]
    inbox = comps["alert-inbox"].command()
    assert inbox[1] == str(PROJECT_ROOT / "tools" / "alert_inbox.py")
    assert inbox[-2:] == ["--log", str(tmp_path / "alerts" / "inbox.jsonl")]
    assert select_components(["am"]) == ("alertmanager",)


def test_remote_mongo_is_only_checked_and_builds_nothing(ctx: StackContext, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = GwSettings(state_dir=ctx.paths.state, mongo_url="mongodb://db.example:27017")
    comps = make_components(StackContext(settings, ctx.paths))
    touched: list[str] = []
    monkeypatch.setattr(Mongo, "health", lambda self, timeout=2.0: Health(True, "MongoDB 7.0"))
    monkeypatch.setattr(Mongo, "install", lambda self: touched.append("install"))
    assert core.bring_up(comps["mongo"]).action is Action.REMOTE
    assert touched == []


def test_pidfile_matches() -> None:
    wanted = store_identity("127.0.0.1:27017")
    assert pidfile_matches(None, wanted)
    assert pidfile_matches(wanted, wanted)
    assert pidfile_matches("127.0.0.1:27017", wanted)  # older pid file: cannot tell
    assert not pidfile_matches(store_identity("127.0.0.1:27017", "0.0.1"), wanted)
    assert not pidfile_matches("127.0.0.1:27018", wanted)
    assert not pidfile_matches("127.0.0.1:6666", "127.0.0.1:7777")


# --- shipped files ------------------------------------------------------------------------


def test_prometheus_config_scrapes_services_and_rabbitmq() -> None:
    config: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "5s"
    assert config["rule_files"] == ["alerts/*.yml"]
    jobs = {
        job["job_name"]: (job.get("metrics_path", "/metrics"), job["static_configs"][0]["targets"])
        for job in config["scrape_configs"]
    }
    assert jobs == {
        "gridwhistle-intake": ("/metrics", ["127.0.0.1:8010"]),
        "gridwhistle-dispatch": ("/metrics", ["127.0.0.1:8020"]),
        "gridwhistle-stats": ("/metrics", ["127.0.0.1:8030"]),
        "rabbitmq": ("/metrics", ["127.0.0.1:15692"]),
        "rabbitmq-per-object": ("/metrics/per-object", ["127.0.0.1:15692"]),
    }


def test_parse_epmd_names() -> None:
    data = b"\x00\x00\x11\x11name gridwhistle at port 25672\nname rabbitmqcli-1 at port 40000\n"
    assert parse_epmd_names(data) == ["gridwhistle", "rabbitmqcli-1"]
    assert parse_epmd_names(b"\x00\x00\x11\x11") == []


def test_listener_pid_finds_the_process_listening_on_a_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert procs.listener_pid(port) == os.getpid()
    assert procs.listener_pid(port) is None


def test_tail_lines() -> None:
    assert tail_lines("a\nb\nc\n", 2) == ["b", "c"]
    assert tail_lines("", 5) == []
    assert tail_lines("only", 5) == ["only"]


def test_read_tail_of_missing_and_big_files(tmp_path: Path) -> None:
    assert procs.read_tail(tmp_path / "nope.log") == []
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(50_000)))
    assert procs.read_tail(log, 3) == ["line 49997", "line 49998", "line 49999"]


# --- process ownership --------------------------------------------------------------------


def _sig(**changes: Any) -> ProcSignature:
    fields: dict[str, Any] = {"component": "mongo", "owner": "/repo/.state", "programs": frozenset({"secantusd-rs"})}
    return ProcSignature(**{**fields, **changes})


def test_signature_needs_program_and_markers() -> None:
    cmd = ["/root/.cache/gridwhistle/s/root/bin/secantusd-rs", "--port", "27017"]
    env = {ENV_OWNER: "/repo/.state", ENV_COMPONENT: "mongo"}
    assert _sig().matches(cmd, env)
    assert not _sig().matches(cmd, {**env, ENV_OWNER: "/other/.state"})
    assert not _sig().matches(cmd, {**env, ENV_COMPONENT: "prometheus"})
    assert not _sig().matches(cmd, {})
    assert not _sig().matches(["/usr/bin/python3", "x.py"], env)
    assert not _sig().matches([], env)  # zombie or gone


def test_signature_accepts_script_under_interpreter() -> None:
    sig = _sig(component="rabbitmq", programs=frozenset({"rabbitmq-server", "beam.smp"}))
    env = {ENV_OWNER: "/repo/.state", ENV_COMPONENT: "rabbitmq"}
    assert sig.matches(["/bin/sh", "/usr/lib/rabbitmq/bin/rabbitmq-server"], env)


def test_signature_without_readable_environ_falls_back_to_cmdline() -> None:
    cmd = ["/c/bin/secantusd-rs", "--storage-path", "/repo/.state/store/data"]
    assert _sig().matches(cmd, None)
    assert not _sig().matches(["/opt/secantusd-rs", "--storage-path", "/elsewhere"], None)


def test_pidfile_roundtrip(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids" / "mongo.pid"
    procs.write_pidfile(pidfile, 1234, "127.0.0.1:27017")
    assert procs.read_pidfile(pidfile) == 1234
    assert procs.read_pidfile_address(pidfile) == "127.0.0.1:27017"
    pidfile.write_text("5678\n")  # older format: pid only
    assert procs.read_pidfile(pidfile) == 5678
    assert procs.read_pidfile_address(pidfile) is None
    pidfile.write_text("garbage")
    assert procs.read_pidfile(pidfile) is None
    assert procs.read_pidfile(tmp_path / "missing.pid") is None


def test_spawned_process_is_recognised_and_stopped(tmp_path: Path) -> None:
    sig = ProcSignature("sleeper", str(tmp_path), frozenset({Path(sys.executable).name}))
    env = procs.child_env("sleeper", str(tmp_path), {})
    proc = procs.spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"], env=env, log=tmp_path / "s.log", cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 5
        while not procs.is_ours(proc.pid, sig) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert procs.is_ours(proc.pid, sig)
        assert os.getpgid(proc.pid) == proc.pid  # own session: Ctrl-C in our terminal does not reach it
        assert not procs.is_ours(proc.pid, ProcSignature("sleeper", "/other", sig.programs))
        assert not procs.is_ours(os.getpid(), sig)  # we lack the markers
        assert procs.terminate(proc.pid, sig, timeout=5) == "stopped"
        assert not procs.is_alive(proc.pid)
        assert procs.terminate(proc.pid, sig) == "not running"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert "gridwhistle stack:" in (tmp_path / "s.log").read_text()


# --- install helpers ----------------------------------------------------------------------


def test_policy_rc_d_created_then_removed(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    with install.policy_rc_d(policy) as created:
        assert created
        assert policy.read_text().rstrip().endswith("exit 101")
        assert os.access(policy, os.X_OK)
        assert subprocess.run([str(policy)], check=False).returncode == 101
    assert not policy.exists()


def test_policy_rc_d_removed_after_failure(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    with pytest.raises(RuntimeError), install.policy_rc_d(policy):
        raise RuntimeError("apt failed")
    assert not policy.exists()


def test_policy_rc_d_existing_one_is_left_alone(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    with install.policy_rc_d(policy) as created:
        assert not created
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"


def test_apt_lists_present() -> None:
    assert apt_lists_present(["deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"])
    assert apt_lists_present(["x_binary-amd64_Packages.lz4"])
    assert not apt_lists_present(["lock", "partial", "x_InRelease"])


# --- orchestration with a fake component --------------------------------------------------


class FakeComponent(Component):
    name = "fake"
    programs = frozenset({"fake"})

    def __init__(self, ctx: StackContext, *, host: str = "127.0.0.1", ours: int | None = None, ok: bool = False):
        super().__init__(ctx)
        self.host, self.ours, self.ok = host, ours, ok
        self.started = False

    def address(self) -> tuple[str, int]:
        return self.host, 7777

    def pid(self) -> int | None:
        return self.ours

    def health(self, timeout: float = 2.0) -> Health:
        return Health(self.ok, "fine" if self.ok else "refused")

    def probe(self, timeout: float = 2.0) -> Health:
        return self.health(timeout)

    def command(self) -> list[str]:
        self.started = True
        raise StackError(self.name, "would start")


@pytest.fixture
def ctx(tmp_path: Path) -> StackContext:
    return StackContext(GwSettings(state_dir=tmp_path), StackPaths(tmp_path, PROJECT_ROOT))


def test_bring_up_leaves_a_running_foreign_service_alone(ctx: StackContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "listener_pid", lambda port: 4242)
    comp = FakeComponent(ctx, ok=True)
    result = core.bring_up(comp)
    assert (result.action, result.pid) == (Action.FOREIGN_RUNNING, 4242)
    assert not comp.started


def test_bring_up_reuses_ours(ctx: StackContext) -> None:
    result = core.bring_up(FakeComponent(ctx, ours=99, ok=True))
    assert (result.action, result.pid) == (Action.OURS_RUNNING, 99)


def test_bring_up_remote_only_checks(ctx: StackContext) -> None:
    comp = FakeComponent(ctx, host="db.example", ok=True)
    assert core.bring_up(comp).action is Action.REMOTE
    assert not comp.started


def test_bring_up_remote_down_fails_loudly(ctx: StackContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "EXTERNAL_WAIT", 0.0)
    with pytest.raises(StackError, match=r"external db\.example:7777 is not healthy: refused"):
        core.bring_up(FakeComponent(ctx, host="db.example"))


def test_bring_up_refuses_a_busy_port(ctx: StackContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "port_open", lambda host, port, timeout=0.5: True)
    monkeypatch.setattr(core, "listener_pid", lambda port: 31337)
    comp = FakeComponent(ctx)
    with pytest.raises(StackError, match=r"taken by a process we did not start \(pid 31337\)"):
        core.bring_up(comp)
    assert not comp.started


def test_bring_up_starts_when_nothing_is_there(ctx: StackContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "port_open", lambda host, port, timeout=0.5: False)
    comp = FakeComponent(ctx)
    with pytest.raises(StackError, match="would start"):
        core.bring_up(comp)
    assert comp.started


def test_bring_up_notices_a_changed_address(ctx: StackContext) -> None:
    procs.write_pidfile(ctx.paths.pidfile("fake"), 99, "127.0.0.1:6666")
    with pytest.raises(StackError, match=r"serves 127\.0\.0\.1:6666 but the configuration now says 127\.0\.0\.1:7777"):
        core.bring_up(FakeComponent(ctx, ours=99, ok=True))


class FakeWithDependency(FakeComponent):
    def __init__(self, ctx: StackContext, dependency: Component, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.dependency = dependency

    @property
    def identity(self) -> str:
        return f"{self.address_text} (v2)"

    def dependencies(self) -> list[Component]:
        return [self.dependency]


def test_bring_up_of_a_running_component_brings_its_dependency_up_first(ctx: StackContext) -> None:
    recorded: list[str] = []
    ctx.record = lambda result: recorded.append(f"{result.name}:{result.action}")
    dependency = FakeComponent(ctx, ours=7, ok=True)
    result = core.bring_up(FakeWithDependency(ctx, dependency, ours=99, ok=True))
    assert (result.action, recorded) == (Action.OURS_RUNNING, ["fake:ours-running"])


def test_bring_up_notices_a_changed_version(ctx: StackContext) -> None:
    procs.write_pidfile(ctx.paths.pidfile("fake"), 99, "127.0.0.1:7777 (v1)")
    comp = FakeWithDependency(ctx, FakeComponent(ctx, ours=7, ok=True), ours=99, ok=True)
    with pytest.raises(StackError, match=r"serves 127\.0\.0\.1:7777 \(v1\) but the configuration now says .*v2"):
        core.bring_up(comp)
    procs.write_pidfile(ctx.paths.pidfile("fake"), 99, "127.0.0.1:7777")  # older pid file: reused
    assert core.bring_up(comp).action is Action.OURS_RUNNING


# --- CLI ----------------------------------------------------------------------------------


def test_cli_help_lists_commands() -> None:
    result = CliRunner().invoke(stack_app, ["--help"])
    assert result.exit_code == 0
    for command in ("up", "down", "status"):
        assert command in result.output


def test_cli_rejects_unknown_component() -> None:
    result = CliRunner().invoke(stack_app, ["up", "--only", "redis"])
    assert result.exit_code == 2
    assert "unknown component 'redis'" in result.output


def test_exact_selection_names_only_what_was_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``gridwhistle run`` stops exactly the components it started, not their dependencies."""
    comps = _comps(tmp_path)
    assert [c.name for c in core._selected(["mongo"], comps, exact=True)] == ["mongo"]
    assert [c.name for c in core._selected(["prometheus", "epmd"], comps, exact=True)] == ["epmd", "prometheus"]


# --- the local three-node cluster -----------------------------------------------------------


def test_cluster_is_selected_only_when_asked() -> None:
    assert not set(CLUSTER) & set(select_components())
    assert select_components(cluster=True) == (*COMPONENTS, *CLUSTER)
    assert select_components(["cluster"]) == CLUSTER
    assert select_components(["mongo", "rabbitmq-2"]) == ("mongo", "rabbitmq-2")
    assert select_components(["cluster"], ["rabbitmq-3"]) == ("rabbitmq-1", "rabbitmq-2")


def test_cluster_nodes_start_one_after_the_other_beside_the_rest() -> None:
    names = select_components(["mongo", "cluster", "prometheus"])
    assert start_groups(names) == [["mongo"], ["prometheus"], ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]]
    # Once formed, a restarted node waits for the peers it last saw: all of them start together.
    assert start_groups(names, cluster_formed=True) == [[name] for name in names]


def test_cluster_counts_as_formed_once_a_node_has_its_database(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "state", tmp_path)
    assert not core.cluster_formed(paths)
    node = cluster_nodes()[2]
    (paths.rabbit_home(node) / "mnesia" / node.nodename).mkdir(parents=True)
    assert core.cluster_formed(paths)


def test_cluster_nodes_have_their_own_names_ports_and_homes() -> None:
    nodes = cluster_nodes()
    assert [n.component for n in nodes] == list(CLUSTER)
    assert len({n.nodename for n in nodes}) == len({n.home for n in nodes}) == 3
    ports = [p for n in nodes for p in (n.amqp_port, n.management_port, n.prometheus_port, n.dist_port)]
    single = single_node("127.0.0.1", 5672)
    assert len(set(ports)) == 12
    assert not set(ports) & {single.amqp_port, single.management_port, single.prometheus_port, single.dist_port}
    assert all(n.peers == tuple(m.nodename for m in nodes) for n in nodes)
    assert cluster_failover() == "127.0.0.1:5702,127.0.0.1:5703"


def test_cluster_conf_discovers_its_peers_and_balances_quorum_leaders() -> None:
    node = cluster_nodes()[1]
    conf = render_rabbitmq_conf(
        node.amqp_port, management_port=node.management_port, prometheus_port=node.prometheus_port, peers=node.peers
    )
    assert "listeners.tcp.default = 127.0.0.1:5702\n" in conf
    assert "cluster_formation.peer_discovery_backend = classic_config\n" in conf
    for i, peer in enumerate(node.peers, 1):
        assert f"cluster_formation.classic_config.nodes.{i} = {peer}\n" in conf
    assert "queue_leader_locator = balanced\n" in conf
    assert "cluster_partition_handling = autoheal\n" in conf
    assert "net_ticktime = 10\n" in conf
    assert "cluster_formation" not in render_rabbitmq_conf(5672)


def test_cluster_nodes_keep_their_state_apart(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "state", tmp_path)
    homes = {rabbitmq_env(paths, node)["HOME"] for node in cluster_nodes()}
    assert len(homes) == 3
    assert all(Path(home).is_relative_to(paths.cluster) for home in homes)
