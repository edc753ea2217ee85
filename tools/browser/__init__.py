"""The browser of the e2e tier: Debian's ``chromium``, ``chromium-driver`` and CJK fonts, by apt.

``python -m tools.browser`` (``make browser``, part of ``make test``) installs them when either
program is missing; nothing downloads a browser build of its own. The tests find them with
:func:`browser_paths`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PACKAGES = ("chromium", "chromium-driver", "fonts-noto-cjk")
CJK_FONTS = Path("/usr/share/fonts/opentype/noto")
"""fonts-noto-cjk: without a CJK font the console's Chinese pages render as boxes in screenshots."""


def browser_paths() -> tuple[Path, Path] | None:
    """``(chromium, chromedriver)`` when both are on PATH and the CJK fonts are there, else None."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None or not any(CJK_FONTS.glob("NotoSansCJK*")):
        return None
    return Path(chromium), Path(driver)
