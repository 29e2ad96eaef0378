"""``fastwamp --workers N``: N router processes on the same ports, one cluster.

The parent process starts a nats-server on loopback (unless ``[cluster]
nats_urls`` names one), chooses the listening ports the configuration leaves to
the OS (port 0) once for all, and starts N workers: ``python -m fastwamp`` with
the same configuration, each a cluster node (``<node>-w<i>``) binding the ports
with SO_REUSEPORT, so the kernel spreads connections over them.  It prints the
listening URLs and ``fastwamp: ready`` once every worker is ready, forwards
SIGINT/SIGTERM to them, and SIGHUP (each worker reloads the configuration file, as
one router does), and stops the nats-server after they exit.  A worker
that dies is started again.  Workers die with the parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

from .link import default_node_name
from .natsserver import NatsServer

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("fastwamp.workers")

#: Seconds the workers get to be ready.
START_TIMEOUT = 60.0
#: Seconds they get to exit after SIGTERM.
STOP_TIMEOUT = 15.0
_READY = "fastwamp: ready"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _reserve_ports(config: Config) -> tuple[list[int], list[socket.socket]]:
    """A port for each listener (those set to 0 are chosen now, by binding a socket with
    SO_REUSEPORT that is kept open until the workers have bound theirs)."""
    ports, held = [], []
    for listener in config.listeners:
        if listener.port:
            ports.append(listener.port)
            continue
        sock = socket.socket(socket.AF_INET6 if ":" in listener.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((listener.host, 0))
        ports.append(sock.getsockname()[1])
        held.append(sock)
    return ports, held


class Worker:
    def __init__(self, index: int, args: list[str]) -> None:
        self.index = index
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.ready = threading.Event()
        self.lines: list[str] = []

    def start(self) -> None:
        self.ready.clear()
        self.lines = []
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     text=True, bufsize=1, preexec_fn=_die_with_parent)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line == _READY:
                self.ready.set()


def run_workers(config: Config, config_path: str | None, log_level: str | None) -> int:
    """Run ``config.workers`` workers until SIGINT/SIGTERM; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: "
                        "%(message)s")
    nats: NatsServer | None = None
    urls = list(config.cluster.nats_urls)
    if not urls:
        nats = NatsServer()
        urls = [nats.start()]
        log.info("nats-server for the workers at %s", urls[0])
    ports, held = _reserve_ports(config)
    base = config.cluster.node or default_node_name()
    workers = []
    for i in range(config.workers):
        args = [sys.executable, "-m", "fastwamp", "--workers", str(config.workers),
                "--worker", str(i), "--worker-node", base,
                "--worker-nats", ",".join(urls), "--worker-ports",
                ",".join(str(p) for p in ports)]
        if config_path:
            args += ["--config", config_path]
        if log_level:
            args += ["--log-level", log_level]
        workers.append(Worker(i, args))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def reload(*_: object) -> None:
        """SIGHUP: every worker reloads the configuration file.  A worker still starting
        (whose handlers may not be in place) reads the file as it starts anyway."""
        log.info("received SIGHUP: the workers reload the configuration")
        for worker in workers:
            proc = worker.proc
            if proc is not None and proc.poll() is None and worker.ready.is_set():
                proc.send_signal(signal.SIGHUP)

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, reload)
    status = 0
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + START_TIMEOUT
        for worker in workers:
            while not worker.ready.wait(0.05):
                assert worker.proc is not None
                if worker.proc.poll() is not None or time.monotonic() > deadline or stop.is_set():
                    log.error("worker %d did not start", worker.index)
                    return 1
        for sock in held:
            sock.close()
        for line in workers[0].lines:
            if line.startswith("fastwamp: listening on "):
                print(line, flush=True)
        print(_READY, flush=True)
        while not stop.wait(0.2):
            for worker in workers:
                assert worker.proc is not None
                if worker.proc.poll() is not None:
                    log.warning("worker %d exited with status %s: starting it again",
                                worker.index, worker.proc.returncode)
                    worker.start()
    finally:
        for worker in workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in workers:
            if worker.proc is None:
                continue
            try:
                status = max(status, worker.proc.wait(STOP_TIMEOUT))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
                status = 1
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
        if nats is not None:
            nats.stop()
    return status


def worker_config(config: Config, index: int, node: str, nats_urls: str, ports: str,
                  workers: int | None = None) -> None:
    """Make ``config`` the configuration of worker ``index`` (in place; at start, and
    again on each configuration read by a SIGHUP reload)."""
    if workers is not None:
        config.workers = workers  # (--workers N may be given without the file saying so)
    cluster = config.cluster
    cluster.enabled = True
    cluster.node = f"{node}-w{index}"
    if not cluster.nats_urls:
        cluster.nats_urls = nats_urls.split(",")
    for listener, port in zip(config.listeners, ports.split(","), strict=False):
        listener.port = int(port)
