"""Fixtures that run a real fastwamp router as a subprocess for the interop tests.

The router is started exactly as a user would start it (``python -m fastwamp
--config FILE.toml``) with one realm (``realm1``), one WebSocket listener and
one RawSocket listener, all serializers, OS-assigned ports.  The fixtures wait
for ``fastwamp: ready`` on stdout and read the listening URLs from the
``fastwamp: listening on ...`` lines.

* ``router`` (session scope): one router shared by every test that only needs
  a router to talk to.  On teardown it is stopped with SIGTERM and must exit
  with status 0 and without a traceback on stderr.
* ``router_factory`` (function scope): starts private routers that a test may
  kill, stop or restart (on the same ports) at will; whatever is still running
  at the end of the test is stopped.

The child process imports ``fastwamp`` from the current environment; the
repository root is appended to its ``PYTHONPATH`` so that an uninstalled
checkout works too (an installed or editable ``fastwamp``, or an explicit
``PYTHONPATH``, takes precedence only where it comes first on the path).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REALM = "realm1"
SERIALIZERS = ("json", "msgpack", "cbor")

#: Seconds the router gets to print "fastwamp: ready".
START_TIMEOUT = float(os.environ.get("FASTWAMP_INTEROP_START_TIMEOUT", "20"))
#: Seconds the router gets to exit after SIGTERM.
STOP_TIMEOUT = 10.0

_LISTEN_RE = re.compile(r"^fastwamp: listening on (\S+)\s*$")
_READY_LINE = "fastwamp: ready"


@dataclass(frozen=True)
class RouterEndpoints:
    """Where a running router listens."""

    #: ``ws://HOST:PORT/PATH``
    ws_url: str
    #: ``tcp://HOST:PORT`` (RawSocket)
    rs_url: str
    realm: str = REALM

    @property
    def ws_host_port(self) -> tuple[str, int]:
        return _host_port(self.ws_url)

    @property
    def rs_host_port(self) -> tuple[str, int]:
        return _host_port(self.rs_url)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return parts.hostname, parts.port


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _config_text(
    ws_port: int = 0,
    rs_port: int = 0,
    log_level: str = "info",
    extra: str = "",
    listener_extra: str = "",
    realm_extra: str = "",
) -> str:
    """The router's TOML; ``extra`` (e.g. more ``[[realms]]`` tables) is appended verbatim,
    ``listener_extra`` (e.g. ``auto_ping_interval = 0.5``) goes into both listener tables,
    ``realm_extra`` into realm1's table."""
    sers = "[" + ", ".join(_toml_str(s) for s in SERIALIZERS) + "]"
    return f"""\
log_level = {_toml_str(log_level)}
# Every test client comes from 127.0.0.1: the failed-authentication brake of one
# address would carry over from test to test.
max_auth_failures_per_address = 1000

[[realms]]
name = {_toml_str(REALM)}
allow_anonymous = true
{realm_extra}

[[listeners]]
type = "websocket"
host = "127.0.0.1"
port = {ws_port}
path = "/ws"
serializers = {sers}
{listener_extra}

[[listeners]]
type = "rawsocket"
host = "127.0.0.1"
port = {rs_port}
serializers = {sers}
{listener_extra}
""" + (f"\n{extra}\n" if extra else "")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO_ROOT) not in paths:
        paths.append(str(REPO_ROOT))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


#: realm1's extra keys by default: its anonymous clients are trusted with the whole meta
#: API (the meta, hostile, dead-peer and JavaScript tests call wamp.session.get/list,
#: wamp.registration.list_callees, fastwamp.router.get_stats...; an untrusted role may
#: not, see tests/interop/test_authorization.py).  The guide router passes "" instead.
TRUSTED_REALM1 = 'admin_authroles = ["anonymous"]'


class RouterProcess:
    """One fastwamp router subprocess."""

    def __init__(
        self, workdir: Path, name: str = "router", extra_config: str = "",
        listener_config: str = "", realm_config: str = TRUSTED_REALM1,
    ) -> None:
        self.workdir = workdir
        self.name = name
        #: TOML appended to the generated config (e.g. extra ``[[realms]]`` tables).
        self.extra_config = extra_config
        #: TOML keys added to both listener tables (e.g. ``auto_ping_interval = 0.5``).
        self.listener_config = listener_config
        #: TOML keys added to realm1's table.
        self.realm_config = realm_config
        self.config_path = workdir / f"{name}.toml"
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen[str] | None = None
        self.endpoints: RouterEndpoints | None = None
        self.stdout_lines: list[str] = []
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._stderr_file = None
        self._starts = 0

    # -- lifecycle -------------------------------------------------------

    def start(self, ws_port: int = 0, rs_port: int = 0) -> RouterEndpoints:
        assert self.proc is None or self.proc.poll() is not None, "router already running"
        self.config_path.write_text(
            _config_text(
                ws_port, rs_port, extra=self.extra_config, listener_extra=self.listener_config,
                realm_extra=self.realm_config,
            ),
            encoding="utf-8",
        )
        self.stdout_lines = []
        self._ready = threading.Event()
        self._starts += 1
        if self._stderr_file is not None:
            self._stderr_file.close()
        self._stderr_file = open(self.stderr_path, "w", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastwamp", "--config", str(self.config_path)],
            cwd=self.workdir,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        # Drain stdout for the whole life of the process so that the router
        # never blocks on a full pipe.
        self._reader = threading.Thread(
            target=self._read_stdout, args=(self.proc,), daemon=True, name=f"{self.name}-stdout"
        )
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(1)
                pytest.fail(
                    f"fastwamp exited with status {self.proc.returncode} before it was ready\n"
                    + self.diagnostics()
                )
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"fastwamp did not print {_READY_LINE!r} within {START_TIMEOUT} s\n"
                    + self.diagnostics()
                )
        self.endpoints = self._parse_endpoints()
        return self.endpoints

    def restart(self) -> RouterEndpoints:
        """Stop (cleanly) and start again on the same ports."""
        assert self.endpoints is not None
        ws_port = self.endpoints.ws_host_port[1]
        rs_port = self.endpoints.rs_host_port[1]
        self.stop()
        return self.start(ws_port=ws_port, rs_port=rs_port)

    def stop(self, check: bool = True) -> int:
        """SIGTERM, wait, and (if ``check``) require a clean exit."""
        proc = self.proc
        assert proc is not None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                if check:
                    pytest.fail(
                        f"fastwamp did not exit within {STOP_TIMEOUT} s of SIGTERM\n"
                        + self.diagnostics()
                    )
        self._finish_io()
        rc = proc.returncode
        if check:
            stderr = self.stderr_text()
            assert rc == 0, f"fastwamp exited with status {rc} on SIGTERM\n" + self.diagnostics()
            assert "Traceback (most recent call last)" not in stderr, (
                "fastwamp logged a traceback\n" + self.diagnostics()
            )
        return rc

    def kill(self) -> None:
        """SIGKILL: the router vanishes without closing anything."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._finish_io()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- output ------------------------------------------------------------

    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\r\n")
            self.stdout_lines.append(line)
            if line.strip() == _READY_LINE:
                self._ready.set()

    def _finish_io(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def _parse_endpoints(self) -> RouterEndpoints:
        ws_url = rs_url = None
        for line in self.stdout_lines:
            m = _LISTEN_RE.match(line.strip())
            if not m:
                continue
            url = m.group(1)
            if url.startswith("ws://"):
                ws_url = url
            elif url.startswith("tcp://"):
                rs_url = url
        if ws_url is None or rs_url is None:
            self.kill()
            pytest.fail("fastwamp did not announce both listeners\n" + self.diagnostics())
        return RouterEndpoints(ws_url=ws_url, rs_url=rs_url)

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def diagnostics(self, tail: int = 60) -> str:
        out = "\n".join(self.stdout_lines[-tail:])
        err = "\n".join(self.stderr_text().splitlines()[-tail:])
        return f"--- fastwamp stdout ---\n{out}\n--- fastwamp stderr ---\n{err}\n"


@pytest.fixture(scope="session")
def router_process() -> Iterator[RouterProcess]:
    """The shared router process (session scope)."""
    with tempfile.TemporaryDirectory(prefix="fastwamp-interop-") as tmp:
        rp = RouterProcess(Path(tmp), "shared")
        rp.start()
        try:
            yield rp
        finally:
            if rp.running:
                rp.stop(check=True)
            else:
                rc = rp.proc.returncode if rp.proc else None
                rp._finish_io()
                pytest.fail(
                    f"shared fastwamp died during the tests (status {rc})\n" + rp.diagnostics()
                )


@pytest.fixture
def router(router_process: RouterProcess) -> RouterEndpoints:
    """Endpoints of the shared router; fails the test at once if the router has died."""
    if not router_process.running:
        pytest.fail("the shared fastwamp router is not running\n" + router_process.diagnostics())
    assert router_process.endpoints is not None
    return router_process.endpoints


@pytest.fixture
def router_factory(tmp_path: Path) -> Iterator[Callable[..., RouterProcess]]:
    """Start private routers: ``rp = router_factory(); rp.endpoints; rp.kill(); rp.restart()``.

    ``router_factory(extra_config=..., listener_config=...)`` adds TOML (see
    :class:`RouterProcess`).  Routers still running at the end of the test are
    stopped and must exit cleanly.
    """
    started: list[RouterProcess] = []

    def factory(extra_config: str = "", listener_config: str = "") -> RouterProcess:
        rp = RouterProcess(
            tmp_path, f"router{len(started)}", extra_config=extra_config,
            listener_config=listener_config,
        )
        started.append(rp)
        rp.start()
        return rp

    yield factory
    for rp in started:
        if rp.running:
            rp.stop(check=True)
        else:
            rp._finish_io()
