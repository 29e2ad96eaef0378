"""The cluster's routing decisions stay sans-I/O; single-process mode never loads it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import fastwamp
from fastwamp.cluster.subjects import Subjects, subject_token, token_name

PACKAGE = Path(fastwamp.__file__).parent
FORBIDDEN = ("asyncio", "socket", "selectors", "ssl", "uvloop", "websockets", "picows",
             "fastwamp.transport", "fastwamp.server", "nats")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names

SANS_IO = ("bridge.py", "node.py", "wire.py", "subjects.py")


def test_cluster_decisions_do_no_io():
    for name in SANS_IO:
        path = PACKAGE / "cluster" / name
        for imported in _imports(path):
            for forbidden in FORBIDDEN:
                assert imported != forbidden and not imported.startswith(forbidden + "."), (
                    f"cluster/{name} imports {imported}: it must stay sans-I/O")


def test_single_process_mode_does_not_import_the_cluster():
    code = ("import sys, asyncio; from fastwamp.config import default_config; "
            "from fastwamp.server import serve\n"
            "async def main():\n"
            "    config = default_config()\n"
            "    for lst in config.listeners: lst.port = 0\n"
            "    server = await serve(config)\n"
            "    await server.shutdown()\n"
            "asyncio.run(main())\n"
            "assert 'nats' not in sys.modules and 'fastwamp.cluster' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   cwd=Path(__file__).parents[2])


def test_subject_tokens():
    for name in ("node-1", "a.b", "x y*>", "", "%", "é∂"):
        token = subject_token(name)
        assert token_name(token) == name
        assert not set(token) & set(". *>\t\r\n")
    assert Subjects("fw", "a.b").inbox == "fw.node.a%2Eb"
