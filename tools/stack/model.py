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

COMPONENTS: tuple[str, ...] = ("rabbitmq", "mongo", "prometheus", "alertmanager")
"""User-selectable components, in start order."""

EPMD = "epmd"
"""Erlang port mapper: started (when needed) together with a local RabbitMQ, not selectable."""
ALERT_INBOX = "alert-inbox"
"""Alertmanager's webhook receiver (tools/alert_inbox.py): started together with Alertmanager, not selectable."""

ALIASES: Mapping[str, str] = {
    "rabbitmq": "rabbitmq",
    "rabbit": "rabbitmq",
    "amqp": "rabbitmq",
    "mongo": "mongo",
    "mongodb": "mongo",
    "store": "mongo",
    "secantus": "mongo",
    "prometheus": "prometheus",
    "prom": "prometheus",
    "alertmanager": "alertmanager",
    "am": "alertmanager",
    "alerts": "alertmanager",
}

GUEST_LOGIN = ("guest", "guest", "/")
"""RabbitMQ's built-in user (loopback only) and default vhost: nothing to create."""

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

RABBITMQ_NODENAME = "gridwhistle@localhost"
CLUSTER: tuple[str, ...] = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")
"""The local three-node RabbitMQ cluster (``stack up --cluster``), beside the single dev broker.

Not part of the default stack: the chaos run and its short test use it. Node *i* listens for AMQP
on 5700 + i, its management UI on 15700 + i and its Prometheus endpoint on 15790 + i."""
CLUSTER_ALIASES = frozenset({"cluster", "rabbitmq-cluster"})
RABBITMQ_MANAGEMENT_PORT = 15672
RABBITMQ_PROMETHEUS_PORT = 15692
RABBITMQ_PLUGINS: tuple[str, ...] = ("rabbitmq_management", "rabbitmq_prometheus")
EPMD_PORT = 4369
PROMETHEUS_ADDRESS = ("127.0.0.1", 9090)
ALERTMANAGER_ADDRESS = ("127.0.0.1", 9093)
ALERT_INBOX_ADDRESS = ("127.0.0.1", 9095)
"""Where deploy/alertmanager/alertmanager.yml sends every webhook."""
LOOPBACK = "127.0.0.1"

STORE_CRATE = "secantus-mdb"
"""The local Mongo-wire store: SecantusDB's Rust server (WiredTiger inside), built from crates.io."""
STORE_VERSION = "0.5.3-beta.196"
"""Pinned: the build is cached per machine under this version (see ``store_cache_dir``)."""
STORE_BINARY = "secantusd-rs"
STORE_CACHE_SIZE = "256M"
"""WiredTiger cache of the local store (plenty for tests and the Changjia replay)."""

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
    """Map a component name or alias (``rabbit``, ``store``...) to its canonical name."""
    key = name.strip().lower()
    if key in CLUSTER:
        return key
    try:
        return ALIASES[key]
    except KeyError:
        choices = ", ".join((*COMPONENTS, "cluster", *CLUSTER))
        raise SelectionError(f"unknown component {name!r}; choose from {choices}") from None


def _expand(names: Iterable[str]) -> set[str]:
    """Canonical names; ``cluster`` stands for its three nodes."""
    out: set[str] = set()
    for name in split_names(names):
        out |= set(CLUSTER) if name in CLUSTER_ALIASES else {canonical_name(name)}
    return out


def select_components(
    only: Iterable[str] = (), without: Iterable[str] = (), *, cluster: bool = False
) -> tuple[str, ...]:
    """Resolve ``--only`` / ``--without`` / ``--cluster`` to canonical names in start order.

    The default is the dev stack (:data:`COMPONENTS`); ``cluster`` adds the three cluster nodes.
    """
    chosen = _expand(only) or set(COMPONENTS)
    if cluster:
        chosen |= set(CLUSTER)
    chosen -= _expand(without)
    if not chosen:
        raise SelectionError("no component left to act on")
    return tuple(c for c in (*COMPONENTS, *CLUSTER) if c in chosen)


def pidfile_matches(recorded: str | None, expected: str) -> bool:
    """Does the identity recorded in a pid file (2nd line) match what the configuration wants now?

    Identities are ``host:port``, optionally followed by `` (detail)`` (the store: its version). A pid
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
    peers: Sequence[str] = (),
) -> str:
    """``rabbitmq.conf`` for a local node: every listener on loopback only.

    ``peers`` (a cluster's node names): classic-config peer discovery, quorum queue leaders
    spread over the nodes (``balanced``), ``autoheal`` partition handling and a 10 s
    ``net_ticktime`` (default 60 s), so that the others give up a frozen node — and return the
    messages its consumers held — within the chaos run's 30 s recovery goal, and the node, once
    it runs again, is restarted into the cluster by itself. (``pause_minority`` left a node frozen
    for 30 s paused for good: its peers kept it as a partition and it never came back.)
    """
    lines = [
        "# Generated by `gridwhistle stack up`; edits are overwritten.",
        f"listeners.tcp.default = {bind_host(amqp_host)}:{amqp_port}",
        f"management.tcp.ip = {LOOPBACK}",
        f"management.tcp.port = {management_port}",
        f"prometheus.tcp.ip = {LOOPBACK}",
        f"prometheus.tcp.port = {prometheus_port}",
    ]
    if peers:
        lines += [
            "cluster_formation.peer_discovery_backend = classic_config",
            *(f"cluster_formation.classic_config.nodes.{i} = {peer}" for i, peer in enumerate(peers, 1)),
            "queue_leader_locator = balanced",
            "cluster_partition_handling = autoheal",
            "net_ticktime = 10",
        ]
    return "\n".join(lines) + "\n"


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


def parse_epmd_names(data: bytes) -> list[str]:
    """Node names from an epmd NAMES_RESP (4-byte port, then ``name X at port N`` lines)."""
    return re.findall(r"^name (\S+) at port \d+$", data[4:].decode(errors="replace"), flags=re.MULTILINE)


def tail_lines(text: str, count: int = 20) -> list[str]:
    """The last ``count`` non-empty-trailing lines of ``text``."""
    return text.rstrip("\n").splitlines()[-count:] if text.strip() else []


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
        """The single broker's HOME (holds the Erlang cookie), config, mnesia and logs."""
        return self.state / "rabbitmq"

    @property
    def cluster(self) -> Path:
        """The local cluster: one HOME per node, and the Erlang cookie they share."""
        return self.state / "cluster"

    def rabbit_home(self, node: RabbitNode) -> Path:
        return self.state / node.home

    def rabbit_pidfile(self, node: RabbitNode) -> Path:
        """Written by RabbitMQ itself (the Erlang VM's pid)."""
        return self.rabbit_home(node) / "rabbitmq.pid"

    def rabbit_node_log(self, node: RabbitNode) -> Path:
        return self.rabbit_home(node) / "log" / f"{node.nodename}.log"

    @property
    def store_data(self) -> Path:
        """The local store's WiredTiger files."""
        return self.state / "store" / "data"

    @property
    def prometheus_config(self) -> Path:
        return self.project_root / "deploy" / "prometheus" / "prometheus.yml"

    @property
    def prometheus_data(self) -> Path:
        return self.state / "prometheus"

    @property
    def alertmanager_config(self) -> Path:
        return self.project_root / "deploy" / "alertmanager" / "alertmanager.yml"

    @property
    def alertmanager_data(self) -> Path:
        """Silences and the notification log (kept across restarts, like Prometheus' TSDB)."""
        return self.state / "alertmanager"

    @property
    def alert_inbox_script(self) -> Path:
        return self.project_root / "tools" / "alert_inbox.py"

    @property
    def alert_inbox_log(self) -> Path:
        """One JSON line per alert the inbox received."""
        return self.state / "alerts" / "inbox.jsonl"


@dataclass(frozen=True)
class RabbitNode:
    """One RabbitMQ node the stack runs: the single dev broker or a member of the local cluster."""

    component: str
    nodename: str
    home: str
    """Its HOME, relative to the state dir."""
    amqp_host: str
    amqp_port: int
    management_port: int
    prometheus_port: int
    peers: tuple[str, ...] = ()
    """Every node name of its cluster (itself included); empty for a standalone broker."""

    @property
    def dist_port(self) -> int:
        """Erlang distribution, by RabbitMQ's convention AMQP port + 20000."""
        return self.amqp_port + 20000


def single_node(amqp_host: str, amqp_port: int) -> RabbitNode:
    """The dev broker ``GW_AMQP_URL`` names (``stack up``)."""
    return RabbitNode(
        "rabbitmq",
        RABBITMQ_NODENAME,
        "rabbitmq",
        amqp_host,
        amqp_port,
        RABBITMQ_MANAGEMENT_PORT,
        RABBITMQ_PROMETHEUS_PORT,
    )


def cluster_nodes() -> tuple[RabbitNode, ...]:
    """The three nodes of ``stack up --cluster`` (see :data:`CLUSTER`)."""
    names = tuple(f"gw-cluster-{i}@localhost" for i in range(1, len(CLUSTER) + 1))
    return tuple(
        RabbitNode(component, names[i - 1], f"cluster/{component}", LOOPBACK, 5700 + i, 15700 + i, 15790 + i, names)
        for i, component in enumerate(CLUSTER, 1)
    )


def cluster_failover() -> str:
    """``GW_AMQP_FAILOVER`` for a client whose ``GW_AMQP_URL`` names cluster node 1."""
    return ",".join(format_address(node.amqp_host, node.amqp_port) for node in cluster_nodes()[1:])


def rabbitmq_env(paths: StackPaths, node: RabbitNode) -> dict[str, str]:
    """Environment for ``rabbitmq-server`` and ``rabbitmqctl``: everything under the state dir."""
    home = paths.rabbit_home(node)
    loopback_dist = "-kernel inet_dist_use_interface {127,0,0,1}"
    return {
        "HOME": str(home),
        "RABBITMQ_NODENAME": node.nodename,
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(paths.rabbit_pidfile(node)),
        "RABBITMQ_DIST_PORT": str(node.dist_port),
        "ERL_EPMD_ADDRESS": LOOPBACK,
        "ERL_CRASH_DUMP": str(home / "log" / "erl_crash.dump"),
        # Erlang distribution (25672) and the CLI's own node: loopback only.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback_dist,
        "RABBITMQ_CTL_ERL_ARGS": loopback_dist,
    }


def store_cache_dir(cache_home: Path, version: str = STORE_VERSION) -> Path:
    """Where the store's build lives: per machine, outside every work tree, keyed by crate and version.

    ``cache_home`` is ``$XDG_CACHE_HOME`` or ``~/.cache``; a fresh clone and CI on the same machine
    find the build there and do not build again.
    """
    return cache_home / "gridwhistle" / f"{STORE_CRATE}-{version}"


def store_binary(cache_dir: Path) -> Path:
    """``cargo install --root`` puts the program in ``<root>/bin``."""
    return cache_dir / "root" / "bin" / STORE_BINARY


def store_identity(address: str, version: str = STORE_VERSION) -> str:
    """What the mongo pid file records, so ``up`` notices a store of another version."""
    return f"{address} ({STORE_CRATE} {version})"


def cargo_install_argv(cargo: str, cache_dir: Path, version: str = STORE_VERSION) -> list[str]:
    """Build the store into ``cache_dir`` (every release declares rustc 1.98; it builds on 1.95)."""
    return [
        cargo,
        "install",
        STORE_CRATE,
        "--version",
        version,
        "--locked",
        "--ignore-rust-version",
        "--root",
        str(cache_dir / "root"),
    ]


def cargo_build_env(cache_dir: Path, jobs: int) -> dict[str, str]:
    """A quick release build on a small machine: no LTO, many codegen units, target dir in the cache
    (an interrupted build resumes where it stopped)."""
    return {
        "CARGO_TARGET_DIR": str(cache_dir / "target"),
        "CARGO_PROFILE_RELEASE_LTO": "false",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
        "CARGO_BUILD_JOBS": str(max(1, jobs)),
        "CARGO_TERM_PROGRESS_WHEN": "never",
    }


def parse_cargo_progress(line: str) -> str | None:
    """``Compiling serde v1.0.229`` -> ``serde``; None for any other line."""
    found = re.match(r"\s*Compiling (\S+) v", line)
    return found.group(1) if found else None


def store_argv(binary: Path, paths: StackPaths, host: str, port: int, cache_size: str = STORE_CACHE_SIZE) -> list[str]:
    return [
        str(binary),
        "--host",
        bind_host(host),
        "--port",
        str(port),
        "--storage-path",
        str(paths.store_data),
        "--cache-size",
        cache_size,
    ]


def prometheus_argv(binary: str, paths: StackPaths) -> list[str]:
    host, port = PROMETHEUS_ADDRESS
    return [
        binary,
        f"--config.file={paths.prometheus_config}",
        f"--storage.tsdb.path={paths.prometheus_data}",
        f"--web.listen-address={host}:{port}",
        "--web.enable-lifecycle",
    ]


def alertmanager_argv(binary: str, paths: StackPaths, config: Path | None = None) -> list[str]:
    """Single node: ``--cluster.listen-address=`` turns off the HA gossip port (0.0.0.0:9094 by default)."""
    host, port = ALERTMANAGER_ADDRESS
    return [
        binary,
        f"--config.file={config or paths.alertmanager_config}",
        f"--storage.path={paths.alertmanager_data}",
        f"--web.listen-address={host}:{port}",
        "--cluster.listen-address=",
    ]


def alert_inbox_argv(python: str, paths: StackPaths) -> list[str]:
    host, port = ALERT_INBOX_ADDRESS
    script, log = str(paths.alert_inbox_script), str(paths.alert_inbox_log)
    return [python, script, "--host", host, "--port", str(port), "--log", log]


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
