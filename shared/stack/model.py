"""Pure logic of the local stack: names, selection, decisions, config rendering, parsing.

Nothing here touches the network, processes or the file system, so all of it is unit tested.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

COMPONENTS: tuple[str, ...] = ("rabbitmq", "mongo", "prometheus")
"""User-selectable components, in start order."""

EPMD = "epmd"
"""Erlang port mapper: started (when needed) together with a local RabbitMQ, not selectable."""

POSTGRES = "postgres"
"""PostgreSQL cluster of the local FerretDB (postgresql backend): started together with it, not selectable."""

ALIASES: Mapping[str, str] = {
    "rabbitmq": "rabbitmq",
    "rabbit": "rabbitmq",
    "amqp": "rabbitmq",
    "mongo": "mongo",
    "mongodb": "mongo",
    "ferretdb": "mongo",
    "prometheus": "prometheus",
    "prom": "prometheus",
}

GUEST_LOGIN = ("guest", "guest", "/")
"""RabbitMQ's built-in user (loopback only) and default vhost: nothing to create."""

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

RABBITMQ_NODENAME = "gridwhistle@localhost"
RABBITMQ_MANAGEMENT_PORT = 15672
RABBITMQ_PROMETHEUS_PORT = 15692
RABBITMQ_PLUGINS: tuple[str, ...] = ("rabbitmq_management", "rabbitmq_prometheus")
EPMD_PORT = 4369
PROMETHEUS_ADDRESS = ("127.0.0.1", 9090)
LOOPBACK = "127.0.0.1"

FERRETDB_BACKENDS: tuple[str, ...] = ("postgresql", "sqlite")
"""Storage backends of the FerretDB launcher (``-handler``); the first is the default."""
POSTGRES_ADDRESS = (LOOPBACK, 5433)
"""Our own cluster: 5433 so that a system PostgreSQL on 5432 does not collide."""
POSTGRES_OS_USER = "postgres"
"""System user created by Debian's postgresql-common; the server refuses to run as root."""
POSTGRES_SUPERUSER = "postgres"
POSTGRES_ROLE = "ferretdb"
POSTGRES_DATABASE = "ferretdb"
POSTGRES_LIB = "/usr/lib/postgresql"
"""Debian installs each major version's programs in ``/usr/lib/postgresql/<version>/bin``."""
UNIX_SOCKET_PATH_MAX = 107
"""``sun_path`` holds 108 bytes including the terminating NUL."""

ENV_OWNER = "GW_STACK_OWNER"
"""Set in the environment of every process we start: the state dir that owns it."""
ENV_COMPONENT = "GW_STACK_COMPONENT"
"""Set in the environment of every process we start: its component name."""


class SelectionError(ValueError):
    """An unknown or empty component selection."""


class StackError(RuntimeError):
    """A component could not be brought up, checked or stopped."""

    def __init__(self, component: str, message: str, logs: Sequence[tuple[Path, list[str]]] = ()) -> None:
        super().__init__(f"{component}: {message}")
        self.component = component
        self.message = message
        self.logs = list(logs)
        """(log file, its last lines) pairs that explain the failure."""


class StackUpError(StackError):
    """One or more components failed during ``up``; ``results`` holds the ones that succeeded."""

    def __init__(self, errors: Sequence[StackError], results: Mapping[str, UpResult]) -> None:
        names = ", ".join(e.component for e in errors)
        super().__init__(names, "; ".join(e.message for e in errors))
        self.errors = list(errors)
        self.results = dict(results)


class Action(enum.StrEnum):
    """What ``up`` does for one component."""

    REMOTE = "remote"
    """Configured URL points elsewhere: start nothing, only check it."""
    OURS_RUNNING = "ours-running"
    """Our process is alive and healthy: nothing to do."""
    OURS_UNHEALTHY = "ours-unhealthy"
    """Our process is alive but does not answer (yet): wait for it."""
    FOREIGN_RUNNING = "foreign-running"
    """Something we did not start answers healthily on the address: use it."""
    PORT_BUSY = "port-busy"
    """Something we did not start holds the port but does not answer as expected: fail."""
    START = "start"
    """Nothing there: install if needed and start it."""


def decide_action(*, local: bool, ours_alive: bool, healthy: bool, port_in_use: bool) -> Action:
    """Decide what ``up`` must do for a component, from what was observed."""
    if not local:
        return Action.REMOTE
    if ours_alive:
        return Action.OURS_RUNNING if healthy else Action.OURS_UNHEALTHY
    if healthy:
        return Action.FOREIGN_RUNNING
    if port_in_use:
        return Action.PORT_BUSY
    return Action.START


def is_local_host(host: str) -> bool:
    """True when ``host`` is this machine's loopback, i.e. a component we may run ourselves."""
    return host.strip("[]").lower() in LOCAL_HOSTS


def bind_host(host: str) -> str:
    """The loopback address a local component listens on for a URL naming ``host``."""
    return "::1" if host.strip("[]") == "::1" else LOOPBACK


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_names(values: Iterable[str]) -> list[str]:
    """Flatten ``["rabbitmq,mongo", "prometheus"]`` style option values into names."""
    return [name for value in values for name in re.split(r"[\s,]+", value.strip().lower()) if name]


def canonical_name(name: str) -> str:
    """Map a component name or alias (``rabbit``, ``ferretdb``...) to its canonical name."""
    try:
        return ALIASES[name.strip().lower()]
    except KeyError:
        raise SelectionError(f"unknown component {name!r}; choose from {', '.join(COMPONENTS)}") from None


def select_components(only: Iterable[str] = (), without: Iterable[str] = ()) -> tuple[str, ...]:
    """Resolve ``--only`` / ``--without`` option values to canonical names in start order."""
    chosen = {canonical_name(n) for n in split_names(only)} or set(COMPONENTS)
    chosen -= {canonical_name(n) for n in split_names(without)}
    if not chosen:
        raise SelectionError("no component left to act on")
    return tuple(c for c in COMPONENTS if c in chosen)


def pidfile_matches(recorded: str | None, expected: str) -> bool:
    """Does the identity recorded in a pid file (2nd line) match what the configuration wants now?

    Identities are ``host:port``, optionally followed by `` (detail)`` (FerretDB: its backend). A pid
    file without one, or with only the address (written before details existed), cannot tell: it matches.
    """
    if recorded is None or recorded == expected:
        return True
    return " " not in recorded and recorded == expected.split(" ", 1)[0]


@dataclass(frozen=True)
class AmqpTarget:
    """The parts of an AMQP URL the stack needs."""

    host: str
    port: int
    username: str
    password: str
    vhost: str
    tls: bool

    @property
    def uses_defaults(self) -> bool:
        """True when the broker's built-in guest user and ``/`` vhost are enough."""
        return (self.username, self.password, self.vhost) == GUEST_LOGIN


def parse_amqp_url(url: str) -> AmqpTarget:
    """Parse ``amqp[s]://user:pass@host:port/vhost`` like aio-pika does (empty vhost means ``/``)."""
    parts = urlsplit(url)
    tls = parts.scheme == "amqps"
    return AmqpTarget(
        host=parts.hostname or LOOPBACK,
        port=parts.port or (5671 if tls else 5672),
        username=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        vhost=unquote(parts.path[1:]) or "/",
        tls=tls,
    )


def render_rabbitmq_conf(
    amqp_port: int,
    *,
    amqp_host: str = LOOPBACK,
    management_port: int = RABBITMQ_MANAGEMENT_PORT,
    prometheus_port: int = RABBITMQ_PROMETHEUS_PORT,
) -> str:
    """``rabbitmq.conf`` for the local broker: every listener on loopback only."""
    return (
        "# Generated by `gridwhistle stack up`; edits are overwritten.\n"
        f"listeners.tcp.default = {bind_host(amqp_host)}:{amqp_port}\n"
        f"management.tcp.ip = {LOOPBACK}\n"
        f"management.tcp.port = {management_port}\n"
        f"prometheus.tcp.ip = {LOOPBACK}\n"
        f"prometheus.tcp.port = {prometheus_port}\n"
    )


def render_enabled_plugins(plugins: Sequence[str] = RABBITMQ_PLUGINS) -> str:
    """The Erlang-term ``enabled_plugins`` file."""
    return f"[{','.join(plugins)}].\n"


@dataclass(frozen=True)
class ProcSignature:
    """How to recognise a process we started: its program name and our environment markers."""

    component: str
    owner: str
    programs: frozenset[str]
    """Accepted basenames of ``argv[0]`` or, for interpreters running a script, ``argv[1]``."""

    def matches(self, cmdline: Sequence[str], environ: Mapping[str, str] | None) -> bool:
        """True when the process is ours. ``environ`` None means unreadable: judge by cmdline only."""
        if not cmdline:  # zombie, kernel thread or gone
            return False
        names = {Path(arg).name for arg in cmdline[:2]}
        if not names & self.programs:
            return False
        if environ is None:
            return any(self.owner in arg for arg in cmdline)
        return environ.get(ENV_OWNER) == self.owner and environ.get(ENV_COMPONENT) == self.component


def parse_cmdline(raw: bytes) -> list[str]:
    """Split ``/proc/<pid>/cmdline``."""
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def parse_environ(raw: bytes) -> dict[str, str]:
    """Split ``/proc/<pid>/environ``."""
    env: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        key, sep, value = entry.decode(errors="replace").partition("=")
        if sep:
            env[key] = value
    return env


def parse_proc_stat_state(raw: str) -> str:
    """Process state letter from ``/proc/<pid>/stat`` (the comm field may hold spaces and parens)."""
    return raw[raw.rindex(")") + 2 :].split(" ", 1)[0]


def parse_epmd_names(data: bytes) -> list[str]:
    """Node names from an epmd NAMES_RESP (4-byte port, then ``name X at port N`` lines)."""
    return re.findall(r"^name (\S+) at port \d+$", data[4:].decode(errors="replace"), flags=re.MULTILINE)


def parse_proc_net_tcp(text: str, port: int) -> set[int]:
    """Socket inodes listening on ``port`` in a ``/proc/net/tcp{,6}`` table."""
    inodes: set[int] = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":  # 0A = TCP_LISTEN
            continue
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(int(fields[9]))
    return inodes


def tail_lines(text: str, count: int = 20) -> list[str]:
    """The last ``count`` non-empty-trailing lines of ``text``."""
    return text.rstrip("\n").splitlines()[-count:] if text.strip() else []


def needs_rebuild(binary_mtime: float | None, source_mtimes: Iterable[float]) -> bool:
    """True when the binary is missing or older than any of its sources."""
    return binary_mtime is None or any(m > binary_mtime for m in source_mtimes)


def apt_lists_present(names: Iterable[str]) -> bool:
    """True when ``/var/lib/apt/lists`` holds at least one package index."""
    return any(n.endswith("_Packages") or "_Packages." in n for n in names)


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps everything, all under the state dir (git-ignored) or the repo."""

    state: Path
    project_root: Path

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def bin(self) -> Path:
        return self.state / "bin"

    def pidfile(self, component: str) -> Path:
        return self.pids / f"{component}.pid"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def rabbitmq(self) -> Path:
        """RabbitMQ's HOME (holds the Erlang cookie), config, mnesia and logs."""
        return self.state / "rabbitmq"

    @property
    def rabbitmq_pidfile(self) -> Path:
        """Written by RabbitMQ itself (the Erlang VM's pid)."""
        return self.rabbitmq / "rabbitmq.pid"

    @property
    def rabbitmq_node_log(self) -> Path:
        return self.rabbitmq / "log" / f"{RABBITMQ_NODENAME}.log"

    @property
    def ferretdb_src(self) -> Path:
        return self.project_root / "deploy" / "local" / "ferretdb"

    @property
    def ferretdb_bin(self) -> Path:
        return self.bin / "gw-ferretdb"

    @property
    def ferretdb_data(self) -> Path:
        return self.state / "ferretdb" / "data"

    @property
    def postgres(self) -> Path:
        """Root-owned; holds the generated pg_hba.conf and the two postgres-owned directories below."""
        return self.state / "postgres"

    @property
    def postgres_data(self) -> Path:
        """The cluster (``initdb``), owned by the postgres system user, mode 0700."""
        return self.postgres / "data"

    @property
    def postgres_run(self) -> Path:
        """Unix socket and its lock file, owned by the postgres system user."""
        return self.postgres / "run"

    @property
    def postgres_hba(self) -> Path:
        return self.postgres / "pg_hba.conf"

    @property
    def prometheus_config(self) -> Path:
        return self.project_root / "deploy" / "prometheus" / "prometheus.yml"

    @property
    def prometheus_data(self) -> Path:
        return self.state / "prometheus"


def rabbitmq_env(paths: StackPaths, amqp_port: int = 5672) -> dict[str, str]:
    """Environment for ``rabbitmq-server`` and ``rabbitmqctl``: everything under the state dir.

    The Erlang distribution port follows RabbitMQ's convention, AMQP port + 20000.
    """
    home = paths.rabbitmq
    loopback_dist = "-kernel inet_dist_use_interface {127,0,0,1}"
    return {
        "HOME": str(home),
        "RABBITMQ_NODENAME": RABBITMQ_NODENAME,
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(paths.rabbitmq_pidfile),
        "RABBITMQ_DIST_PORT": str(amqp_port + 20000),
        "ERL_EPMD_ADDRESS": LOOPBACK,
        "ERL_CRASH_DUMP": str(home / "log" / "erl_crash.dump"),
        # Erlang distribution (25672) and the CLI's own node: loopback only.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback_dist,
        "RABBITMQ_CTL_ERL_ARGS": loopback_dist,
    }


def ferretdb_argv(paths: StackPaths, host: str, port: int, *, postgresql_url: str | None = None) -> list[str]:
    """The launcher's command line: PostgreSQL backend when given its URL, else SQLite under the state dir."""
    listen = format_address(bind_host(host), port)
    if postgresql_url is not None:
        return [str(paths.ferretdb_bin), "-listen", listen, "-handler", "postgresql", "-postgresql-url", postgresql_url]
    return [str(paths.ferretdb_bin), "-listen", listen, "-handler", "sqlite", "-sqlite-dir", str(paths.ferretdb_data)]


def ferretdb_identity(address: str, backend: str) -> str:
    """What the mongo pid file records, so ``up`` notices a changed backend (see :func:`pidfile_matches`)."""
    return f"{address} ({backend})"


def postgresql_url(
    host: str = POSTGRES_ADDRESS[0],
    port: int = POSTGRES_ADDRESS[1],
    role: str = POSTGRES_ROLE,
    database: str = POSTGRES_DATABASE,
) -> str:
    """FerretDB's connection URL for our cluster (trust auth on loopback: no password)."""
    return f"postgres://{role}@{format_address(host, port)}/{database}"


def _version_key(name: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return None


def pick_postgres_version(installed: Iterable[str], data_version: str | None = None) -> str | None:
    """The PostgreSQL major version to run: the data directory's if it exists, else the newest installed.

    ``installed`` are the directory names under ``/usr/lib/postgresql`` that hold ``bin/postgres``.
    Returns None when nothing fits (nothing installed, or not the version the data was made with).
    """
    versions = {name for name in installed if _version_key(name) is not None}
    if data_version is not None:
        return data_version if data_version in versions else None
    return max(versions, key=lambda name: _version_key(name) or (), default=None)


def render_pg_hba() -> str:
    """``pg_hba.conf`` of our cluster."""
    return (
        "# Generated by `gridwhistle stack up`; edits are overwritten.\n"
        "# LOCAL dev/test cluster: password-less logins (trust) over TCP from 127.0.0.1 only, and the\n"
        "# server listens on 127.0.0.1 only. Any process on this machine may connect as any role, the\n"
        "# superuser included: never keep real data here, never expose the port.\n"
        "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
        "local   all       all                 peer\n"
        f"host    all       all   {LOOPBACK}/32  trust\n"
    )


def postgres_argv(bindir: str, paths: StackPaths, port: int = POSTGRES_ADDRESS[1]) -> list[str]:
    """``postgres`` run as the postgres system user (``setpriv`` execs it: the pid is the postmaster's).

    Every setting is on the command line (they override the cluster's postgresql.conf).
    """
    socket = paths.postgres_run / f".s.PGSQL.{port}"
    socket_dirs = str(paths.postgres_run) if len(str(socket)) <= UNIX_SOCKET_PATH_MAX else ""
    settings = {
        "listen_addresses": LOOPBACK,
        "port": str(port),
        "unix_socket_directories": socket_dirs,
        "hba_file": str(paths.postgres_hba),
        "max_connections": "200",
        "shared_buffers": "256MB",
        # LOCAL dev/test cluster only: trade crash safety for speed. A crash of the machine (not of
        # postgres) can corrupt the cluster; `rm -rf .state/postgres` and `stack up` make a new one.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    argv = [*setpriv_argv(POSTGRES_OS_USER), f"{bindir}/postgres", "-D", str(paths.postgres_data)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def setpriv_argv(user: str) -> list[str]:
    """Become ``user`` (uid, gid, its groups) and exec: no parent left behind, unlike ``runuser``."""
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


def runuser_argv(user: str, argv: Sequence[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv]


def initdb_argv(bindir: str, paths: StackPaths) -> list[str]:
    """A new cluster in ``paths.postgres_data`` (run as the postgres system user)."""
    return runuser_argv(
        POSTGRES_OS_USER,
        [
            f"{bindir}/initdb",
            "-D",
            str(paths.postgres_data),
            f"--username={POSTGRES_SUPERUSER}",
            "--encoding=UTF8",
            "--locale=C",
            # The data dir's own pg_hba.conf is not used (hba_file points at ours): make it refuse TCP.
            "--auth-local=peer",
            "--auth-host=reject",
            "--no-sync",
        ],
    )


def render_postgres_bootstrap_sql(role: str = POSTGRES_ROLE, database: str = POSTGRES_DATABASE) -> str:
    """psql script creating FerretDB's login role and its database when missing (idempotent)."""
    for identifier in (role, database):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", identifier):
            raise ValueError(f"not a plain PostgreSQL identifier: {identifier!r}")
    create_role = f"CREATE ROLE {role} LOGIN"
    create_database = f"CREATE DATABASE {database} OWNER {role}"
    # Plain identifiers only (checked above): no quoting needed.
    role_missing = f"NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}')"
    database_missing = f"NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')"
    return (
        f"SELECT '{create_role}' WHERE {role_missing}\\gexec\n"
        f"SELECT '{create_database}' WHERE {database_missing}\\gexec\n"
    )


def psql_argv(bindir: str, host: str = POSTGRES_ADDRESS[0], port: int = POSTGRES_ADDRESS[1]) -> list[str]:
    """psql as our superuser reading a script on stdin, stopping at the first error."""
    return runuser_argv(
        POSTGRES_OS_USER,
        [
            f"{bindir}/psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            POSTGRES_SUPERUSER,
            "-d",
            "postgres",
            "-f",
            "-",
        ],
    )


def prometheus_argv(binary: str, paths: StackPaths) -> list[str]:
    host, port = PROMETHEUS_ADDRESS
    return [
        binary,
        f"--config.file={paths.prometheus_config}",
        f"--storage.tsdb.path={paths.prometheus_data}",
        f"--web.listen-address={host}:{port}",
        "--web.enable-lifecycle",
    ]


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


@dataclass(frozen=True)
class ComponentStatus:
    """One row of ``stack status``."""

    name: str
    managed: str
    """``us``, ``external``, ``external (already running)`` or ``-`` (nothing there)."""
    pid: int | None
    address: str
    healthy: bool
    detail: str


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did for one component."""

    name: str
    action: Action
    pid: int | None
    address: str
    seconds: float = 0.0
    detail: str = ""
