"""The browser of the e2e tier: Debian's ``chromium`` and ``chromium-driver``, installed by apt.

``python -m tools.browser`` (``make browser``, part of ``make test``) installs them when either
program is missing; nothing downloads a browser build of its own. The tests find them with
:func:`browser_paths`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PACKAGES = ("chromium", "chromium-driver")
PROGRAMS = {"chromium": ("chromium",), "chromedriver": ("chromedriver",)}


def browser_paths() -> tuple[Path, Path] | None:
    """``(chromium, chromedriver)`` when both are on PATH, else None."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    return Path(chromium), Path(driver)
