"""Where fastwamp's CPU goes per routed call: py-spy (and perf) on a router under load.

Starts fastwamp (this checkout or ``--router-src``) with ``bench/e2e.py``'s
configuration, puts one ``loadgen`` scenario on it (default ``rpc`` over
RawSocket+msgpack, one write per message) and, on the same router process:

1. measures router CPU per operation without a profiler (user + system time);
2. samples it with ``py-spy record --native`` (Python and C frames) and sorts every
   sample into one group, by the frame nearest the leaf that names one:
   ``decode`` (msgpack/JSON parsing), ``check`` (the structural and value checks),
   ``route`` (``fastwamp/router``: dispatch, dealer, broker, session bookkeeping),
   ``encode`` (serializing and the once-per-message cache), ``transport``
   (``fastwamp/transport`` framing and uvloop's stream code), ``kernel`` (the
   read/write system calls, loopback TCP included), ``loop`` (the rest: uvloop's
   scheduling, interpreter frames with nothing more specific above them).  Samples
   in ``epoll_wait`` are idle time and left out; the shares of the rest, times the
   CPU per operation of step 1, give microseconds per operation;
3. with ``--perf`` (and ``perf`` installed), samples CPU with ``perf record`` and
   splits it by shared object (interpreter, kernel, msgpack, compiled core, uvloop):
   the kernel's share is exact there, py-spy only sees the time spent in a call.

    python bench/profile_router.py --router-src /tmp/fw-REV --duration 15 --perf \\
        --out /tmp/profile-REV

``--out DIR`` keeps the raw samples (``pyspy.txt``: collapsed stacks, which
https://www.speedscope.app and flamegraph.pl read) and the report.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e  # noqa: E402
import loadgen  # noqa: E402

#: (group, substrings of a frame); the first frame from the leaf that matches decides.
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("idle", ("epoll_wait", "epoll_pwait")),
    ("kernel", (" (libc.so", "(libc-")),
    ("transport", ("(_struct.c",)),  # RawSocket frame headers
    ("check", ("value_problem", "message_problem", "_check (", "check_message")),
    ("decode", ("unpack", ".decode (", "loads", "_msgpack_ext_hook")),
    ("encode", ("Packer", "packb", "pack (_cmsgpack", "_encode", "encode_message", "orjson")),
    ("transport", ("fastwamp/transport/", "UVStream", "uv__read", "uv__write", "_on_read")),
    ("route", ("fastwamp/router/", "fastwamp/_core/")),
]
ORDER = ["decode", "check", "route", "encode", "transport", "kernel", "loop"]


def classify(frames: list[str]) -> str:
    return classify_frame(frames)[0]


def classify_frame(frames: list[str]) -> tuple[str, str]:
    """(group, the frame that decided it) of one sample."""
    for frame in reversed(frames):
        for group, needles in GROUPS:
            if any(n in frame for n in needles):
                return group, frame
    return "loop", frames[-1] if frames else "?"


def read_collapsed(path: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            samples.append((stack.split(";"), int(count)))
    return samples


def report(
    samples: list[tuple[list[str], int]],
    user_us: float | None,
    system_us: float | None,
    top: int = 25,
) -> str:
    """The groups in µs per op: ``kernel`` is the router's system time (/proc); the
    user time is shared out by the py-spy samples outside system calls."""
    groups: collections.Counter[str] = collections.Counter()
    deciders: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for frames, n in samples:
        group, frame = classify_frame(frames)
        groups[group] += n
        deciders[group][_function(frame)] += n
    busy = sum(n for g, n in groups.items() if g != "idle")
    user = busy - groups["kernel"]
    total = (user_us or 0.0) + (system_us or 0.0)
    lines = [
        f"py-spy samples: {busy} busy ({groups['kernel']} of them in a system call), "
        f"{groups['idle']} idle (epoll_wait, left out)",
        "",
        "| group | µs per op | share of router CPU |",
        "|---|---|---|",
    ]
    for group in ORDER:
        if group == "kernel":
            us = system_us
        else:
            us = groups[group] / user * user_us if user and user_us is not None else None
        share = f"{us / total * 100:.0f} %" if us is not None and total else "-"
        lines.append(f"| {group} | {'-' if us is None else f'{us:.2f}'} | {share} |")
    if user_us is not None and system_us is not None:
        lines.append(
            f"| total (user {user_us:.2f} + system {system_us:.2f}, without the profiler) "
            f"| {total:.2f} | 100 % |"
        )
    if user and user_us is not None:
        lines += ["", "Within each group, by the frame that decided it (µs per op):", ""]
        for group in ORDER:
            if group == "kernel":
                continue
            items = [
                f"{name} {n / user * user_us:.2f}"
                for name, n in deciders[group].most_common(8)
                if n / user * user_us >= 0.05
            ]
            if items:
                lines.append(f"  {group}: " + "; ".join(items))
    # Inclusive share of fastwamp's Python functions (each counted once per sample).
    merged: collections.Counter[str] = collections.Counter()
    for frames, n in samples:
        if classify(frames) == "idle" or not frames:
            continue
        for name in {_function(f) for f in frames if "fastwamp/" in f and not _outer(f)}:
            merged[name] += n
    lines += ["", f"Top {top} fastwamp functions, inclusive (busy samples):", ""]
    for name, n in merged.most_common(top):
        lines.append(f"  {n / busy * 100:5.1f} %  {name}")
    return "\n".join(lines)


def _outer(frame: str) -> bool:
    """The start-up frames under every sample (not worth listing)."""
    return any(n in frame for n in ("fastwamp/__main__", "fastwamp/cli.py", "fastwamp/server.py"))


def user_system(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid``."""
    times = psutil.Process(pid).cpu_times()
    return times.user, times.system


def _function(frame: str) -> str:
    """``Dealer.call (fastwamp/router/dealer.py:269)`` -> ``Dealer.call (fastwamp/router/dealer.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rstrip(')')})"


def perf_split(pid: int, seconds: float, workdir: Path) -> str:
    data = workdir / "perf.data"
    rec = subprocess.run(
        [
            "perf",
            "record",
            "-F",
            "999",
            "-p",
            str(pid),
            "-o",
            str(data),
            "--",
            "sleep",
            str(seconds),
        ],
        capture_output=True,
        text=True,
    )
    if rec.returncode != 0:
        return f"perf record failed: {rec.stderr.strip()[-300:]}"
    out = subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--sort", "dso", "--stdio"],
        capture_output=True,
        text=True,
    ).stdout
    rows = [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")]
    return "perf, CPU samples by shared object:\n\n" + "\n".join(f"  {r}" for r in rows[:12])


def _later(delay: float, work: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        work()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--router-src", type=Path, default=e2e.REPO_DIR)
    parser.add_argument("--scenario", default="rpc", choices=list(loadgen.SCENARIOS))
    parser.add_argument("--wire", default="rs/msgpack/each", help="TRANSPORT/SERIALIZER/WRITE")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per step")
    parser.add_argument("--rate", type=int, default=400, help="py-spy samples per second")
    parser.add_argument("--perf", action="store_true", help="also split CPU by perf")
    parser.add_argument("--out", type=Path, help="keep pyspy.txt and report.txt here")
    parser.add_argument("--sessions", type=int, default=4000,
                        help="sessions opened per step (scenario sessions)")
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        parser.error("py-spy not found (pip install py-spy)")
    wire = e2e.parse_wire(args.wire)
    scenario = loadgen.SCENARIOS[args.scenario]
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    router = e2e.Fastwamp(wire, args.router_src.resolve())
    try:
        router.start(60, scenario, args.sessions)
        assert router.proc is not None
        pid = router.proc.pid

        marks: list[tuple[float, float]] = []

        def cpu() -> float:
            marks.append(user_system(pid))
            return sum(marks[-1])

        def load(seconds: float) -> loadgen.Result:
            return loadgen.run_scenario(
                scenario, e2e.HOST, router.port, duration=seconds, warmup=1.0,
                router_cpu=cpu, wire=wire, sessions=args.sessions,
            )  # fmt: skip

        base = load(args.duration)
        (u0, s0), (u1, s1) = marks[-2:]
        user_us = (u1 - u0) / base.ops * 1e6 if base.ops else None
        system_us = (s1 - s0) / base.ops * 1e6 if base.ops else None
        print(
            f"{args.scenario} {wire.label()}: {base.ops_per_s:,.0f} ops/s, router "
            f"{base.router_cpu_us_per_op:.2f} µs/op (no profiler)",
            flush=True,
        )
        raw = workdir / "pyspy.txt"
        seconds = int(args.duration)
        spy_argv = ["py-spy", "record", "--pid", str(pid), "--native", "--rate", str(args.rate),
                    "--duration", str(seconds), "--format", "raw", "-o", str(raw)]  # fmt: skip
        # The profilers start once the load is set up and warm (about 2 s in).
        spy = _later(2.0, lambda: subprocess.run(spy_argv, capture_output=True))
        load(args.duration + 1.5)
        spy.join()
        text = f"{args.scenario} {wire.label()}, fastwamp {e2e._revision(args.router_src)}\n\n"
        text += (
            f"{base.ops_per_s:,.0f} ops/s, router {base.router_cpu_us_per_op:.2f} µs/op "
            "without the profiler\n\n"
        )
        text += report(read_collapsed(raw), user_us, system_us)
        if args.perf and shutil.which("perf"):
            holder: dict[str, str] = {}
            perf = _later(2.0, lambda: holder.update(split=perf_split(pid, seconds, workdir)))
            load(args.duration + 1.5)
            perf.join()
            text += "\n\n" + holder.get("split", "perf: no result")
        print(text)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(raw, args.out / "pyspy.txt")
            (args.out / "report.txt").write_text(text + "\n")
    finally:
        router.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
