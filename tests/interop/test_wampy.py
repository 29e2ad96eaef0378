"""wampy.js 8.0.2 (Node, ``ws`` 8.23) and Autobahn|JS 26 against fastwamp: runs ``node --test``
on tests/interop/js.

The JavaScript dependencies must be installed first (CI does this)::

    npm install --prefix tests/interop/js

(``npm install``, not ``npm ci``: npm 11 rejects wampy 8's lock file in ``ci``
mode, reporting cbor-extract's optional platform packages as missing; ``npm
install`` installs exactly the locked versions.)  Without them this test
fails, unless ``FASTWAMP_ALLOW_SKIP_JS=1`` is set, in which case it skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import RouterEndpoints

pytestmark = pytest.mark.interop

JS_DIR = Path(__file__).resolve().parent / "js"
NODE_TIMEOUT = 90.0  # below pytest-timeout's 120 s, so node's output is still shown
INSTALL_HINT = "npm install --prefix tests/interop/js"


def _missing_js(reason: str) -> None:
    if os.environ.get("FASTWAMP_ALLOW_SKIP_JS") == "1":
        pytest.skip(f"{reason} (skipped because FASTWAMP_ALLOW_SKIP_JS=1)")
    pytest.fail(
        f"{reason}. Install the JavaScript test dependencies with `{INSTALL_HINT}`, "
        "or set FASTWAMP_ALLOW_SKIP_JS=1 to skip the wampy.js tests.",
        pytrace=False,
    )


def node_with_modules() -> str:
    """The ``node`` executable, once the JavaScript test dependencies are checked to be
    installed as package.json pins them (else the test fails, or skips with
    FASTWAMP_ALLOW_SKIP_JS=1)."""
    node = shutil.which("node")
    if node is None:
        _missing_js("node is not on PATH")
    assert node is not None
    node_modules = JS_DIR / "node_modules"
    if not node_modules.is_dir():
        _missing_js(f"{node_modules} does not exist")
    _check_installed(node_modules)
    return node


def _check_installed(node_modules: Path) -> None:
    wanted = json.loads((JS_DIR / "package.json").read_text(encoding="utf-8"))["dependencies"]
    for name, version in wanted.items():
        manifest = node_modules / name / "package.json"
        if not manifest.is_file():
            _missing_js(f"{name} is not installed in {node_modules}")
        installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        if installed != version:
            pytest.fail(
                f"{name} {installed} is installed in {node_modules}, package.json pins {version}: "
                f"run `{INSTALL_HINT}`",
                pytrace=False,
            )


def _node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    match = re.match(r"v(\d+)", version.strip())
    return int(match.group(1)) if match else 0


def test_wampy_node_suite(request: pytest.FixtureRequest) -> None:
    node = node_with_modules()

    # Explicit file list: Node 20 treats a directory argument as "search it",
    # Node 22+ treats arguments as globs.
    files = sorted(p.name for p in JS_DIR.glob("*.test.mjs"))
    assert files, f"no *.test.mjs files in {JS_DIR}"

    # Only now start (or reuse) the router: a skipped test should not start one.
    router: RouterEndpoints = request.getfixturevalue("router")

    env = dict(os.environ)
    if _node_major(node) < 22:
        # Autobahn|JS 26 uses the platform's WebSocket, behind a flag before Node 22.
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --experimental-websocket").strip()
    env["FASTWAMP_WS_URL"] = router.ws_url
    env["FASTWAMP_REALM"] = router.realm
    env.setdefault("NO_COLOR", "1")
    try:
        proc = subprocess.run(
            [node, "--test", "--test-reporter=spec", *files],
            cwd=JS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=NODE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        pytest.fail(f"node --test did not finish within {NODE_TIMEOUT} s\n{out}", pytrace=False)

    output = proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr.strip() else "")
    if proc.returncode != 0:
        pytest.fail(
            f"node --test exited with status {proc.returncode} (router {router.ws_url})\n{output}",
            pytrace=False,
        )
    counts = dict(re.findall(r"^\S*\s*(tests|pass|fail)\s+(\d+)\s*$", proc.stdout, re.MULTILINE))
    assert int(counts.get("tests", 0)) > 0 and counts.get("fail") == "0", (
        "could not confirm that node ran any test\n" + output
    )
    print(output)
