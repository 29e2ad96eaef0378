"""fastwamp.auth is sans-I/O, like the rest of the core."""

from __future__ import annotations

import ast
from pathlib import Path

import fastwamp

PACKAGE = Path(fastwamp.__file__).parent
FORBIDDEN = ("asyncio", "socket", "selectors", "ssl", "uvloop", "websockets", "picows",
             "fastwamp.transport", "fastwamp.server")


def test_auth_does_no_io():
    for path in sorted((PACKAGE / "auth").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("fastwamp." if node.level else "") + (node.module or "")]
            else:
                continue
            for name in names:
                for forbidden in FORBIDDEN:
                    assert name != forbidden and not name.startswith(forbidden + "."), (
                        f"{path.name} imports {name}: authentication must stay sans-I/O")
