"""Processes we start: pid files, ownership checks (psutil), spawning and stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from tools.stack.model import ENV_COMPONENT, ENV_OWNER, ProcSignature, tail_lines

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_pidfile_address(path: Path) -> str | None:
    """The address the process was started for (second line of our pid files)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 2 or not lines[1].strip():
        return None
    return lines[1].strip()


def write_pidfile(path: Path, pid: int, address: str = "") -> None:
    """``<pid>`` then the address it serves, so ``up`` notices a changed configuration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid}\n{address}\n")
    tmp.replace(path)


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (zombies count as gone)."""
    _reap(pid)
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False


def is_ours(pid: int, sig: ProcSignature) -> bool:
    """True when ``pid`` is alive and is the process we started for ``sig.component``."""
    if pid <= 1 or not is_alive(pid):
        return False
    process = psutil.Process(pid)
    try:
        cmdline = process.cmdline()
    except psutil.Error:
        return False
    try:
        environ: dict[str, str] | None = process.environ()
    except psutil.Error:
        environ = None
    return sig.matches(cmdline, environ)


def owned_pid(pidfile: Path, sig: ProcSignature) -> int | None:
    """The pid recorded in ``pidfile`` if it is still our live process."""
    pid = read_pidfile(pidfile)
    return pid if pid is not None and is_ours(pid, sig) else None


def child_env(component: str, owner: str, extra: Mapping[str, str]) -> dict[str, str]:
    """Our environment plus ``extra`` plus the markers that let ``down`` recognise the process."""
    return {**os.environ, **extra, ENV_OWNER: owner, ENV_COMPONENT: component}


def spawn(argv: Sequence[str], *, env: Mapping[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached (own session, stdin closed), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        out.write(f"\n=== {stamp} gridwhistle stack: {' '.join(argv)}\n".encode())
        out.flush()
        return subprocess.Popen(  # noqa: S603 - argv built by the stack, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate(pid: int, sig: ProcSignature, timeout: float = 20.0) -> str:
    """SIGTERM our process ``pid``, SIGKILL its process group after ``timeout``. Returns what happened."""
    if not is_ours(pid, sig):
        return "not running"
    os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, timeout):
        return "stopped"
    if not is_ours(pid, sig):
        return "stopped"
    try:
        leads_group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return "stopped"
    # Started with start_new_session, so the group is exactly what we launched.
    if leads_group:
        os.killpg(pid, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 5.0)
    return f"killed (no exit {timeout:.0f}s after SIGTERM)"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listener_pid(port: int) -> int | None:
    """Best effort: the pid of the process listening on TCP ``port`` (needs root for others' processes)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def read_tail(path: Path, count: int = 20) -> list[str]:
    """Last ``count`` lines of a log file (empty if missing)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            return tail_lines(fh.read().decode(errors="replace"), count)
    except OSError:
        return []
