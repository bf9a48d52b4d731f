"""The built book in headless Chromium, with every host but 127.0.0.1 unreachable.

Chapters 1, 3 and 6 are built at the smoke profile and served locally; the ipyvolume widgets of
chapter 1 (one volume) and chapter 6 (ground truth and reconstruction under one camera) must draw,
the figures, the slice viewer's images and the equations must load, and no request may leave
127.0.0.1. Chromium is
driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``), so no driver package
and no downloaded browser is needed. A screenshot of each page is kept in ``_build/test-artifacts/``.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import http.server
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from conftest import require, smoke_artifacts

from xtomo.files import atomic_path
from xtomo.publish import vendor, website

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "_build" / "test-artifacts"
# page: volume canvases that must draw (chapter 6's explorer shows two side by side)
PAGES = {"01_data_simulation": 1, "06_applications": 2}
VIEWPORT = (1280, 1000)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--hide-scrollbars", f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
    # the machine is offline as far as the page can tell: only 127.0.0.1 resolves
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
# the part of a volume canvas that must differ from its background: a skull fills 5-25% of it
MIN_DRAWN = 0.03
# console errors that are not the book's own, each for a reason; any other error fails the test
NOT_THE_BOOKS_ERRORS = (
    "Identifier 'THEBE_JS_URL' has already been declared",  # jupyter-book 1.0.4 adds sphinx-thebe's
    # settings script twice; thebe (live code on Binder) is off in this book
    "Got invalid theme mode",  # pydata-sphinx-theme, on a first visit with no theme stored yet
    "/favicon.ico",  # the browser asks every site for one; the book has none
)
# what the page reports once its widgets, figures and equations have settled
PAGE_STATE = """(async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const all = [...document.querySelectorAll(".cell_output canvas")];
  const area = c => c.width * c.height;
  const most = Math.max(0, ...all.map(area));
  const canvases = all.filter(c => area(c) >= most / 2).map(c => c.getBoundingClientRect())
    .filter(b => b.width > 0 && b.height > 0)
    .map(b => ({x: b.x, y: b.y, width: b.width, height: b.height}));
  return {
    canvases: canvases,
    slices: [...document.querySelectorAll(".widget-image")].filter(i => i.complete && i.naturalWidth).length,
    widgets: document.querySelectorAll(".widget-slider, .jupyter-widgets").length,
    images: [...document.images].map(i => ({src: i.src, complete: i.complete, width: i.naturalWidth})),
    math: document.querySelectorAll("span.math, div.math").length,
    typeset: document.querySelectorAll("mjx-container").length,
  };
})()"""


# between two looks at a page, it paints this many frames (at 60 per second, half a second)
FRAMES_PER_LOOK = 30
NEXT_FRAMES = f"""new Promise(done => {{
  let left = {FRAMES_PER_LOOK};
  const next = () => (--left > 0 ? requestAnimationFrame(next) : done(true));
  requestAnimationFrame(next);
}})"""


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, if any."""
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def _above_9(fd: int) -> int:
    """``fd`` moved to the lowest free descriptor above 9."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Chromium:
    """Headless Chromium and a minimal DevTools-protocol client on its debugging pipe.

    Chromium reads commands from its fd 3 and writes replies and events to fd 4, each a JSON
    object followed by a NUL byte. Every event is kept in ``events`` for the test to inspect.
    """

    def __init__(self, executable: str, profile: Path):
        to_browser, self._send = os.pipe()
        self._receive, from_browser = os.pipe()
        # bash puts the pipe ends on fds 3 and 4, where --remote-debugging-pipe expects them;
        # from fds above 9, so that neither is itself 3 or 4 and clobbered by the other
        to_browser, from_browser = (_above_9(fd) for fd in (to_browser, from_browser))
        script = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser} {to_browser}<&- {from_browser}>&-'
        profile.mkdir(parents=True, exist_ok=True)
        self.log = profile / "chromium.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", script, executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 "--remote-debugging-pipe", "about:blank"],
                pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        os.close(to_browser)
        os.close(from_browser)
        self.events: list[dict] = []
        self._arrived = threading.Condition()  # notified on every event, and when the browser exits
        self._gone = False
        self._replies: queue.Queue = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with open(self._receive, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                *messages, buffer = (buffer + chunk).split(b"\0")
                for message in map(json.loads, messages):
                    if "id" in message:
                        self._replies.put(message)
                        continue
                    with self._arrived:
                        self.events.append(message)
                        self._arrived.notify_all()
        with self._arrived:
            self._gone = True
            self._arrived.notify_all()
        self._replies.put(None)  # the browser went away

    def wait_for(self, predicate, timeout: float = 60) -> bool:
        """Block until an event satisfying ``predicate`` has arrived (True), or the browser exits
        or ``timeout`` seconds pass (False): woken by each new event, never polling."""
        checked, found = 0, False

        def done() -> bool:
            nonlocal checked, found
            found = found or any(map(predicate, self.events[checked:]))
            checked = len(self.events)
            return found or self._gone

        with self._arrived:
            self._arrived.wait_for(done, timeout)
        return found

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:
        """Run one DevTools command and return its result; a protocol error raises."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"Chromium did not answer {method} within {timeout} s") from None
            if reply is None:
                raise RuntimeError(f"Chromium exited during {method}; see {self.log}")
            if reply["id"] == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply["result"]

    def evaluate(self, session: str, expression: str):
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}… raised {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not within 10 s."""
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass  # it is gone already, or gets killed below
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._send)


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` over HTTP on 127.0.0.1 at a free port; yield the base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def built_book(smoke_book):
    """Chapters 1, 3 (the network chapter 6 needs) and 6 of the session's ``smoke_book`` in a book with the
    repository's pages; its HTML folder."""
    try:
        vendor.fetch_bundles(smoke_book / "vendor")
    except vendor.BundleUnavailable as error:
        require(error, f"the book cannot bundle its JavaScript here: {error}")
    with smoke_artifacts(smoke_book):
        return website.build_book("smoke", chapters=[1, 3, 6], out=smoke_book).parent


def visit(chromium: Chromium, url: str, volumes: int, tries: int = 120) -> tuple[dict, bytes]:
    """Open ``url`` in a new tab, wait for its network to go idle (an event of the page), then look
    at it, scrolled to its first volume, after every ``FRAMES_PER_LOOK`` painted frames: once
    ``volumes`` canvases have drawn and two looks in a row agree (the page has settled), or after
    ``tries`` looks, return its state and a PNG. No fixed sleeps: the page's own events pace it."""
    target = chromium.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = chromium.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Network", "Log"):
        chromium.send(f"{domain}.enable", session=session)
    chromium.send("Page.setLifecycleEventsEnabled", {"enabled": True}, session)
    chromium.send("Emulation.setDeviceMetricsOverride", {"width": VIEWPORT[0], "height": VIEWPORT[1],
                                                         "deviceScaleFactor": 1, "mobile": False}, session)
    loader = chromium.send("Page.navigate", {"url": url}, session)["loaderId"]
    chromium.wait_for(lambda e: e["method"] == "Page.lifecycleEvent" and e.get("sessionId") == session
                      and e["params"]["loaderId"] == loader and e["params"]["name"] == "networkIdle", 120)

    def look() -> tuple[dict, bytes, int]:
        chromium.evaluate(session, "document.querySelector('.cell_output canvas')"
                                   "?.scrollIntoView({block: 'center'})")
        chromium.evaluate(session, NEXT_FRAMES)
        state = chromium.evaluate(session, PAGE_STATE)
        png = base64.b64decode(chromium.send("Page.captureScreenshot", {"format": "png"}, session)["data"])
        return state, png, drawn(png, state)

    state, png, count = look()
    for _ in range(tries):
        before = (state, count)
        state, png, count = look()
        if count >= volumes and (state, count) == before:
            break
    return state, png


def drawn_fraction(png: bytes, box: dict) -> float:
    """The fraction of the box's pixels that differ clearly from its most common colour."""
    from PIL import Image

    left, top = round(box["x"]), round(box["y"])
    with Image.open(io.BytesIO(png)) as screenshot:
        crop = screenshot.convert("RGB").crop((left, top, left + round(box["width"]),
                                               top + round(box["height"])))
    pixels = np.asarray(crop, dtype=np.int16).reshape(-1, 3)
    if not len(pixels):
        return 0.0
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float((np.abs(pixels - background).max(axis=1) > 24).mean())


def drawn(png: bytes, state: dict) -> int:
    """How many of the page's volume canvases have drawn something."""
    return sum(drawn_fraction(png, box) > MIN_DRAWN for box in state["canvases"])


def console_errors(events: list[dict]) -> list[str]:
    """Uncaught exceptions, console.error calls and error log entries, as text."""
    errors = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(details.get("exception", {}).get("description") or details["text"])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"{params['entry']['text']} ({params['entry'].get('url', '')})")
    return errors


@pytest.mark.parametrize("page,volumes", PAGES.items())
def test_book_page_works_offline_in_chromium(built_book, tmp_path, page, volumes):
    executable = find_chromium()
    require(executable, "no Chromium on PATH (`make test` installs it on Debian: apt-get install chromium)")
    start = time.perf_counter()
    chromium = Chromium(executable, tmp_path / "chromium")
    try:
        with serve(built_book) as base:
            url = f"{base}notebooks/{page}.html"
            state, png = visit(chromium, url, volumes)
    finally:
        chromium.close()
    screenshot = SCREENSHOTS / f"browser-{page}.png"
    with atomic_path(screenshot) as tmp:
        tmp.write_bytes(png)
    print(f"screenshot of {url}: {screenshot} ({time.perf_counter() - start:.0f} s in Chromium)")

    requests = [e["params"]["request"]["url"] for e in chromium.events
                if e["method"] == "Network.requestWillBeSent"]
    remote = [u for u in requests if urlsplit(u).scheme not in ("data", "blob")
              and urlsplit(u).hostname != "127.0.0.1"]
    assert not remote, f"the page asked the internet for {remote}"
    assert any("/_vendor/nbextensions/ipyvolume/" in u for u in requests), requests
    failed = [e["params"] for e in chromium.events if e["method"] == "Network.loadingFailed"]
    assert not failed, f"requests failed: {failed}"
    errors = [error for error in console_errors(chromium.events)
              if not any(known in error for known in NOT_THE_BOOKS_ERRORS)]
    assert not errors, f"the page logged errors: {errors}"

    assert state["canvases"], f"no ipyvolume canvas on {url} ({state['widgets']} widget elements)"
    assert drawn(png, state) >= volumes, f"{volumes} volume(s) should have drawn; see {screenshot}"
    broken = [image["src"] for image in state["images"] if not (image["complete"] and image["width"])]
    assert state["images"] and not broken, f"figures that did not load: {broken}"
    if page.startswith("01_"):
        assert state["math"] > 0, "chapter 1 has equations for MathJax to typeset"
    if page.startswith("06_"):
        assert state["slices"] >= 1, "the slice viewer shows no slice"
    assert state["typeset"] >= state["math"], f"the bundled MathJax did not typeset: {state}"
