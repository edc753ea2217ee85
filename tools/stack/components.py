"""The stack's components: how each one is installed, started, checked and stopped."""

from __future__ import annotations

import os
import secrets
import shutil
import string
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from tools.stack import health
from tools.stack.install import apt_install, cache_home, cargo_install_store
from tools.stack.model import (
    ALERT_INBOX,
    ALERT_INBOX_ADDRESS,
    ALERTMANAGER_ADDRESS,
    EPMD,
    EPMD_PORT,
    LOOPBACK,
    PROMETHEUS_ADDRESS,
    STORE_BINARY,
    Health,
    ProcSignature,
    RabbitNode,
    StackError,
    StackPaths,
    UpResult,
    alert_inbox_argv,
    alertmanager_argv,
    cluster_nodes,
    format_address,
    is_local_host,
    parse_amqp_url,
    prometheus_argv,
    rabbitmq_env,
    render_enabled_plugins,
    render_rabbitmq_conf,
    single_node,
    store_argv,
    store_binary,
    store_cache_dir,
    store_identity,
)
from tools.stack.procs import (
    is_alive,
    is_ours,
    owned_pid,
    port_open,
    read_pidfile,
    read_tail,
    terminate,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.settings import GwSettings

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQCTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
PROMETHEUS_BIN = Path("/usr/bin/prometheus")
ALERTMANAGER_BIN = Path("/usr/bin/prometheus-alertmanager")
EPMD_CANDIDATES = (Path("/usr/bin/epmd"), Path("/usr/lib/erlang/bin/epmd"))


@dataclass
class StackContext:
    """What every component needs: settings, paths, a progress printer and a cancel flag."""

    settings: GwSettings
    paths: StackPaths
    say: Callable[[str, str], None] = lambda component, message: None
    record: Callable[[UpResult], None] = lambda result: None
    """Receives the results of dependencies brought up on the way (epmd for RabbitMQ)."""
    cancel: threading.Event = field(default_factory=threading.Event)


class Component(ABC):
    """A process the stack may run. Subclasses describe it; ``tools.stack.core`` drives it."""

    name: str
    """Its component name (class-level; a cluster node sets its own)."""
    programs: ClassVar[frozenset[str]]
    start_timeout: ClassVar[float] = 30.0

    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx
        self.proc: subprocess.Popen[bytes] | None = None
        """Set when this process started the component (gives the exit code on early death)."""

    @property
    def paths(self) -> StackPaths:
        return self.ctx.paths

    @property
    def settings(self) -> GwSettings:
        return self.ctx.settings

    def say(self, message: str) -> None:
        self.ctx.say(self.name, message)

    @abstractmethod
    def address(self) -> tuple[str, int]: ...

    @property
    def address_text(self) -> str:
        return format_address(*self.address())

    @property
    def identity(self) -> str:
        """Recorded in the pid file: ``up`` refuses to reuse a process started for another one."""
        return self.address_text

    def is_local(self) -> bool:
        return is_local_host(self.address()[0])

    def dependencies(self) -> list[Component]:
        """Components that must be up before this one can start."""
        return []

    def companions(self) -> list[Component]:
        """Helpers that ``down`` and ``status`` also cover while ours run (even when no longer needed)."""
        return self.dependencies()

    def signature(self) -> ProcSignature:
        return ProcSignature(self.name, str(self.paths.state), self.programs)

    def pid(self) -> int | None:
        """Our live process for this component, if any (verified by its command line and environment)."""
        return owned_pid(self.paths.pidfile(self.name), self.signature())

    @abstractmethod
    def health(self, timeout: float = 2.0) -> Health: ...

    def probe(self, timeout: float = 2.0) -> Health:
        """Health, answering at once when nothing listens on a local address (drivers retry until timeout)."""
        if self.is_local() and not port_open(*self.address(), timeout=0.3):
            return Health(False, "connection refused")
        return self.health(timeout)

    def install(self) -> None:  # noqa: B027 - optional hook
        """Make sure the program exists (apt, go build); called only when about to start."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Create directories and configuration before starting."""

    @abstractmethod
    def command(self) -> list[str]: ...

    def extra_env(self) -> dict[str, str]:
        return {}

    def workdir(self) -> Path:
        return self.paths.state

    @property
    def log_path(self) -> Path:
        return self.paths.log(self.name)

    def logs(self) -> list[tuple[Path, list[str]]]:
        """Log tails that explain a failure."""
        return [(self.log_path, read_tail(self.log_path))]

    def fail(self, message: str) -> StackError:
        return StackError(self.name, message, self.logs())

    def check_running(self, pid: int) -> None:
        """Raise if start-up was interrupted or the process died."""
        if self.ctx.cancel.is_set():
            raise StackError(self.name, "interrupted")
        if self.proc is not None and self.proc.pid == pid:
            code = self.proc.poll()
            if code is not None:
                raise self.fail(f"exited with code {code} during start-up")
        elif not is_alive(pid):
            raise self.fail("exited during start-up")

    def wait_ready(self, pid: int, deadline: float) -> Health:
        """Poll health until it is ok; raise with the log tail when the process dies or time runs out."""
        while True:
            self.check_running(pid)
            last = self.probe(timeout=1.0)
            if last.ok:
                return last
            if time.monotonic() >= deadline:
                raise self.fail(f"not ready after {self.start_timeout:.0f}s: {last.detail}")
            time.sleep(0.2)

    def post_ready(self) -> None:  # noqa: B027 - optional hook
        """Runs once the component answers (e.g. create users)."""

    def stop(self, pid: int) -> str:
        return terminate(pid, self.signature())


def find_epmd() -> str | None:
    found = shutil.which("epmd")
    if found:
        return found
    return next((str(p) for p in EPMD_CANDIDATES if p.exists()), None)


class Epmd(Component):
    """Erlang port mapper, loopback only, for the RabbitMQ node and its CLI."""

    name = EPMD
    programs = frozenset({"epmd"})
    start_timeout = 10.0

    def address(self) -> tuple[str, int]:
        return LOOPBACK, EPMD_PORT

    def health(self, timeout: float = 2.0) -> Health:
        return health.epmd_health(LOOPBACK, EPMD_PORT, timeout)

    def install(self) -> None:
        if find_epmd() is None:  # comes with erlang-base, a dependency of rabbitmq-server
            apt_install("rabbitmq", ["rabbitmq-server"], log=self.paths.log("apt"), say=self.say)

    def command(self) -> list[str]:
        epmd = find_epmd()
        if epmd is None:
            raise self.fail("epmd not found after installing rabbitmq-server")
        return [epmd, "-address", LOOPBACK, "-port", str(EPMD_PORT)]

    def extra_env(self) -> dict[str, str]:
        return {"ERL_EPMD_ADDRESS": LOOPBACK}

    def stop(self, pid: int) -> str:
        names = health.epmd_names(LOOPBACK, EPMD_PORT)
        if names:
            return f"left running: other Erlang nodes still registered ({', '.join(names)})"
        return super().stop(pid)


class RabbitMQ(Component):
    """A RabbitMQ node from Debian, run as a foreground child with everything under its HOME in .state/.

    The single dev broker (``rabbitmq``, where ``GW_AMQP_URL`` points) or, given a cluster
    :class:`RabbitNode`, one member of the local three-node cluster (``rabbitmq-1`` … ``-3``).
    """

    name = "rabbitmq"
    programs = frozenset({"rabbitmq-server", "beam.smp"})
    start_timeout = 90.0

    def __init__(self, ctx: StackContext, epmd: Epmd, node: RabbitNode | None = None) -> None:
        super().__init__(ctx)
        self.epmd = epmd
        if node is None:
            target = parse_amqp_url(self.settings.amqp_url)
            node = single_node(target.host, target.port)
        self.node = node
        self.name = node.component

    @property
    def home(self) -> Path:
        return self.paths.rabbit_home(self.node)

    @property
    def url(self) -> str:
        """How the stack checks it: the configured URL (single broker) or guest on the node's port."""
        if self.node.peers:
            return f"amqp://guest:guest@{format_address(self.node.amqp_host, self.node.amqp_port)}/"
        return self.settings.amqp_url

    def dependencies(self) -> list[Component]:
        return [self.epmd]

    def address(self) -> tuple[str, int]:
        return self.node.amqp_host, self.node.amqp_port

    def pid(self) -> int | None:
        # The wrapper script we launched; failing that the Erlang VM it started (pid file by RabbitMQ).
        return super().pid() or owned_pid(self.paths.rabbit_pidfile(self.node), self.signature())

    def beam_pid(self) -> int | None:
        """The Erlang VM itself (what a node kill signals)."""
        return owned_pid(self.paths.rabbit_pidfile(self.node), self.signature())

    def health(self, timeout: float = 2.0) -> Health:
        return health.amqp_health(self.url, timeout)

    def install(self) -> None:
        if not RABBITMQ_SERVER.exists():
            apt_install(self.name, ["rabbitmq-server"], log=self.paths.log("apt"), say=self.say)

    def prepare(self) -> None:
        home = self.home
        for sub in ("mnesia", "log"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        host, port = self.address()
        conf = render_rabbitmq_conf(
            port,
            amqp_host=host,
            management_port=self.node.management_port,
            prometheus_port=self.node.prometheus_port,
            peers=self.node.peers,
        )
        _write_if_changed(home / "rabbitmq.conf", conf)
        _write_if_changed(home / "enabled_plugins", render_enabled_plugins())
        _write_if_changed(home / "rabbitmq-env.conf", "# Isolates this node from /etc/rabbitmq/rabbitmq-env.conf\n")
        # Created up front so the server and the CLI cannot race to create it; cluster nodes share one.
        shared = self.paths.cluster / ".erlang.cookie" if self.node.peers else home / ".erlang.cookie"
        if not shared.exists():
            shared.parent.mkdir(parents=True, exist_ok=True)
            shared.write_text("".join(secrets.choice(string.ascii_uppercase) for _ in range(20)))
            shared.chmod(0o400)
        cookie = home / ".erlang.cookie"
        if cookie != shared and not cookie.exists():
            cookie.write_text(shared.read_text())
            cookie.chmod(0o400)

    def command(self) -> list[str]:
        return [str(RABBITMQ_SERVER)]

    def extra_env(self) -> dict[str, str]:
        return rabbitmq_env(self.paths, self.node)

    def workdir(self) -> Path:
        return self.home

    def logs(self) -> list[tuple[Path, list[str]]]:
        node_log = self.paths.rabbit_node_log(self.node)
        return [(self.log_path, read_tail(self.log_path)), (node_log, read_tail(node_log))]

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n <node> ARGS`` with the node's HOME (cookie)."""
        env = {**os.environ, **self.extra_env()}
        try:
            return subprocess.run(  # noqa: S603 - fixed program, arguments from the stack
                [str(RABBITMQCTL), "-n", self.node.nodename, *args],
                env=env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout:.0f}s")

    def wait_ready(self, pid: int, deadline: float) -> Health:
        last = ""
        while True:
            self.check_running(pid)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.fail(f"not ready after {self.start_timeout:.0f}s: {last or 'await_startup failed'}")
            step = max(5, int(min(remaining, 30)))
            done = self.ctl("-q", "await_startup", "--timeout", str(step), timeout=step + 15)
            if done.returncode == 0:
                self.ensure_login()
                return super().wait_ready(pid, deadline)
            output = (done.stderr or done.stdout).strip().splitlines()
            last = output[-1] if output else f"await_startup exit {done.returncode}"
            time.sleep(0.5)

    def ensure_login(self) -> None:
        """Create the URL's user and vhost when they are not RabbitMQ's built-in guest and ``/``."""
        target = parse_amqp_url(self.url)
        if target.uses_defaults or self.health(timeout=2.0).ok:
            return
        self.say(f"creating user {target.username!r} and vhost {target.vhost!r}…")
        self.ctl("add_vhost", target.vhost)  # fails harmlessly when they exist
        self.ctl("add_user", target.username, target.password)
        done = self.ctl("set_permissions", "-p", target.vhost, target.username, ".*", ".*", ".*")
        if done.returncode != 0:
            raise self.fail(f"set_permissions failed: {done.stderr.strip()}")
        login = self.health(timeout=2.0)
        if not login.ok:
            raise self.fail(
                f"cannot log in as {target.username!r} on vhost {target.vhost!r}: {login.detail} "
                "(an existing user keeps its password)"
            )

    def stop(self, pid: int) -> str:
        pidfile = self.paths.rabbit_pidfile(self.node)
        beam = read_pidfile(pidfile)
        done = self.ctl("stop", str(pidfile), timeout=90)
        how = "stopped (rabbitmqctl stop)" if done.returncode == 0 else "stopped"
        for candidate in (pid, beam):
            if candidate is not None and is_ours(candidate, self.signature()):
                how = terminate(candidate, self.signature(), timeout=30)
        return how


class Mongo(Component):
    """The local Mongo-wire store: SecantusDB's ``secantusd-rs`` (WiredTiger inside), one node.

    Built once per machine with cargo into a cache outside the work tree, keyed by its version;
    data under ``.state/store``. Production runs a MongoDB replica set instead.
    """

    name = "mongo"
    programs = frozenset({STORE_BINARY})

    @property
    def cache_dir(self) -> Path:
        return store_cache_dir(cache_home())

    @property
    def binary(self) -> Path:
        return store_binary(self.cache_dir)

    def address(self) -> tuple[str, int]:
        return self.settings.mongo_host_port

    @property
    def identity(self) -> str:
        return store_identity(self.address_text)

    def health(self, timeout: float = 2.0) -> Health:
        return health.mongo_health(self.settings.mongo_url, timeout)

    def install(self) -> None:
        cargo_install_store(self.name, self.cache_dir, log=self.paths.log("mongo-build"), say=self.say)

    def prepare(self) -> None:
        self.paths.store_data.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        host, port = self.address()
        return store_argv(self.binary, self.paths, host, port)


class Prometheus(Component):
    """Prometheus from Debian, scraping the services and RabbitMQ (deploy/prometheus/prometheus.yml)."""

    name = "prometheus"
    programs = frozenset({"prometheus"})

    def address(self) -> tuple[str, int]:
        return PROMETHEUS_ADDRESS

    def health(self, timeout: float = 2.0) -> Health:
        return health.prometheus_health(f"http://{self.address_text}", timeout)

    def install(self) -> None:
        if not PROMETHEUS_BIN.exists():
            apt_install(self.name, ["prometheus"], log=self.paths.log("apt"), say=self.say)

    def prepare(self) -> None:
        if not self.paths.prometheus_config.exists():
            raise StackError(self.name, f"config missing: {self.paths.prometheus_config}")
        self.paths.prometheus_data.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return prometheus_argv(str(PROMETHEUS_BIN), self.paths)


class AlertInbox(Component):
    """The webhook receiver every local Alertmanager route sends to (tools/alert_inbox.py)."""

    name = ALERT_INBOX
    programs = frozenset({"alert_inbox.py"})
    start_timeout = 15.0

    def address(self) -> tuple[str, int]:
        return ALERT_INBOX_ADDRESS

    def health(self, timeout: float = 2.0) -> Health:
        return health.alert_inbox_health(f"http://{self.address_text}", timeout)

    def prepare(self) -> None:
        self.paths.alert_inbox_log.parent.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return alert_inbox_argv(sys.executable, self.paths)


class Alertmanager(Component):
    """Alertmanager from Debian (deploy/alertmanager/alertmanager.yml), Prometheus' ``alerting:`` target."""

    name = "alertmanager"
    programs = frozenset({"prometheus-alertmanager", "alertmanager"})

    def __init__(self, ctx: StackContext, inbox: AlertInbox) -> None:
        super().__init__(ctx)
        self.inbox = inbox

    def dependencies(self) -> list[Component]:
        return [self.inbox]

    def address(self) -> tuple[str, int]:
        return ALERTMANAGER_ADDRESS

    def health(self, timeout: float = 2.0) -> Health:
        return health.alertmanager_health(f"http://{self.address_text}", timeout)

    def install(self) -> None:
        if not ALERTMANAGER_BIN.exists():
            apt_install(self.name, ["prometheus-alertmanager"], log=self.paths.log("apt"), say=self.say)

    def prepare(self) -> None:
        if not self.paths.alertmanager_config.exists():
            raise StackError(self.name, f"config missing: {self.paths.alertmanager_config}")
        self.paths.alertmanager_data.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return alertmanager_argv(str(ALERTMANAGER_BIN), self.paths)


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    path.write_text(text)


def make_components(ctx: StackContext) -> dict[str, Component]:
    """Every component, keyed by name, in start order (epmd before rabbitmq, the inbox before alertmanager)."""
    epmd = Epmd(ctx)
    inbox = AlertInbox(ctx)
    items: list[Component] = [epmd, RabbitMQ(ctx, epmd), Mongo(ctx), Prometheus(ctx), inbox, Alertmanager(ctx, inbox)]
    items += [RabbitMQ(ctx, epmd, node) for node in cluster_nodes()]
    return {c.name: c for c in items}
