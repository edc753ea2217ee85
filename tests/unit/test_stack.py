"""The local stack's pure logic: local vs external, decisions, rendering, parsing, pid ownership."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from shared.settings import PROJECT_ROOT, GwSettings
from shared.stack import core, health, install, procs
from shared.stack.cli import stack_app
from shared.stack.components import Component, Mongo, Postgres, StackContext, make_components
from shared.stack.model import (
    COMPONENTS,
    ENV_COMPONENT,
    ENV_OWNER,
    UNIX_SOCKET_PATH_MAX,
    Action,
    Health,
    ProcSignature,
    SelectionError,
    StackError,
    StackPaths,
    apt_lists_present,
    decide_action,
    ferretdb_argv,
    ferretdb_identity,
    format_address,
    initdb_argv,
    is_local_host,
    needs_rebuild,
    parse_amqp_url,
    parse_cmdline,
    parse_environ,
    parse_epmd_names,
    parse_proc_net_tcp,
    parse_proc_stat_state,
    pick_postgres_version,
    pidfile_matches,
    postgres_argv,
    postgresql_url,
    prometheus_argv,
    psql_argv,
    rabbitmq_env,
    render_enabled_plugins,
    render_pg_hba,
    render_postgres_bootstrap_sql,
    render_rabbitmq_conf,
    select_components,
    split_names,
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
        "127.0.0.1:5433",
        "127.0.0.1:27017",
        "127.0.0.1:9090",
    ]
    assert all(c.is_local() for c in comps.values())


# --- component selection ------------------------------------------------------------------


def test_select_defaults_to_everything() -> None:
    assert select_components() == COMPONENTS


def test_select_only_accepts_commas_repeats_and_aliases_in_start_order() -> None:
    assert select_components(["prometheus,rabbit", "ferretdb"]) == ("rabbitmq", "mongo", "prometheus")
    assert select_components(["mongo, rabbitmq"]) == ("rabbitmq", "mongo")


def test_select_without() -> None:
    assert select_components(without=["prometheus"]) == ("rabbitmq", "mongo")
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
    env = rabbitmq_env(paths, 5673)
    assert env["RABBITMQ_NODENAME"] == "gridwhistle@localhost"
    assert env["HOME"] == str(paths.rabbitmq)
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


def test_ferretdb_and_prometheus_command_lines(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "state", tmp_path)
    assert ferretdb_argv(paths, "localhost", 27017) == [
        str(paths.ferretdb_bin),
        "-listen",
        "127.0.0.1:27017",
        "-handler",
        "sqlite",
        "-sqlite-dir",
        str(paths.state / "ferretdb" / "data"),
    ]
    assert ferretdb_argv(paths, "127.0.0.1", 27017, postgresql_url="postgres://ferretdb@127.0.0.1:5433/ferretdb") == [
        str(paths.ferretdb_bin),
        "-listen",
        "127.0.0.1:27017",
        "-handler",
        "postgresql",
        "-postgresql-url",
        "postgres://ferretdb@127.0.0.1:5433/ferretdb",
    ]
    assert ferretdb_argv(paths, "::1", 27018)[2] == "[::1]:27018"
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
    assert paths.ferretdb_bin == tmp_path / "s" / "bin" / "gw-ferretdb"
    assert paths.ferretdb_src == tmp_path / "repo" / "deploy" / "local" / "ferretdb"


# --- FerretDB backend and our PostgreSQL cluster ------------------------------------------


def test_ferretdb_backend_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GwSettings().ferretdb_backend == "postgresql"
    monkeypatch.setenv("GW_FERRETDB_BACKEND", "sqlite")
    assert GwSettings().ferretdb_backend == "sqlite"
    monkeypatch.setenv("GW_FERRETDB_BACKEND", "mysql")
    with pytest.raises(ValidationError):
        GwSettings()


def _comps(tmp_path: Path, **settings: Any) -> dict[str, Component]:
    return make_components(StackContext(GwSettings(state_dir=tmp_path, **settings), StackPaths(tmp_path, PROJECT_ROOT)))


def test_mongo_on_postgresql_depends_on_our_postgres(tmp_path: Path) -> None:
    comps = _comps(tmp_path)
    mongo, postgres = comps["mongo"], comps["postgres"]
    assert isinstance(mongo, Mongo)
    assert isinstance(postgres, Postgres)
    assert mongo.dependencies() == [postgres]
    assert mongo.identity == "127.0.0.1:27017 (postgresql)"
    assert mongo.command()[-4:] == ["-handler", "postgresql", "-postgresql-url", postgresql_url()]
    assert postgres.address_text == "127.0.0.1:5433"
    assert postgres.is_local()


def test_mongo_on_sqlite_needs_no_postgres(tmp_path: Path) -> None:
    mongo = _comps(tmp_path, ferretdb_backend="sqlite")["mongo"]
    assert mongo.dependencies() == []
    assert mongo.identity == "127.0.0.1:27017 (sqlite)"
    assert mongo.command()[-4:] == ["-handler", "sqlite", "-sqlite-dir", str(tmp_path / "ferretdb" / "data")]


def _no_running_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Postgres, "pid", lambda self: None)


def test_selection_adds_postgres_only_for_a_local_ferretdb_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_running_postgres(monkeypatch)

    def names(comps: dict[str, Component]) -> list[str]:
        return [c.name for c in core._selected(["mongo"], comps)]

    assert names(_comps(tmp_path)) == ["postgres", "mongo"]
    assert names(_comps(tmp_path, ferretdb_backend="sqlite")) == ["mongo"]
    # An external store: neither FerretDB nor PostgreSQL is ours to start.
    assert names(_comps(tmp_path, mongo_url="mongodb://db.example:27017")) == ["mongo"]
    assert [c.name for c in core._selected(COMPONENTS, _comps(tmp_path))] == [
        "epmd",
        "rabbitmq",
        "postgres",
        "mongo",
        "prometheus",
    ]


def test_down_and_status_still_cover_a_running_postgres_after_switching_to_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Postgres, "pid", lambda self: 4242)
    comps = _comps(tmp_path, ferretdb_backend="sqlite")
    assert [c.name for c in core._selected(["mongo"], comps)] == ["postgres", "mongo"]


def test_remote_mongo_is_only_checked_and_starts_no_postgres(
    ctx: StackContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = GwSettings(state_dir=ctx.paths.state, mongo_url="mongodb://db.example:27017")
    comps = make_components(StackContext(settings, ctx.paths))
    touched: list[str] = []
    monkeypatch.setattr(Mongo, "health", lambda self, timeout=2.0: Health(True, "MongoDB 7.0"))
    monkeypatch.setattr(Postgres, "install", lambda self: touched.append("install"))

    def probe(self: Postgres, timeout: float = 2.0) -> Health:
        touched.append("probe")
        return Health(False, "x")

    monkeypatch.setattr(Postgres, "probe", probe)
    assert core.bring_up(comps["mongo"]).action is Action.REMOTE
    assert touched == []


def test_pidfile_matches() -> None:
    assert pidfile_matches(None, "127.0.0.1:27017 (postgresql)")
    assert pidfile_matches("127.0.0.1:27017 (postgresql)", "127.0.0.1:27017 (postgresql)")
    assert pidfile_matches("127.0.0.1:27017", "127.0.0.1:27017 (postgresql)")  # older pid file: cannot tell
    assert not pidfile_matches("127.0.0.1:27017 (sqlite)", "127.0.0.1:27017 (postgresql)")
    assert not pidfile_matches("127.0.0.1:27018", "127.0.0.1:27017 (postgresql)")
    assert not pidfile_matches("127.0.0.1:6666", "127.0.0.1:7777")
    assert ferretdb_identity("127.0.0.1:27017", "sqlite") == "127.0.0.1:27017 (sqlite)"


def test_postgresql_url() -> None:
    assert postgresql_url() == "postgres://ferretdb@127.0.0.1:5433/ferretdb"
    assert postgresql_url("::1", 5434, "r", "d") == "postgres://r@[::1]:5434/d"


def test_pick_postgres_version() -> None:
    assert pick_postgres_version(["15"]) == "15"
    assert pick_postgres_version(["9.6", "15", "16", "README"]) == "16"
    assert pick_postgres_version(["15", "16"], data_version="15") == "15"  # the data dir's version wins
    assert pick_postgres_version(["16"], data_version="15") is None
    assert pick_postgres_version([]) is None


def test_pg_hba_trusts_loopback_tcp_only() -> None:
    rules = [line.split() for line in render_pg_hba().splitlines() if line and not line.startswith("#")]
    assert rules == [["local", "all", "all", "peer"], ["host", "all", "all", "127.0.0.1/32", "trust"]]


def test_postgres_command_line(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "state", tmp_path)
    argv = postgres_argv("/usr/lib/postgresql/15/bin", paths)
    assert argv[:7] == [
        "setpriv",
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--",
        "/usr/lib/postgresql/15/bin/postgres",
        "-D",
    ]
    assert argv[7] == str(tmp_path / "state" / "postgres" / "data")
    settings = dict(arg.split("=", 1) for arg in argv[9::2])
    assert argv[8::2] == ["-c"] * len(settings)
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "port": "5433",
        "unix_socket_directories": str(paths.postgres_run),
        "hba_file": str(paths.postgres_hba),
        "max_connections": "200",
        "shared_buffers": "256MB",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }


def test_postgres_drops_a_unix_socket_path_too_long_for_sun_path(tmp_path: Path) -> None:
    deep = StackPaths(tmp_path / ("d" * UNIX_SOCKET_PATH_MAX), tmp_path)
    assert "-c" in postgres_argv("/b", deep)
    assert "unix_socket_directories=" in postgres_argv("/b", deep)


def test_initdb_and_psql_run_as_the_postgres_user(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path, tmp_path)
    init = initdb_argv("/pg/bin", paths)
    assert init[:5] == ["runuser", "-u", "postgres", "--", "/pg/bin/initdb"]
    assert init[5:7] == ["-D", str(paths.postgres_data)]
    assert "--username=postgres" in init
    assert "--auth-host=reject" in init
    psql = psql_argv("/pg/bin")
    assert psql[:5] == ["runuser", "-u", "postgres", "--", "/pg/bin/psql"]
    assert psql[psql.index("-h") : psql.index("-h") + 6] == ["-h", "127.0.0.1", "-p", "5433", "-U", "postgres"]
    assert psql[-2:] == ["-f", "-"]


def test_postgres_bootstrap_sql_is_idempotent_and_checked() -> None:
    sql = render_postgres_bootstrap_sql()
    assert sql.splitlines() == [
        "SELECT 'CREATE ROLE ferretdb LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferretdb')\\gexec",
        "SELECT 'CREATE DATABASE ferretdb OWNER ferretdb' WHERE NOT EXISTS "
        "(SELECT FROM pg_database WHERE datname = 'ferretdb')\\gexec",
    ]
    with pytest.raises(ValueError, match="plain PostgreSQL identifier"):
        render_postgres_bootstrap_sql(role="x'; DROP DATABASE y; --")


def test_postgres_health_of_a_closed_port() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert health.postgres_health("127.0.0.1", port, "/nonexistent/pg_isready", timeout=0.5) == Health(
        False, "connection refused"
    )


def test_postgres_paths(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "s", tmp_path)
    assert paths.postgres_data == tmp_path / "s" / "postgres" / "data"
    assert paths.postgres_run == tmp_path / "s" / "postgres" / "run"
    assert paths.postgres_hba == tmp_path / "s" / "postgres" / "pg_hba.conf"


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


def test_ferretdb_launcher_sources() -> None:
    src = PROJECT_ROOT / "deploy" / "local" / "ferretdb"
    go_mod = (src / "go.mod").read_text()
    assert go_mod.startswith("module gridwhistle/deploy/local/ferretdb\n")
    assert "\ngo 1.24\n" in go_mod
    assert "github.com/FerretDB/FerretDB v1.24.2" in go_mod
    assert "github.com/FerretDB/FerretDB v1.24.2 h1:" in (src / "go.sum").read_text()
    main = (src / "main.go").read_text()
    for needle in (
        '"listen"',
        '"sqlite-dir"',
        '"handler", "postgresql"',  # the default backend
        '"postgresql-url"',
        'case "postgresql":',
        'case "sqlite":',
        "signal.NotifyContext",
    ):
        assert needle in main


# --- parsing /proc, epmd, logs ------------------------------------------------------------


def test_parse_cmdline_and_environ() -> None:
    assert parse_cmdline(b"/bin/sh\0/usr/lib/rabbitmq/bin/rabbitmq-server\0") == [
        "/bin/sh",
        "/usr/lib/rabbitmq/bin/rabbitmq-server",
    ]
    assert parse_cmdline(b"") == []
    assert parse_environ(b"A=1\0B=x=y\0junk\0") == {"A": "1", "B": "x=y"}


def test_parse_proc_stat_state_survives_odd_names() -> None:
    assert parse_proc_stat_state("42 (sh) S 1 42 42 0") == "S"
    assert parse_proc_stat_state("42 (a) b) (c) Z 1 42") == "Z"


def test_parse_epmd_names() -> None:
    data = b"\x00\x00\x11\x11name gridwhistle at port 25672\nname rabbitmqcli-1 at port 40000\n"
    assert parse_epmd_names(data) == ["gridwhistle", "rabbitmqcli-1"]
    assert parse_epmd_names(b"\x00\x00\x11\x11") == []


def test_parse_proc_net_tcp_finds_listeners_only() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:6989 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1\n"
        "   1: 0100007F:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1\n"
        "   2: 0100007F:1628 0100007F:D3A4 01 00000000:00000000 00:00000000 00000000     0        0 333 1\n"
    )
    assert parse_proc_net_tcp(table, 27017) == {111}
    assert parse_proc_net_tcp(table, 5672) == {222}
    assert parse_proc_net_tcp(table, 9090) == set()


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
    fields: dict[str, Any] = {"component": "mongo", "owner": "/repo/.state", "programs": frozenset({"gw-ferretdb"})}
    return ProcSignature(**{**fields, **changes})


def test_signature_needs_program_and_markers() -> None:
    cmd = ["/repo/.state/bin/gw-ferretdb", "-listen", "127.0.0.1:27017"]
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
    cmd = ["/repo/.state/bin/gw-ferretdb", "-sqlite-dir", "/repo/.state/ferretdb/data"]
    assert _sig().matches(cmd, None)
    assert not _sig().matches(["/opt/gw-ferretdb", "-sqlite-dir", "/elsewhere"], None)


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


def test_needs_rebuild() -> None:
    assert needs_rebuild(None, [1.0])
    assert needs_rebuild(5.0, [1.0, 6.0])
    assert not needs_rebuild(5.0, [1.0, 5.0])


def test_go_build_skipped_when_binary_is_newer(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("main.go", "go.mod", "go.sum"):
        (src / name).write_text("x")
        os.utime(src / name, (1_000, 1_000))
    binary = tmp_path / "bin" / "gw-ferretdb"
    binary.parent.mkdir()
    binary.write_text("built")
    said: list[str] = []
    assert not install.go_build("mongo", src, binary, log=tmp_path / "b.log", say=said.append)
    assert said == []


def test_go_build_reports_missing_sources(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="sources missing"):
        install.go_build("mongo", tmp_path, tmp_path / "bin", log=tmp_path / "b.log", say=lambda _: None)


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
        return f"{self.address_text} (postgresql)"

    def dependencies(self) -> list[Component]:
        return [self.dependency]


def test_bring_up_of_a_running_component_brings_its_dependency_up_first(ctx: StackContext) -> None:
    recorded: list[str] = []
    ctx.record = lambda result: recorded.append(f"{result.name}:{result.action}")
    dependency = FakeComponent(ctx, ours=7, ok=True)
    result = core.bring_up(FakeWithDependency(ctx, dependency, ours=99, ok=True))
    assert (result.action, recorded) == (Action.OURS_RUNNING, ["fake:ours-running"])


def test_bring_up_notices_a_changed_backend(ctx: StackContext) -> None:
    procs.write_pidfile(ctx.paths.pidfile("fake"), 99, "127.0.0.1:7777 (sqlite)")
    comp = FakeWithDependency(ctx, FakeComponent(ctx, ours=7, ok=True), ours=99, ok=True)
    with pytest.raises(
        StackError, match=r"serves 127\.0\.0\.1:7777 \(sqlite\) but the configuration now says .*postgresql"
    ):
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
    _no_running_postgres(monkeypatch)
    comps = _comps(tmp_path)
    assert [c.name for c in core._selected(["mongo"], comps, exact=True)] == ["mongo"]
    assert [c.name for c in core._selected(["prometheus", "epmd"], comps, exact=True)] == ["epmd", "prometheus"]
