"""Installing what the stack needs: Debian packages (apt) and the FerretDB launcher (go build)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shared.stack.model import StackError, apt_lists_present, needs_rebuild
from shared.stack.procs import read_tail

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
APT_LISTS = Path("/var/lib/apt/lists")
GO_FALLBACKS = (Path("/usr/local/go/bin/go"),)
"""Where the official Go tarball installs; used when ``go`` is not on PATH."""

APT_TIMEOUT = 1800.0
GO_BUILD_TIMEOUT = 1200.0

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


def find_go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    return next((str(p) for p in GO_FALLBACKS if os.access(p, os.X_OK)), None)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def go_build(component: str, src: Path, binary: Path, *, log: Path, say: Say) -> bool:
    """Build the Go program in ``src`` to ``binary`` unless it is newer than its sources.

    Returns True when it built.
    """
    required = [src / "main.go", src / "go.mod", src / "go.sum"]
    missing = [str(s) for s in required if not s.exists()]
    sources = [*required, *(p for p in sorted(src.glob("*.go")) if p.name != "main.go")]
    if missing:
        raise StackError(component, f"launcher sources missing: {', '.join(missing)}")
    if not needs_rebuild(_mtime(binary), (m for s in sources if (m := _mtime(s)) is not None)):
        return False
    go = find_go()
    if go is None:
        raise StackError(
            component,
            "the Go toolchain (>= 1.24) is needed to build the FerretDB launcher: "
            "put `go` on PATH (https://go.dev/dl/)",
        )
    say("building FerretDB launcher (go build, about a minute the first time)…")
    binary.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_name(binary.name + ".tmp")
    with log.open("ab") as out:
        out.write(f"\n=== {go} build in {src}\n".encode())
        out.flush()
        try:
            done = subprocess.run(  # noqa: S603 - the Go toolchain, fixed arguments
                [go, "build", "-trimpath", "-buildvcs=false", "-o", str(tmp), "."],
                cwd=src,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=GO_BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StackError(component, "go build timed out", [(log, read_tail(log))]) from None
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise StackError(component, f"go build failed (exit {done.returncode})", [(log, read_tail(log))])
    tmp.replace(binary)
    return True
