"""The cluster suite passes on the pure-Python build too (the dealer's cluster parts run
interpreted there).  Its own test, with its own time budget, beside
``tests/test_pure_build.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
@pytest.mark.skipif(bool(os.environ.get("FASTWAMP_NO_EXTENSIONS")),
                    reason="already the pure-Python build")
def test_pure_python_build_passes_the_cluster_suite() -> None:
    env = dict(os.environ, FASTWAMP_NO_EXTENSIONS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/cluster"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=500,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
