"""``gridwhistle run`` as a person runs it: in a terminal, the live console, Ctrl-C, nothing left.

The run gets its own vhost, database, ports and state directory; the stack is the one
``make test`` brought up, so the run finds it running and must leave it running.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from services.simulator.console import accepted_reports
from services.simulator.processes import ManagedProcess, service_argv
from services.simulator.replay import wait_until_pipeline_quiet
from shared.read_models import CASES, REPORTS
from shared.settings import PROJECT_ROOT, GwSettings
from tools.vhosts import management_client

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SHORT_RUN = 40  # matters: a quick replay, drained well within the wait below


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Terminal:
    """A pseudo-terminal of 160x80 whose output is collected in the background."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 80, 160, 0, 0))
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def text(self) -> str:
        """What was written, without colours and cursor moves."""
        return ANSI.sub("", b"".join(self.chunks).decode(errors="replace"))

    def wait_for(self, needle: str, timeout: float, proc: subprocess.Popen[bytes]) -> float:
        started = time.monotonic()
        while needle not in self.text:
            assert proc.poll() is None, f"run exited with {proc.returncode} before {needle!r}:\n{self.text[-4000:]}"
            assert time.monotonic() - started < timeout, f"no {needle!r} in {timeout}s:\n{self.text[-4000:]}"
            time.sleep(0.5)
        return time.monotonic() - started


def ctrl_c(proc: subprocess.Popen[bytes]) -> int:
    """What the terminal's Ctrl-C delivers to the foreground process; its exit code."""
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=120)


def stop_leftover(proc: subprocess.Popen[bytes], term: Terminal) -> None:
    """Test clean-up only: a run that did not stop on Ctrl-C is killed (the test has failed then)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    term.reader.join(timeout=5)


def run_env(vhost_url: str, mongo_db_name: str, tmp_path: Path) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in ("INTAKE", "DISPATCH", "STATS", "CONSOLE")}
    env = {
        **os.environ,
        "GW_AMQP_URL": vhost_url,
        "GW_MONGO_DB": mongo_db_name,
        "GW_STATE_DIR": str(tmp_path / "state"),
        "GW_LOG_LEVEL": "WARNING",
        "TERM": "xterm-256color",
        **{f"GW_{name}_PORT": str(port) for name, port in ports.items()},
        "GW_CONSOLE_STATS_URL": f"http://127.0.0.1:{ports['STATS']}",
    }
    return env, ports


def start_run(term: Terminal, env: dict[str, str], *options: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "services.cli", "run", "--scenario", "changjia", *options]
    proc = subprocess.Popen(
        argv, stdin=term.slave, stdout=term.slave, stderr=term.slave, env=env, cwd=PROJECT_ROOT, start_new_session=True
    )
    os.close(term.slave)
    term.reader.start()
    return proc


def test_run_shows_the_live_console_and_ctrl_c_leaves_no_process_behind(
    base_settings: GwSettings, vhost_url: str, mongo_db_name: str, tmp_path: Path
) -> None:
    env, ports = run_env(vhost_url, mongo_db_name, tmp_path)
    term = Terminal()
    proc = start_run(term, env, "--limit", str(SHORT_RUN), "--speed", "max", "--rate", "0")
    children: set[int] = set()
    try:
        shown_after = term.wait_for("service queues (the pipeline)", 90, proc)
        assert shown_after < 60, f"console after {shown_after:.0f}s"
        children = children_of(proc.pid)
        assert len(children) == 5, f"stats, dispatch, intake, console and the simulator: {children}"
        term.wait_for("web console: http://127.0.0.1:", 10, proc)
        # the console keeps running after the simulator ends, with its figures on screen
        term.wait_for("all figures equal", 240, proc)
        assert proc.poll() is None, "the run keeps going until Ctrl-C"
        assert ctrl_c(proc) == 0, term.text[-4000:]
    finally:
        stop_leftover(proc, term)
    left = {pid for pid in children if running(pid)}
    assert not left, f"processes left behind: {left}"
    for name in ("simulator", "intake", "dispatch", "stats"):
        assert f"{name} stopped" in term.text
    # the shared stack was running before: the run must not have stopped it
    assert "stopping the stack components" not in term.text
    with management_client(base_settings) as client:
        assert client.get("/api/overview").status_code == 200
    for port in ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def accepted_by_intake(port: int) -> float:
    try:
        return accepted_reports(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
    except httpx.HTTPError:
        return 0.0


def test_ctrl_c_in_the_middle_of_a_replay_loses_no_accepted_report(
    base_settings: GwSettings, vhost_url: str, mongo_db_name: str, tmp_path: Path
) -> None:
    """Interrupt while reports are still coming in; start the services again: every report intake
    accepted is a dispatch case and counted once by stats — none lost, none twice."""
    env, ports = run_env(vhost_url, mongo_db_name, tmp_path)
    term = Terminal()
    proc = start_run(term, env, "--limit", "400", "--speed", "max", "--rate", "15")
    children: set[int] = set()
    try:
        term.wait_for("service queues (the pipeline)", 90, proc)
        deadline = time.monotonic() + 120
        while accepted_by_intake(ports["INTAKE"]) < 60:
            assert time.monotonic() < deadline, "intake did not accept 60 reports in 120 s"
            time.sleep(0.5)
        children = children_of(proc.pid)
        assert ctrl_c(proc) == 0, term.text[-4000:]
    finally:
        stop_leftover(proc, term)
    assert not {pid for pid in children if running(pid)}
    assert "simulator stopped (exit 130)" in term.text, "the simulator was interrupted, not done"

    # the services again, on the same vhost and database: they work off what was in flight
    settings = base_settings.model_copy(update={"amqp_url": vhost_url, "mongo_db": mongo_db_name})
    services = [
        ManagedProcess(
            name.lower(),
            service_argv(name.lower(), port),
            tmp_path / f"{name.lower()}-again.log",
            env={k: v for k, v in env.items() if k.startswith("GW_")},
            health_url=f"http://127.0.0.1:{port}/healthz",
        )
        for name, port in ports.items()
    ]
    try:
        for service in services:
            service.start()
            service.wait_healthy()
        asyncio.run(asyncio.wait_for(wait_until_pipeline_quiet(settings), 300))
        client: MongoClient[dict[str, object]]
        with MongoClient(settings.mongo_url) as client:
            records = client[mongo_db_name][REPORTS].count_documents({})
            published = client[mongo_db_name][REPORTS].count_documents({"status": "published"})
            cases = client[mongo_db_name][CASES].count_documents({})
        stats = httpx.get(f"http://127.0.0.1:{ports['STATS']}/v1/stats/towns/changjia", timeout=10).json()
    finally:
        for service in reversed(services):
            service.stop(grace=30)
    assert 60 <= published < 400, "interrupted in the middle"
    assert records == published, "intake finished every request it had begun before it stopped"
    assert cases == published, "every accepted report became a dispatch case"
    assert stats["counts"]["reported"] == published, "and was counted once by stats"
