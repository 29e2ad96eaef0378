"""systemd: the example unit, and ``Type=notify`` readiness from a real router process.

The test binds the Unix datagram socket systemd would pass in ``$NOTIFY_SOCKET``
and reads what the router sends: ``READY=1`` once it listens (the listeners
must then accept a call at once), ``WATCHDOG=1`` at half of ``$WATCHDOG_USEC``,
``RELOADING=1`` and ``READY=1`` around a reload (SIGHUP), ``STOPPING=1`` on SIGTERM.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from routerproc import (
    CONFIG,
    REPO_ROOT,
    STOP_TIMEOUT,
    RouterProcess,
    child_env,
    route_one_call,
)

from fastwamp.sdnotify import SystemdNotifier, notify_address, watchdog_interval

UNIT = REPO_ROOT / "packaging" / "fastwamp.service"
#: Seconds to wait for each expected notification.
NOTIFY_TIMEOUT = 30.0


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket and its path (short: Unix socket paths have ~100 bytes)."""
    folder = tempfile.mkdtemp(prefix="fw-sd-")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(NOTIFY_TIMEOUT)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


def _receive_until(sock: socket.socket, key: str) -> list[dict[str, str]]:
    """Every notification up to and including the first that sets ``key``."""
    seen = []
    deadline = time.monotonic() + NOTIFY_TIMEOUT
    while time.monotonic() < deadline:
        fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
        seen.append(fields)
        if key in fields:
            return seen
    raise AssertionError(f"no {key} within {NOTIFY_TIMEOUT} s: {seen}")


def test_router_notifies_ready_watchdog_and_stopping(tmp_path: Path, notify_socket) -> None:
    sock, path = notify_socket
    (tmp_path / "router.toml").write_text(CONFIG, encoding="utf-8")
    router = RouterProcess(
        [sys.executable, "-m", "fastwamp", "--config", "router.toml"], tmp_path,
        env=child_env(PYTHONPATH=str(REPO_ROOT), NOTIFY_SOCKET=path, WATCHDOG_USEC="200000"),
    )
    try:
        ready = _receive_until(sock, "READY")[-1]
        assert ready["READY"] == "1" and ready["MAINPID"] == str(router.proc.pid)
        urls = re.findall(r"\S+://\S+", ready["STATUS"])
        assert len(urls) == 2 and urls[0].startswith("ws://"), ready
        # Listening when READY=1 arrives: a call goes through without waiting.
        host, _, port = urls[1][len("tcp://"):].rpartition(":")
        assert route_one_call(host, int(port)) == 5
        assert _receive_until(sock, "WATCHDOG")[-1]["WATCHDOG"] == "1"
        router.proc.send_signal(signal.SIGHUP)  # `systemctl reload`
        reloading = _receive_until(sock, "RELOADING")[-1]
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
        assert _receive_until(sock, "READY")[-1]["READY"] == "1"
        assert route_one_call(host, int(port)) == 5
        router.proc.terminate()
        assert _receive_until(sock, "STOPPING")[-1]["STOPPING"] == "1"
        router.proc.wait(STOP_TIMEOUT)  # one SIGTERM only, as systemd sends
    finally:
        status = router.stop()
    assert status == 0, router.output()


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    assert notify_address(None) is None and notify_address("") is None
    assert notify_address("relative/path") is None
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert notifier.address is None and notifier.send("READY=1") is False
    notifier.stopping()


def test_abstract_socket_names_and_watchdog_settings() -> None:
    name = f"fastwamp-test-{os.getpid()}"
    assert notify_address("@" + name) == "\0" + name
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert SystemdNotifier(notify_address("@" + name)).send("STATUS=hello")
        assert sock.recv(100) == b"STATUS=hello"
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None and watchdog_interval({"WATCHDOG_USEC": "x"}) is None


def test_unit_file_is_a_notify_service() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT, encoding="utf-8")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].split()[0].endswith("/fastwamp")
    assert "--config" in service["ExecStart"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(service["WatchdogSec"]) > 0
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="no systemd-analyze: apt-get install systemd to verify the unit")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    fastwamp = shutil.which("fastwamp") or str(Path(sys.executable).with_name("fastwamp"))
    text = UNIT.read_text(encoding="utf-8").replace("/opt/fastwamp/bin/fastwamp", fastwamp)
    (tmp_path / "fastwamp.service").write_text(text, encoding="utf-8")
    proc = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "fastwamp.service")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stdout + proc.stderr
