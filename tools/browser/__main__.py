"""``python -m tools.browser``: install Chromium and its driver from Debian when missing."""

from __future__ import annotations

import sys

from rich.console import Console

from shared.settings import GwSettings
from tools.browser import PACKAGES, browser_paths
from tools.stack.install import apt_install
from tools.stack.model import StackError


def main() -> int:
    console = Console(stderr=True)
    found = browser_paths()
    if found is None:
        log = GwSettings().state_dir / "logs" / "browser-apt.log"
        try:
            apt_install("browser", list(PACKAGES), log=log, say=lambda line: console.print(f"browser: {line}"))
        except StackError as error:
            console.print(f"[red]browser: {error}[/]")
            return 1
        found = browser_paths()
        if found is None:
            console.print(f"[red]browser: {' '.join(PACKAGES)} installed but chromium/chromedriver not on PATH[/]")
            return 1
    console.print(f"browser: {found[0]} and {found[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
