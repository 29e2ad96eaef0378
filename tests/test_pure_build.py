"""The pure-Python build passes the core, router and fuzz suites too.

CI runs the compiled build (what users get); this test runs the same routing
tests again in a subprocess with ``FASTWAMP_NO_EXTENSIONS=1``, so both builds of
every compiled module (``_core`` and the router's compiled twins) are held to
the same behaviour in one ``pytest`` run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(bool(os.environ.get("FASTWAMP_NO_EXTENSIONS")),
                    reason="already the pure-Python build")
@pytest.mark.timeout(660)  # the suites take 80-130 s on a loaded machine; run's own bound: 600
def test_pure_python_build_passes_routing_suites() -> None:
    env = dict(os.environ, FASTWAMP_NO_EXTENSIONS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "tests/core", "tests/router", "tests/fuzz"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
