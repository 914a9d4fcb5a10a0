"""Headless Chromium driven over the DevTools protocol on a pipe (no port, no
driver library): open a page, evaluate script, move the mouse, take a
screenshot, collect console errors and every URL the page requested.

Chromium reads protocol messages on fd 3 and writes them on fd 4, each a JSON
text ended by a NUL byte (`--remote-debugging-pipe`).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
TIMEOUT_S = 30.0


class BrowserError(RuntimeError):
    """Chromium did not answer, or answered a command with an error."""


def find_chromium() -> str | None:
    configured = os.environ.get("TOKENPROOF_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _high(fd: int) -> int:
    """A copy of `fd` numbered 10 or above (so 3 and 4 are free to map onto)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Chromium:
    def __init__(self, binary: str, width: int = 1400, height: int = 900) -> None:
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="tokenproof-chromium-")
        to_child_r, to_child_w = (_high(fd) for fd in os.pipe())
        from_child_r, from_child_w = (_high(fd) for fd in os.pipe())
        # bash (dash cannot redirect fds above 9) maps the pipe ends onto fds 3
        # and 4, then becomes Chromium.
        script = f'exec "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        argv = ["bash", "-c", script, "bash", binary, *FLAGS, f"--user-data-dir={self.profile}"]
        argv += [f"--window-size={width},{height}", "about:blank"]
        self.log_path = Path(self.profile) / "chromium.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(to_child_r, from_child_w),
            )
        os.close(to_child_r)
        os.close(from_child_w)
        self._out = to_child_w
        self._in = from_child_r
        self._next_id = 0
        self._lock = threading.Condition()
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # ---- protocol --------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._in, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._lock:
                    self._closed = True
                    self._lock.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                with self._lock:
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                    self._lock.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        with self._lock:
            if not self._lock.wait_for(
                lambda: ident in self._answers or self._closed, timeout=TIMEOUT_S
            ):
                raise BrowserError(f"no answer to {method} within {TIMEOUT_S} s{self._log()}")
            if ident not in self._answers:
                raise BrowserError(f"chromium exited while running {method}{self._log()}")
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_event(
        self, method: str, session: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for event in self.events:
                if (
                    event.get("method") == method
                    and event.get("sessionId") == session
                    and (where is None or where(event))
                ):
                    return event
            return None

        with self._lock:
            if not self._lock.wait_for(lambda: found() is not None, timeout=TIMEOUT_S):
                raise BrowserError(f"no {method} within {TIMEOUT_S} s{self._log()}")
            event = found()
        assert event is not None
        return event

    def _log(self) -> str:
        try:
            tail = self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""
        return f"\n--- chromium output ---\n{tail}"

    # ---- pages -----------------------------------------------------------

    def open(self, url: str, javascript: bool = True) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        if not javascript:
            self.send("Emulation.setScriptExecutionDisabled", {"value": True}, session)
        frame = self.send("Page.navigate", {"url": url}, session)
        if frame.get("errorText"):
            raise BrowserError(f"could not open {url}: {frame['errorText']}")
        self.wait_event("Page.loadEventFired", session)
        # That event may be the blank page's, from before the navigation.
        page.wait_for(
            f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
            TIMEOUT_S,
        )
        return page

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._out)
        self._reader.join(timeout=10)
        os.close(self._in)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def evaluate(self, expression: str) -> Any:
        result = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def in_first_screen(self, selector: str) -> bool:
        """The element is rendered and lies wholly within the viewport at the top
        of the page (what a person sees on opening it)."""
        return bool(
            self.evaluate(
                f"""(() => {{
                  window.scrollTo(0, 0);
                  const el = document.querySelector({json.dumps(selector)});
                  if (!el) return false;
                  const r = el.getBoundingClientRect();
                  return el.checkVisibility({{visibilityProperty: true}}) &&
                    r.width > 0 && r.height > 0 && r.top >= 0 &&
                    r.bottom <= window.innerHeight && r.right <= window.innerWidth;
                }})()"""
            )
        )

    def click_element(self, selector: str) -> None:
        """Press and release the left button on the element's middle."""
        x, y = self.hover_element(selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.browser.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                self.session,
            )

    def hover_element(self, selector: str) -> tuple[float, float]:
        """Scroll the element into view and move the mouse onto its middle."""
        box = self.evaluate(
            f"""(() => {{
              const el = document.querySelector({json.dumps(selector)});
              el.scrollIntoView({{block: 'center'}});
              const r = el.getBoundingClientRect();
              return [r.left + r.width / 2, r.top + r.height / 2];
            }})()"""
        )
        self.hover(box[0], box[1])
        return box[0], box[1]

    def hover(self, x: float, y: float) -> None:
        self.browser.send(
            "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y}, self.session
        )

    def scroll_to(self, selector: str) -> None:
        self.evaluate(
            f"document.querySelector({json.dumps(selector)})"
            ".scrollIntoView({block: 'center', inline: 'nearest'})"
        )

    def wait_for(self, expression: str, timeout_s: float = 5.0) -> Any:
        """Poll a script expression until it is truthy (the page updates on
        events the browser delivers asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"{expression} still false after {timeout_s} s")
            time.sleep(0.05)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        data = self.browser.send("Page.captureScreenshot", params, self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails"))[:500])
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(json.dumps(params.get("args"))[:500])
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("sessionId") == self.session and e["method"] == "Network.requestWillBeSent"
        ]


def require_chromium() -> str:
    """Chromium's path, by the `needs_chromium` policy (skip locally, fail in CI)."""
    from tests.needs import check

    check("needs_chromium")
    binary = find_chromium()
    assert binary is not None
    return binary


def keep_artifact(path: Path) -> None:
    """Copy a file the test made (a screenshot) to $TOKENPROOF_ARTIFACTS, if set."""
    folder = os.environ.get("TOKENPROOF_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(folder) / path.name)


@contextlib.contextmanager
def chromium(binary: str, width: int = 1400, height: int = 900) -> Iterator[Chromium]:
    browser = Chromium(binary, width, height)
    try:
        yield browser
    finally:
        browser.close()
