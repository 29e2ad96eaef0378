"""``pip wheel .`` builds a wheel that carries the compiled core.

About a minute: Cython and the C compiler run on every compiled module. Built
with ``FASTWAMP_REQUIRE_EXTENSIONS=1``, so a compiler problem fails the test
instead of yielding a pure-Python wheel.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from routerproc import child_env, copy_source

#: Seconds for the build.
BUILD_TIMEOUT = 540

COMPILED = ["fastwamp/_core/uri_c", "fastwamp/_core/trie_c", "fastwamp/_core/callees_c",
            "fastwamp/_core/fanout_c", "fastwamp/_core/message_c",
            "fastwamp/router/member_c", "fastwamp/router/dealer_c"]

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(BUILD_TIMEOUT + 60)]


def test_pip_wheel_contains_the_compiled_core(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    out = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(src)],
        env=child_env(FASTWAMP_REQUIRE_EXTENSIONS="1"), capture_output=True, text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert build.returncode == 0, (build.stdout + build.stderr)[-6000:]
    wheels = list(out.glob("fastwamp-*.whl"))
    assert len(wheels) == 1, wheels
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert f"-{tag}-{tag}-" in wheels[0].name, wheels[0].name  # a platform wheel
    names = zipfile.ZipFile(wheels[0]).namelist()
    for module in COMPILED:
        assert any(n.startswith(module + ".") and n.endswith((".so", ".pyd")) for n in names), (
            module, names)
    for data in ("fastwamp/default.toml", "fastwamp/py.typed", "fastwamp/_core/trie_c.pxd",
                 "fastwamp/_core/trie_py.py", "fastwamp/router/dealer.py"):
        assert data in names, data
    assert not [n for n in names if n.endswith(".c")], "C sources leaked into the wheel"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "fastwamp = fastwamp.cli:main" in zipfile.ZipFile(wheels[0]).read(
        entry_points).decode()
