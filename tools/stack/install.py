"""Installing what the stack needs: Debian packages (apt) and the local store (cargo, cached per machine)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tools.stack.model import (
    STORE_CRATE,
    STORE_VERSION,
    StackError,
    apt_lists_present,
    cargo_build_env,
    cargo_install_argv,
    parse_cargo_progress,
    store_binary,
)
from tools.stack.procs import read_tail

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
APT_LISTS = Path("/var/lib/apt/lists")

APT_TIMEOUT = 1800.0

_apt_lock = threading.Lock()
"""dpkg takes a global lock: components installing in parallel take turns."""

Say = Callable[[str], None]


@contextmanager
def policy_rc_d(path: Path = POLICY_RC_D) -> Iterator[bool]:
    """Forbid maintainer scripts from starting services, unless a policy is already in place.

    Yields True when it created (and will remove) the policy file.
    """
    if path.exists() or path.is_symlink():
        yield False
        return
    path.write_text("#!/bin/sh\n# Temporary, from `gridwhistle stack up`: do not start services.\nexit 101\n")
    path.chmod(0o755)
    try:
        yield True
    finally:
        path.unlink(missing_ok=True)


def _lists_present(lists_dir: Path = APT_LISTS) -> bool:
    try:
        return apt_lists_present(p.name for p in lists_dir.iterdir())
    except OSError:
        return False


def apt_install(component: str, packages: Sequence[str], *, log: Path, say: Say) -> None:
    """``apt-get install -y --no-install-recommends`` without letting the packages start services."""
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    apt_get = shutil.which("apt-get")
    if os.geteuid() != 0 or apt_get is None:
        raise StackError(
            component,
            f"{' '.join(packages)} is not installed and this is not a root shell with apt-get; "
            f"install it with: sudo {' '.join(command)}",
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> bool:
        with log.open("ab") as out:
            out.write(f"\n=== apt-get {' '.join(args)}\n".encode())
            out.flush()
            try:
                done = subprocess.run(  # noqa: S603 - fixed program and package names
                    [apt_get, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    timeout=APT_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                out.write(f"\n=== timed out after {APT_TIMEOUT:.0f}s\n".encode())
                return False
        return done.returncode == 0

    with _apt_lock, policy_rc_d():
        say(f"installing {' '.join(packages)} (apt)…")
        if not _lists_present():
            say("apt package lists missing: apt-get update…")
            apt("update")
        if not apt(*command[1:]):
            say("apt-get install failed: apt-get update and retry…")
            apt("update")
            if not apt(*command[1:]):
                raise StackError(component, f"`{' '.join(command)}` failed", [(log, read_tail(log))])


CARGO_FALLBACKS = (Path.home() / ".cargo" / "bin" / "cargo",)
"""Where rustup installs cargo; used when ``cargo`` is not on PATH."""
STORE_BUILD_TIMEOUT = 3600.0
PROGRESS_EVERY = 20.0
"""Seconds between progress lines while the store builds."""


def find_cargo() -> str | None:
    found = shutil.which("cargo")
    if found:
        return found
    return next((str(p) for p in CARGO_FALLBACKS if os.access(p, os.X_OK)), None)


def cache_home() -> Path:
    """``$XDG_CACHE_HOME`` or ``~/.cache``: per machine, shared by every clone."""
    configured = os.environ.get("XDG_CACHE_HOME")
    return Path(configured) if configured else Path.home() / ".cache"


def cargo_install_store(component: str, cache_dir: Path, *, log: Path, say: Say) -> bool:
    """Build the store into ``cache_dir`` unless its program is there. Returns True when it built.

    A second ``stack up`` waiting for the same build (another clone, CI) takes turns on a lock file
    instead of compiling twice; a build interrupted half-way resumes from the cached target dir.
    """
    binary = store_binary(cache_dir)
    if binary.exists():
        return False
    cargo = find_cargo()
    if cargo is None:
        raise StackError(component, "the Rust toolchain (cargo) is needed to build the local store: install rustup")
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with (cache_dir / "build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another stack up is building the store in {cache_dir}: waiting for it…")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():  # built by whoever held the lock
            return False
        say(f"building {STORE_CRATE} {STORE_VERSION} once for this machine (cargo, ~7 min on 2 cores)…")
        say(f"build log: {log}; cache: {cache_dir}")
        _run_cargo(component, cargo, cache_dir, log=log, say=say)
    if not binary.exists():
        raise StackError(component, f"cargo install finished but {binary} is missing", [(log, read_tail(log))])
    shutil.rmtree(cache_dir / "target", ignore_errors=True)  # ~600 MB of objects nobody needs once installed
    return True


def _run_cargo(component: str, cargo: str, cache_dir: Path, *, log: Path, say: Say) -> None:
    env = {**os.environ, **cargo_build_env(cache_dir, os.cpu_count() or 1)}
    started = time.monotonic()
    compiled, current, last_said = 0, "", started
    with log.open("ab") as out:
        out.write(f"\n=== {' '.join(cargo_install_argv(cargo, cache_dir))}\n".encode())
        out.flush()
        proc = subprocess.Popen(  # noqa: S603 - cargo, fixed arguments
            cargo_install_argv(cargo, cache_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                out.write(raw)
                crate = parse_cargo_progress(raw.decode(errors="replace"))
                if crate is not None:
                    compiled, current = compiled + 1, crate
                now = time.monotonic()
                if now - last_said >= PROGRESS_EVERY:
                    say(f"building the store: {compiled} crates compiled, now {current or '…'} ({now - started:.0f}s)")
                    last_said = now
                if now - started > STORE_BUILD_TIMEOUT:
                    proc.kill()
                    raise StackError(component, "cargo install timed out", [(log, read_tail(log))])
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if code != 0:
        raise StackError(component, f"cargo install failed (exit {code})", [(log, read_tail(log))])
    say(f"store built in {time.monotonic() - started:.0f}s")
