"""Headless Chromium for the browser tests: Debian's ``chromium`` + ``chromedriver`` (``make browser``).

A missing browser fails the test (never a skip): ``make test`` installs it first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tools.browser import browser_paths

T = TypeVar("T")
WAIT = 45.0
SWAPPED = "does not belong to the document"


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    found = browser_paths()
    if found is None:
        pytest.fail("chromium, chromedriver or the CJK fonts are missing: run `make browser`", pytrace=False)
    binary, driver_path = found
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.add_argument("--lang=zh-CN")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(driver_path)))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], what: str) -> T:
    """Wait for a positive signal in the page (htmx swaps it in without a reload)."""
    ignored = (NoSuchElementException, StaleElementReferenceException)  # htmx swapped the element meanwhile

    def checked(d: webdriver.Chrome) -> T | bool:
        try:
            return condition(d)
        except WebDriverException as error:
            if SWAPPED in str(error):  # the same swap, as Chromium sometimes reports it
                return False
            raise

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.3, ignored_exceptions=ignored).until(checked)  # type: ignore[return-value]
    except TimeoutException:
        pytest.fail(f"timed out waiting for {what}; page:\n{driver.page_source[:3000]}", pytrace=False)


class Screenshots:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.paths: list[Path] = []

    def take(self, driver: webdriver.Chrome, name: str) -> None:
        path = self.directory / f"{len(self.paths) + 1:02d}-{name}.png"
        driver.save_screenshot(str(path))
        self.paths.append(path)
        print(f"screenshot: {path}")
