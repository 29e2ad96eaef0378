"""A router process started from any installed ``fastwamp``, and a tiny RawSocket client.

The packaging tests run routers from installs that are not the test
environment's (a fresh venv, a container), so they talk to them over plain
blocking sockets: RawSocket with JSON, a few WAMP messages, no client library.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Seconds a router gets to print "fastwamp: ready".
START_TIMEOUT = 60.0
#: Seconds a router gets to exit after SIGTERM.
STOP_TIMEOUT = 15.0
#: Seconds any one socket operation may take.
SOCKET_TIMEOUT = 10.0

HELLO, WELCOME, ABORT, GOODBYE = 1, 2, 3, 6
ERROR, SUBSCRIBE, SUBSCRIBED = 8, 32, 33
CALL, RESULT, REGISTER, REGISTERED, INVOCATION, YIELD = 48, 50, 64, 65, 68, 70

CONFIG = """\
[[realms]]
name = "realm1"

[[listeners]]
type = "websocket"
host = "127.0.0.1"
port = 0

[[listeners]]
type = "rawsocket"
host = "127.0.0.1"
port = 0
"""


class RouterProcess:
    """``command`` (a fastwamp command line) running until :meth:`stop`."""

    def __init__(self, command: Sequence[str], workdir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.stderr_path = workdir / "router.stderr"
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        with open(self.stderr_path, "w", encoding="utf-8") as stderr:
            self.proc = subprocess.Popen(
                list(command), cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1,
            )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))
            if line.strip() == "fastwamp: ready":
                self._ready.set()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait for "fastwamp: ready"; AssertionError (with the output) if it does not come."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("the router did not get ready\n" + self.output())

    def url(self, scheme: str) -> str:
        """The first listening URL that starts with ``scheme`` (``ws://``, ``tcp://``)."""
        for line in self.stdout_lines:
            if line.startswith("fastwamp: listening on " + scheme):
                return line.rsplit(" ", 1)[1]
        raise AssertionError(f"no {scheme} listener announced\n" + self.output())

    def rawsocket_address(self) -> tuple[str, int]:
        host, _, port = self.url("tcp://")[len("tcp://"):].rpartition(":")
        return host.strip("[]"), int(port)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        return ("--- stdout ---\n" + "\n".join(self.stdout_lines)
                + "\n--- stderr ---\n" + self.stderr()[-4000:])

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


REPO_ROOT = Path(__file__).resolve().parents[2]
#: What an install from source needs: the build files and the package.
SOURCE_FILES = ("setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in")


def copy_source(dest: Path) -> Path:
    """Copy the source tree (no build products) to ``dest``, as an sdist would have it."""
    dest.mkdir(parents=True)
    for name in SOURCE_FILES:
        if (REPO_ROOT / name).exists():
            shutil.copy2(REPO_ROOT / name, dest / name)
    build_products = shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__")

    def ignore(folder: str, names: list[str]) -> set[str]:
        ignored = set(build_products(folder, names))
        if Path(folder).name != "console":  # elsewhere .html is Cython's annotation
            ignored.update(name for name in names if name.endswith(".html"))
        return ignored

    shutil.copytree(REPO_ROOT / "fastwamp", dest / "fastwamp", ignore=ignore)
    return dest


def venv_bin(venv: Path, name: str) -> Path:
    """The path of the executable ``name`` in the virtual environment ``venv``."""
    if sys.platform == "win32":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def child_env(**extra: str) -> dict[str, str]:
    """The environment less the switches that change which build runs, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTWAMP_NO_EXTENSIONS", "FASTWAMP_INTERPRETED_ROUTER",
                        "FASTWAMP_REQUIRE_EXTENSIONS", "PYTHONPATH", "VIRTUAL_ENV",
                        "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class RawSocketSession:
    """One WAMP session over RawSocket with JSON, on a blocking socket."""

    def __init__(self, host: str, port: int, realm: str = "realm1") -> None:
        self.sock = socket.create_connection((host, port), timeout=SOCKET_TIMEOUT)
        # Handshake: magic 0x7F, max length 2**24 (0xF), serializer JSON (1).
        self.sock.sendall(bytes([0x7F, 0xF1, 0, 0]))
        reply = self._read_exactly(4)
        assert reply[0] == 0x7F and reply[1] & 0x0F == 1, f"handshake refused: {reply!r}"
        self.send([HELLO, realm, {"roles": {"caller": {}, "callee": {}, "subscriber": {}}}])
        welcome = self.receive()
        assert welcome[0] == WELCOME, welcome
        self.session_id: int = welcome[1]
        self._request = 0

    def _read_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the router closed the connection")
            data += chunk
        return data

    def send(self, message: list[Any]) -> None:
        payload = json.dumps(message).encode()
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)  # frame type 0: message

    def receive(self) -> list[Any]:
        """The next WAMP message (PINGs are answered and skipped)."""
        while True:
            header = self._read_exactly(4)
            kind, length = header[0] & 0x07, int.from_bytes(header[1:], "big")
            payload = self._read_exactly(length)
            if kind == 0:
                message: list[Any] = json.loads(payload)
                return message
            if kind == 1:  # PING: answer PONG with the same payload
                self.sock.sendall(bytes([2]) + header[1:] + payload)

    def next_request(self) -> int:
        self._request += 1
        return self._request

    def close(self) -> None:
        try:
            self.send([GOODBYE, {}, "wamp.close.normal"])
        except OSError:
            pass
        self.sock.close()


def route_one_call(host: str, port: int, procedure: str = "com.example.add2") -> Any:
    """Register ``procedure`` in one session, call it from another; the call's result."""
    callee = RawSocketSession(host, port)
    caller = RawSocketSession(host, port)
    try:
        callee.send([REGISTER, callee.next_request(), {}, procedure])
        registered = callee.receive()
        assert registered[0] == REGISTERED, registered
        caller.send([CALL, caller.next_request(), {}, procedure, [2, 3]])
        invocation = callee.receive()
        assert invocation[0] == INVOCATION, invocation
        callee.send([YIELD, invocation[1], {}, [sum(invocation[4])]])
        result = caller.receive()
        assert result[0] == RESULT, result
        return result[3][0]
    finally:
        caller.close()
        callee.close()


def serve_one_call(venv: Path, workdir: Path) -> RouterProcess:
    """Run the ``fastwamp`` command that ``venv`` installed on :data:`CONFIG` (written to
    ``workdir``), route one call through it and stop it; the stopped process (it must
    have exited with status 0), for its output."""
    (workdir / "router.toml").write_text(CONFIG, encoding="utf-8")
    router = RouterProcess([str(venv_bin(venv, "fastwamp")), "--config", "router.toml"],
                           workdir, env=child_env())
    try:
        router.wait_ready()
        assert route_one_call(*router.rawsocket_address()) == 5
    finally:
        status = router.stop()
    assert status == 0, router.output()
    return router
