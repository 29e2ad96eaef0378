"""The scripts of examples/ run for real against a router, within time bounds.

Each example is copied to a temporary folder (the wampy.js ones with the interop tests'
node_modules linked in: the examples import plain ``wampy`` and ``ws``) and run with
FASTWAMP_WS_URL / FASTWAMP_RAWSOCKET_URL / FASTWAMP_REALM pointing at a private router
started from the embedded default's realm.  Its output is checked line by line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import RouterEndpoints, RouterProcess
from .test_wampy import JS_DIR, node_with_modules

pytestmark = pytest.mark.interop

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Seconds one example may take (each finishes in about one).
EXAMPLE_TIMEOUT = 45.0

#: Script -> lines (regular expressions) its output must contain, in this order.
EXPECTED: dict[str, list[str]] = {
    "wampy_roundrobin.mjs": [
        rf"call {n} answered by worker-{w}" for n, w in zip(range(1, 7), "abcabc", strict=True)
    ],
    "wampy_pubsub.mjs": [
        r'com\.example\.sensor\.temperature: \[21\.5\] \{"unit":"C"\} from session \d+',
        r"com\.example\.sensor\.humidity: \[40\] \{\} from session \d+",
    ],
    "guide_style.mjs": [
        "order 123 processed by instance_1",
        "order 124 processed by instance_2",
        "Operation timed out",
    ],
    "autobahn_rpc.py": [
        r"callee: registered com\.example\.add2 and com\.example\.slow",
        r"caller: 2 \+ 3 = 5",
        r"caller: timeout=2 failed after \d+ ms with wamp\.error\.timeout",
        r"caller: timeout=2000 answered 'slept 0\.5 s'",
    ],
}


def test_every_example_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.iterdir() if p.suffix in (".mjs", ".py")}
    assert scripts - {"guide_api.mjs"} == set(EXPECTED)
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in scripts:
        assert name in readme, f"examples/README.md does not mention {name}"


@pytest.fixture
def example_router(router_factory: Callable[..., RouterProcess]) -> RouterEndpoints:
    router = router_factory()
    assert router.endpoints is not None
    return router.endpoints


def _run(command: list[str], cwd: Path, endpoints: RouterEndpoints) -> str:
    env = dict(os.environ)
    env["FASTWAMP_WS_URL"] = endpoints.ws_url
    env["FASTWAMP_RAWSOCKET_URL"] = "rs://{}:{}".format(*endpoints.rs_host_port)
    env["FASTWAMP_REALM"] = endpoints.realm
    env.setdefault("NO_COLOR", "1")
    try:
        proc = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command[-1]} did not finish within {EXAMPLE_TIMEOUT} s\n{exc.stdout!r}",
                    pytrace=False)
    assert proc.returncode == 0, f"{command[-1]} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _check_output(script: str, output: str) -> None:
    lines = iter(output.splitlines())
    for pattern in EXPECTED[script]:
        assert any(re.match(pattern, line) for line in lines), (
            f"{script}: no line matching {pattern!r} (in order) in:\n{output}")


@pytest.mark.parametrize("script", [s for s in EXPECTED if s.endswith(".mjs")])
def test_wampy_example(script: str, tmp_path: Path, example_router: RouterEndpoints) -> None:
    node = node_with_modules()
    for path in EXAMPLES.glob("*.mjs"):
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(EXAMPLES / "package.json", tmp_path / "package.json")
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules", target_is_directory=True)
    _check_output(script, _run([node, script], tmp_path, example_router))


def test_autobahn_example(tmp_path: Path, example_router: RouterEndpoints) -> None:
    output = _run([sys.executable, str(EXAMPLES / "autobahn_rpc.py")], tmp_path, example_router)
    _check_output("autobahn_rpc.py", output)
