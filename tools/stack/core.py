"""Bringing the stack up and down, and reporting its status (the plain function API)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from shared.settings import PROJECT_ROOT, GwSettings
from tools.stack.components import Component, RabbitMQ, StackContext, make_components
from tools.stack.model import (
    ALERT_INBOX,
    CLUSTER,
    COMPONENTS,
    EPMD,
    Action,
    ComponentStatus,
    Health,
    StackError,
    StackPaths,
    StackUpError,
    UpResult,
    cluster_nodes,
    decide_action,
    pidfile_matches,
    select_components,
)
from tools.stack.procs import (
    child_env,
    is_ours,
    listener_pid,
    port_open,
    read_pidfile_address,
    spawn,
    terminate,
    write_pidfile,
)

Say = Callable[[str, str], None]

EXTERNAL_WAIT = 10.0
"""How long ``up`` gives an external component to answer before failing."""


def _quiet(component: str, message: str) -> None:
    """Default progress printer of the function API: silent."""


def _context(settings: GwSettings, say: Say | None) -> StackContext:
    return StackContext(settings, StackPaths(settings.state_dir, PROJECT_ROOT), say or _quiet)


def _names(components: Iterable[str] | None) -> tuple[str, ...]:
    return select_components(components) if components is not None else COMPONENTS


def _selected(names: Iterable[str], comps: dict[str, Component], *, exact: bool = False) -> list[Component]:
    """The named components plus, when local, their dependencies (epmd for RabbitMQ) and any
    companion of ours still running, in start order. ``exact``: the named ones only (internal
    names such as ``epmd`` allowed)."""
    chosen: set[str] = set()
    for name in names:
        chosen.add(name)
        if exact:
            continue
        comp = comps[name]
        if comp.is_local():
            chosen.update(dep.name for dep in comp.dependencies())
        chosen.update(helper.name for helper in comp.companions() if helper.pid() is not None)
    return [comp for name, comp in comps.items() if name in chosen]


def _wait_external(comp: Component) -> Health:
    deadline = time.monotonic() + EXTERNAL_WAIT
    while True:
        health = comp.probe()
        if health.ok or time.monotonic() >= deadline or comp.ctx.cancel.is_set():
            return health
        time.sleep(1.0)


def _start(comp: Component) -> UpResult:
    pidfile = comp.paths.pidfile(comp.name)
    pidfile.unlink(missing_ok=True)  # stale: its pid is not our live process
    comp.install()
    for dependency in comp.dependencies():
        comp.ctx.record(bring_up(dependency))
    comp.prepare()
    argv = comp.command()
    comp.say("starting…")
    started = time.monotonic()
    env = child_env(comp.name, str(comp.paths.state), comp.extra_env())
    comp.proc = spawn(argv, env=env, log=comp.log_path, cwd=comp.workdir())
    pid = comp.proc.pid
    write_pidfile(pidfile, pid, comp.identity)
    try:
        health = comp.wait_ready(pid, started + comp.start_timeout)
        comp.post_ready()
    except BaseException:
        # Do not leave a half-started process behind (the error already holds the log tail).
        terminate(pid, comp.signature(), timeout=10)
        pidfile.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - started
    comp.say(f"started pid {pid} in {seconds:.1f}s ({health.detail})")
    return UpResult(comp.name, Action.START, pid, comp.address_text, seconds, health.detail)


def bring_up(comp: Component) -> UpResult:
    """Make one component available: use what runs, start what is missing, fail loudly otherwise."""
    address = comp.address_text
    if not comp.is_local():
        health = _wait_external(comp)
        if not health.ok:
            raise StackError(comp.name, f"external {address} is not healthy: {health.detail}")
        comp.say(f"external at {address} ({health.detail})")
        return UpResult(comp.name, Action.REMOTE, None, address, detail=health.detail)

    pid = comp.pid()
    started_for = read_pidfile_address(comp.paths.pidfile(comp.name))
    if pid is not None and not pidfile_matches(started_for, comp.identity):
        raise StackError(
            comp.name,
            f"ours (pid {pid}) serves {started_for} but the configuration now says {comp.identity}; "
            f"run `stack down --only {comp.name}` first",
        )
    if pid is not None:  # ours runs: make sure what it needs does too (restarts a dead epmd)
        for dependency in comp.dependencies():
            comp.ctx.record(bring_up(dependency))
        pid = comp.pid()
    health = comp.probe()
    busy = pid is None and not health.ok and port_open(*comp.address())
    action = decide_action(local=True, ours_alive=pid is not None, healthy=health.ok, port_in_use=busy)

    if action is Action.OURS_RUNNING:
        comp.say(f"already running (pid {pid})")
        return UpResult(comp.name, action, pid, address, detail=health.detail)
    if action is Action.OURS_UNHEALTHY and pid is not None:
        comp.say(f"running (pid {pid}) but not answering ({health.detail}); waiting…")
        started = time.monotonic()
        health = comp.wait_ready(pid, started + comp.start_timeout)
        comp.post_ready()
        comp.say(f"ready after {time.monotonic() - started:.1f}s (pid {pid})")
        return UpResult(comp.name, action, pid, address, time.monotonic() - started, health.detail)
    if action is Action.FOREIGN_RUNNING:
        other = listener_pid(comp.address()[1])
        comp.say(f"external (already running{f', pid {other}' if other else ''}) at {address}, not starting ours")
        return UpResult(comp.name, action, other, address, detail=health.detail)
    if action is Action.PORT_BUSY:
        other = listener_pid(comp.address()[1])
        raise StackError(
            comp.name,
            f"{address} is taken by a process we did not start{f' (pid {other})' if other else ''} "
            f"that does not answer as {comp.name} ({health.detail}); stop it or configure another address",
        )
    return _start(comp)


def start_groups(names: Iterable[str], *, cluster_formed: bool = False) -> list[list[str]]:
    """Components that start side by side, each group in order. A new cluster's nodes start one
    after the other (node 1 forms the cluster, the next ones join it); once formed, side by side,
    because a restarted node waits for the peers it last saw. Everything else in parallel."""
    chosen = list(names)
    cluster = [name for name in chosen if name in CLUSTER]
    if cluster_formed:
        return [[name] for name in chosen]
    return [[name] for name in chosen if name not in CLUSTER] + ([cluster] if cluster else [])


def cluster_formed(paths: StackPaths) -> bool:
    """True once the local cluster has been formed (a node has its Mnesia database)."""
    return any((paths.rabbit_home(node) / "mnesia" / node.nodename).is_dir() for node in cluster_nodes())


def stack_up(
    settings: GwSettings, components: Iterable[str] | None = None, *, say: Say | None = None
) -> dict[str, UpResult]:
    """Bring up ``components`` (names or aliases; default all) and return what was done per component.

    Independent components come up in parallel. Raises :class:`StackUpError` (after trying every
    component) when any of them cannot be made available; its ``results`` hold the successes.
    """
    names = _names(components)
    results: dict[str, UpResult] = {}
    errors: list[StackError] = []
    lock = threading.Lock()

    def record(result: UpResult) -> None:
        with lock:
            results[result.name] = result

    ctx = _context(settings, say)
    ctx.record = record
    comps = make_components(ctx)

    def run(comp: Component) -> None:
        try:
            record(bring_up(comp))
        except StackError as exc:
            with lock:
                errors.append(exc)

    def run_in_order(group: list[str]) -> None:
        for name in group:
            run(comps[name])

    groups = start_groups(names, cluster_formed=cluster_formed(ctx.paths))
    if any(name in CLUSTER for name in names):  # the nodes' shared dependency, once, before they race for it
        run(comps[EPMD])
    pool = ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="stack-up")
    try:
        for future in [pool.submit(run_in_order, group) for group in groups]:
            future.result()
    except BaseException:
        ctx.cancel.set()
        raise
    finally:
        pool.shutdown(wait=True)

    ordered = {name: results[name] for name in comps if name in results}
    if errors:
        order = list(comps)
        raise StackUpError(sorted(errors, key=lambda e: order.index(e.component)), ordered)
    return ordered


def stack_down(
    settings: GwSettings, components: Iterable[str] | None = None, *, say: Say | None = None, exact: bool = False
) -> dict[str, str]:
    """Stop the processes *we* started (pid files, checked by command line and environment), nothing else.

    ``exact``: stop exactly the named components (as :class:`UpResult` names them, dependencies
    such as ``epmd`` included), not their dependencies: how ``gridwhistle run`` stops only
    what it started itself.
    """
    ctx = _context(settings, say)
    comps = make_components(ctx)
    outcome: dict[str, str] = {}
    names = [n for n in components or () if n in comps] if exact else _names(components)
    for comp in reversed(_selected(names, comps, exact=exact)):
        pidfile = comp.paths.pidfile(comp.name)
        pid = comp.pid() if comp.is_local() else None
        if pid is None:
            if pidfile.exists():
                pidfile.unlink()
                outcome[comp.name] = "not running (stale pid file removed)"
            elif not comp.is_local():
                outcome[comp.name] = f"external at {comp.address_text}, left alone"
            elif port_open(*comp.address(), timeout=0.3):
                outcome[comp.name] = f"not started by us ({comp.address_text} in use), left alone"
            else:
                outcome[comp.name] = "not running"
            comp.say(outcome[comp.name])
            continue
        started = time.monotonic()
        how = comp.stop(pid)
        if is_ours(pid, comp.signature()):
            raise StackError(comp.name, f"pid {pid} still running after SIGKILL", comp.logs())
        if not how.startswith("left running"):
            pidfile.unlink(missing_ok=True)
        outcome[comp.name] = how
        comp.say(f"{how} (pid {pid}, {time.monotonic() - started:.1f}s)")
    return outcome


def _status_of(comp: Component) -> ComponentStatus:
    local = comp.is_local()
    pid = comp.pid() if local else None
    health = comp.probe()
    if pid is not None:
        managed = "us"
    elif not local:
        managed = "external"
    elif health.ok:
        managed = "external (already running)"
        pid = listener_pid(comp.address()[1])
    else:
        managed = "-"
    detail = health.detail
    started_for = read_pidfile_address(comp.paths.pidfile(comp.name)) if pid is not None else None
    if managed == "us" and not pidfile_matches(started_for, comp.identity):
        detail += f" (ours was started for {started_for})"
    if isinstance(comp, RabbitMQ) and health.ok and managed == "us":
        detail += f"; UI http://127.0.0.1:{comp.node.management_port}"
    return ComponentStatus(comp.name, managed, pid, comp.address_text, health.ok, detail)


def stack_status(settings: GwSettings, components: Iterable[str] | None = None) -> list[ComponentStatus]:
    """One row per component (plus epmd for a local RabbitMQ)."""
    comps = make_components(_context(settings, None))
    ordered = _selected(_names(components), comps)
    ordered.sort(key=lambda c: c.name in (EPMD, ALERT_INBOX))  # helpers last: they are not services
    with ThreadPoolExecutor(max_workers=len(ordered), thread_name_prefix="stack-status") as pool:
        return list(pool.map(_status_of, ordered))
