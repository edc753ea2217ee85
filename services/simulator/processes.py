"""Child processes of ``gridwhistle run``: started in their own session (so Ctrl-C reaches
only us), stopped by their PID in a chosen order with SIGTERM, then SIGKILL after a grace
period. Logs go to ``<state_dir>/logs/<name>.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from collections.abc import Callable


HEALTH_TIMEOUT = 90.0


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    health_url: str | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log_file.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> None:
        if self.health_url is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early; last log lines:\n{self.log_tail()}")
            try:
                if httpx.get(self.health_url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s; last log lines:\n{self.log_tail()}")

    def stop(self, grace: float = 30.0, hurry: Callable[[], bool] = lambda: False) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds (less once ``hurry()`` says so), then SIGKILL.
        Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.process.poll() is None and time.monotonic() < deadline and not hurry():
                time.sleep(0.1)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def service_argv(service: str, port: int) -> list[str]:
    """``gridwhistle <service> serve --port <port>`` with this interpreter: how every service starts."""
    return python_module("services.cli", service, "serve", "--port", str(port))


def vm_kib(pid: int | None, field_name: str) -> float:
    """A ``/proc/<pid>/status`` memory figure in KiB (``VmRSS`` now, ``VmHWM`` peak); nan when gone."""
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")
