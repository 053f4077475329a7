"""Headless Chromium, driven through chromedriver (selenium), kept off the network.

Chromium is started with the flags that stop its own background traffic and a fresh profile
folder, and with a host-resolver rule that resolves no name but 127.0.0.1: a viewer that
reaches for a font, a script or analytics on the internet gets nothing, so a page that still
renders proves it needs nothing from outside. Every request the page makes is read back from
chromedriver's performance log, so a check can also name what was attempted.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import INSTALL_FIX, ViewerSetupError

T = TypeVar("T")

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    # Every name but 127.0.0.1 fails to resolve: nothing can leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)

LOCAL_SCHEMES = frozenset({"data", "blob", "chrome", "chrome-extension", "about", "devtools"})


@dataclass(frozen=True, slots=True)
class BrowserOptions:
    """How to start the browser."""

    chromium: Path = Path("/usr/bin/chromium")
    chromedriver: Path = Path("/usr/bin/chromedriver")
    width: int = 1400
    height: int = 900
    timeout_s: float = 120.0
    """Longest wait for one page to render (Perfetto compiles its WebAssembly engine first;
    on a busy 2-core machine that alone takes tens of seconds)."""

    def __post_init__(self) -> None:
        if not 320 <= self.width <= 8000 or not 240 <= self.height <= 8000:
            raise ViewerSetupError(
                f"window {self.width}x{self.height}: give a width and height of 320..8000 pixels"
            )
        if not 1 <= self.timeout_s <= 3600:
            raise ViewerSetupError(f"--timeout {self.timeout_s!r}: give 1..3600 seconds")

    def check_installed(self) -> None:
        """Raise :class:`ViewerSetupError` unless the browser and its driver are executable."""
        for path, what in ((self.chromium, "chromium"), (self.chromedriver, "chromedriver")):
            if not path.is_file() or not shutil.which(str(path)):
                raise ViewerSetupError(f"{what} not found at {str(path)!r}: {INSTALL_FIX}")


@dataclass(frozen=True, slots=True)
class ConsoleEntry:
    """One message of the page's console or of the browser about the page."""

    level: str
    source: str
    message: str

    @property
    def is_error(self) -> bool:
        """An uncaught exception or a ``console.error`` (not a failed favicon fetch)."""
        return self.level == "SEVERE" and self.source in ("javascript", "console-api")


class Browser:
    """One Chromium session; :func:`browser` starts and ends it."""

    def __init__(self, driver: Any, options: BrowserOptions) -> None:
        self._driver = driver
        self.options = options
        self.version = str(driver.capabilities.get("browserVersion", "?"))
        self._console: list[ConsoleEntry] = []
        self._alerts: list[str] = []

    def open(self, url: str) -> None:
        """Load ``url`` in a clean tab: logs of the previous page are read and dropped."""
        self.console()
        self.requests()
        self.alerts()
        self._driver.get("about:blank")
        self._driver.set_window_size(self.options.width, self.options.height)
        self._driver.get(url)

    def evaluate(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body, ``return`` gives the value) in the page.

        An alert the page opened is dismissed and recorded (see :meth:`alerts`), and the
        script's value is then None.
        """
        from selenium.common.exceptions import UnexpectedAlertPresentException

        try:
            return self._driver.execute_script(script, *args)
        except UnexpectedAlertPresentException as alert:
            # chromedriver dismisses the dialog and tells its text on the next command.
            self._alerts.append(str(alert.alert_text))
            return None

    def wait_for(self, probe: Callable[[], T | None]) -> T | None:
        """Call ``probe`` until it returns something not None, or None after the timeout."""
        deadline = time.monotonic() + self.options.timeout_s
        while True:
            found = probe()
            if found is not None or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    def press(self, key: str) -> None:
        """Type ``key`` into the page (viewers bind single keys to navigation)."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self._driver).send_keys(key).perform()

    def screenshot(self) -> bytes:
        """The visible page as PNG."""
        data: bytes = self._driver.get_screenshot_as_png()
        return data

    def peek_console(self) -> list[ConsoleEntry]:
        """Console and browser messages of the current page so far."""
        # chromedriver hands each log entry out once: keep them until console() takes them.
        self._console += [
            ConsoleEntry(str(e.get("level")), str(e.get("source")), str(e.get("message")))
            for e in self._driver.get_log("browser")
        ]
        return list(self._console)

    def console(self) -> list[ConsoleEntry]:
        """Console and browser messages since the last call of this method."""
        entries = self.peek_console()
        self._console.clear()
        return entries

    def requests(self) -> list[str]:
        """URLs the page requested since the last call (from the performance log)."""
        urls = []
        for entry in self._driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(str(message["params"]["request"]["url"]))
            elif message.get("method") == "Network.webSocketCreated":
                urls.append(str(message["params"]["url"]))
        return urls

    def alerts(self) -> list[str]:
        """Texts of the alert, confirm or prompt dialogs the page opened since the last call;
        one still open is dismissed."""
        from selenium.common.exceptions import NoAlertPresentException

        try:
            alert = self._driver.switch_to.alert
            self._alerts.append(str(alert.text))
            alert.dismiss()
        except NoAlertPresentException:
            pass
        found, self._alerts = self._alerts, []
        return found


def is_external(url: str) -> bool:
    """Whether ``url`` points off this machine (anything but 127.0.0.1 and in-browser data)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return False
    return parts.hostname != "127.0.0.1"


@contextmanager
def browser(options: BrowserOptions) -> Iterator[Browser]:
    """A started headless Chromium with a fresh profile folder, quit and removed afterwards."""
    options.check_installed()
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise ViewerSetupError(
            "the Python package selenium is not installed: `pip install selenium`, or "
            "run `tox -e viewers`"
        ) from None
    profile = Path(tempfile.mkdtemp(prefix="queueprof-chromium-"))
    chrome = webdriver.ChromeOptions()
    chrome.binary_location = str(options.chromium)
    for flag in CHROMIUM_FLAGS:
        chrome.add_argument(flag)
    chrome.add_argument(f"--user-data-dir={profile}")
    chrome.add_argument(f"--window-size={options.width},{options.height}")
    chrome.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An explicit driver path: selenium then never runs selenium-manager, which downloads.
    service = Service(executable_path=str(options.chromedriver))
    try:
        driver = webdriver.Chrome(service=service, options=chrome)
    except WebDriverException as error:
        shutil.rmtree(profile, ignore_errors=True)
        raise ViewerSetupError(
            f"could not start {options.chromium} through {options.chromedriver}: "
            f"{error.msg or error}; check that chromium and chromium-driver are the same "
            f"version ({INSTALL_FIX})"
        ) from None
    driver.set_page_load_timeout(options.timeout_s)
    try:
        yield Browser(driver, options)
    finally:
        with suppress(WebDriverException):
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
