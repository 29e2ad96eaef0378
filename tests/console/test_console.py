"""The live web console: its resources, and the page end to end in headless Chromium.

The browser test serves the page from a small HTTP server (``console_page``, as the
router's HTTP listener will), points it at a real router process, and checks that
it shows a shared registration with its three callees, then two when one leaves.
It needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium``
package (a test extra); it skips, saying so, where they are missing. It saves a
screenshot (``$FASTWAMP_CONSOLE_SCREENSHOT``, else in the test's temporary folder).
"""

from __future__ import annotations

import http.server
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from routerproc import (
    CONFIG,
    REGISTER,
    REGISTERED,
    REPO_ROOT,
    SUBSCRIBE,
    SUBSCRIBED,
    RawSocketSession,
    RouterProcess,
    child_env,
)

from fastwamp.console import console_page

#: Seconds the page gets to show a change.
PAGE_TIMEOUT = 20.0
#: The console reads the meta API, which only trusted roles may list: trust anonymous here.
CONSOLE_CONFIG = CONFIG.replace('name = "realm1"\n',
                                'name = "realm1"\nadmin_authroles = ["anonymous"]\n', 1)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def test_console_page_serves_the_page_with_its_script_inlined() -> None:
    for path in ("", "/", "/console", "/console/", "/index.html", "/console/index.html?x=1"):
        served = console_page(path)
        assert served is not None, path
        content_type, body = served
        assert content_type.startswith("text/html")
        assert b'<script src="console.js">' not in body
        assert b"class WampSession" in body and b"wamp.2.json" in body
    content_type, script = console_page("/console/console.js") or ("", b"")
    assert content_type.startswith("text/javascript") and b"fastwamp.router.get_stats" in script
    for path in ("/console/../setup.py", "/nothing", "/console/__init__.py"):
        assert console_page(path) is None, path


def test_console_config_trusts_its_role() -> None:
    assert 'admin_authroles = ["anonymous"]' in CONSOLE_CONFIG


def test_console_needs_nothing_from_elsewhere() -> None:
    _, body = console_page("/console") or ("", b"")
    text = body.decode()
    assert "http://" not in text and "https://" not in text and "//cdn" not in text


class ConsoleServer(http.server.ThreadingHTTPServer):
    """Serves ``console_page`` at /console, as the router's HTTP listener does."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                served = console_page(self.path)
                if served is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", served[0])
                self.send_header("Content-Length", str(len(served[1])))
                self.end_headers()
                self.wfile.write(served[1])

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def console_url(tmp_path: Path) -> Iterator[tuple[str, RouterProcess]]:
    """The console's URL, pointed at a running router; and that router."""
    (tmp_path / "router.toml").write_text(CONSOLE_CONFIG, encoding="utf-8")
    router = RouterProcess([sys.executable, "-m", "fastwamp", "--config", "router.toml"],
                           tmp_path, env=child_env(PYTHONPATH=str(REPO_ROOT)))
    server = ConsoleServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        router.wait_ready()
        port = server.server_address[1]
        yield (f"http://127.0.0.1:{port}/console?realm=realm1&url="
               + quote(router.url("ws://"), safe="")), router
    finally:
        server.shutdown()
        server.server_close()
        assert router.stop() == 0, router.output()


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium driven by Selenium (skips when either is missing)."""
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[test]'")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no Chromium: apt-get install chromium chromium-driver (Debian)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(driver: object, script: str, what: str) -> object:
    """Poll a JavaScript expression until it is truthy; its value."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({script});")  # type: ignore[attr-defined]
        if value:
            return value
        time.sleep(0.1)
    status = driver.execute_script(  # type: ignore[attr-defined]
        "return document.getElementById('status').textContent + ' | ' + "
        "document.getElementById('problem').textContent;")
    raise AssertionError(f"the console did not show {what} within {PAGE_TIMEOUT} s ({status})")


#: Wraps the console's calls so that get_stats also reports per-registration counters in
#: the shape the page reads: registrations: {id: {calls, errors, callees: {session: n}}}.
FAKE_REGISTRATION_COUNTERS = """
const session = window.fastwampConsole.session, call = session.call.bind(session);
const registration = Number(arguments[0]);
let tick = 0;
session.call = async (procedure, args) => {
  const result = await call(procedure, args);
  if (procedure === "fastwamp.router.get_stats") {
    tick += 1;
    const callees = await call("wamp.registration.list_callees", [registration]);
    result.registrations = {[registration]: {calls: 60 * tick, errors: 6 * tick,
      callees: Object.fromEntries(callees.map((id, i) => [id, 10 * (i + 1) * tick]))}};
  }
  return result;
};
"""


def _shows_load_split(browser: object, row: str) -> None:
    """Per-registration counters in get_stats show as calls/s, error rate and shares."""
    registration = browser.execute_script(f"return {row}.dataset.id;")  # type: ignore[attr-defined]
    browser.execute_script(FAKE_REGISTRATION_COUNTERS, registration)  # type: ignore[attr-defined]
    _wait_for(browser, f"{row} && {row}.cells[5].textContent === '10.0%'", "the error rate")
    shares = browser.execute_script(  # type: ignore[attr-defined]
        f"return Array.from({row}.querySelectorAll('.share')).map(s => s.textContent.trim());")
    assert [share.split(" · ")[1] for share in shares] == ["17%", "33%", "50%"], shares
    calls = browser.execute_script(f"return {row}.cells[4].textContent;")  # type: ignore[attr-defined]
    assert float(calls) > 0, calls


def _register_callees(host: str, port: int, count: int) -> list[RawSocketSession]:
    callees = []
    for _ in range(count):
        callee = RawSocketSession(host, port)
        callee.send([REGISTER, callee.next_request(), {"invoke": "roundrobin"},
                     "com.example.shared"])
        assert callee.receive()[0] == REGISTERED
        callees.append(callee)
    return callees


@pytest.mark.timeout(120)
def test_console_shows_registration_callees_and_updates_live(console_url, browser,
                                                             tmp_path: Path) -> None:
    url, router = console_url
    browser.get(url)  # type: ignore[attr-defined]
    _wait_for(browser, "document.getElementById('status').dataset.state === 'up'", "a session")
    callees = _register_callees(*router.rawsocket_address(), count=3)
    subscriber = RawSocketSession(*router.rawsocket_address())
    subscriber.send([SUBSCRIBE, subscriber.next_request(), {"match": "prefix"}, "com.example"])
    assert subscriber.receive()[0] == SUBSCRIBED
    callees.append(subscriber)
    row = "document.querySelector('#registrations tr[data-uri=\"com.example.shared\"]')"
    try:
        _wait_for(browser, f"{row} && {row}.dataset.callees === '3'", "three callees")
        cells = browser.execute_script(  # type: ignore[attr-defined]
            f"return Array.from({row}.cells).map(c => c.textContent);")
        assert cells[1:3] == ["exact", "roundrobin"], cells
        for callee in callees[:3]:
            assert str(callee.session_id) in cells[3], cells
            _wait_for(browser, f"document.querySelector('#sessions tr[data-session=\"{callee.session_id}\"]')",
                      f"session {callee.session_id}")
        _wait_for(browser, "document.querySelector('#counters tr[data-counter=\"sessions_joined\"]')",
                  "the router's counters")
        topic = "document.querySelector('#subscriptions tr[data-uri=\"com.example\"]')"
        _wait_for(browser, f"{topic} && {topic}.cells[1].textContent === 'prefix'",
                  "the subscription")
        screenshot = Path(os.environ.get("FASTWAMP_CONSOLE_SCREENSHOT", tmp_path / "console.png"))
        assert browser.save_screenshot(str(screenshot))  # type: ignore[attr-defined]
        _shows_load_split(browser, row)
        callees.pop(0).close()
        _wait_for(browser, f"{row} && {row}.dataset.callees === '2'", "two callees after one left")
    finally:
        for session in callees:
            session.close()
    _wait_for(browser, f"!{row}", "the registration gone with its last callee")
    errors = [entry for entry in browser.get_log("browser")  # type: ignore[attr-defined]
              if entry["level"] == "SEVERE"]
    assert not errors, errors


@pytest.mark.timeout(120)
def test_console_opened_from_disk(tmp_path: Path, browser) -> None:
    """index.html from a file:// URL loads console.js beside it and joins, where the
    WebSocket listener allows the origin "null" (README)."""
    websocket = 'type = "websocket"\nhost = "127.0.0.1"\nport = 0\n'
    config = CONSOLE_CONFIG.replace(websocket, websocket + 'allowed_origins = ["null"]\n', 1)
    assert 'allowed_origins = ["null"]' in config
    (tmp_path / "router.toml").write_text(config, encoding="utf-8")
    router = RouterProcess([sys.executable, "-m", "fastwamp", "--config", "router.toml"],
                           tmp_path, env=child_env(PYTHONPATH=str(REPO_ROOT)))
    try:
        router.wait_ready()
        page = (REPO_ROOT / "fastwamp" / "console" / "index.html").as_uri()
        browser.get(f"{page}?url={quote(router.url('ws://'), safe='')}")  # type: ignore[attr-defined]
        _wait_for(browser, "document.getElementById('status').dataset.state === 'up'",
                  "a session")
        _wait_for(browser, "document.querySelector('#sessions tbody tr')", "its own session")
    finally:
        assert router.stop() == 0, router.output()
