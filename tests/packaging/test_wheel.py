"""``pip wheel .`` builds a wheel that carries the compiled core, and those wheels
install offline and route: the recipe of the Dockerfile's two stages.

A minute or two: Cython and the C compiler run on every compiled module, and the
dependencies' wheels come from pip's cache or index. Built with
``FASTWAMP_REQUIRE_EXTENSIONS=1``, so a compiler problem fails the test instead
of yielding a pure-Python wheel.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from routerproc import child_env, copy_source, serve_one_call, venv_bin

from fastwamp.extensions import CORE_MODULES, ROUTER_TWIN_MODULES

#: Seconds for the build, and for the install.
BUILD_TIMEOUT = 540
INSTALL_TIMEOUT = 240

#: The compiled modules a wheel must hold (the list the router checks at start).
COMPILED = [name.replace(".", "/") + "_c" for name in (*CORE_MODULES, *ROUTER_TWIN_MODULES)]

pytestmark = [pytest.mark.packaging,
              pytest.mark.timeout(BUILD_TIMEOUT + INSTALL_TIMEOUT + 120)]


def test_pip_wheel_contains_the_compiled_core_and_installs_offline(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    out = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-w", str(out), str(src)],
        env=child_env(FASTWAMP_REQUIRE_EXTENSIONS="1"), capture_output=True, text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert build.returncode == 0, (build.stdout + build.stderr)[-6000:]
    wheels = list(out.glob("fastwamp-*.whl"))
    assert len(wheels) == 1, wheels
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert f"-{tag}-{tag}-" in wheels[0].name, wheels[0].name  # a platform wheel
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "fastwamp = fastwamp.cli:main" in wheel.read(entry_points).decode()
    for module in COMPILED:
        assert any(n.startswith(module + ".") and n.endswith((".so", ".pyd")) for n in names), (
            module, names)
    for data in ("fastwamp/default.toml", "fastwamp/py.typed", "fastwamp/_core/trie_c.pxd",
                 "fastwamp/_core/trie_py.py", "fastwamp/router/dealer.py",
                 "fastwamp/console/index.html", "fastwamp/console/console.js"):
        assert data in names, data
    assert not [n for n in names if n.endswith(".c")], "C sources leaked into the wheel"

    # The runtime stage: install from those wheels alone, then route a call.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv_bin(venv, "python")), "-m", "pip", "install", "--no-index", "--find-links",
         str(out), "fastwamp"], env=child_env(), capture_output=True, text=True,
        timeout=INSTALL_TIMEOUT,
    )
    assert install.returncode == 0, (install.stdout + install.stderr)[-6000:]
    router = serve_one_call(venv, tmp_path)
    assert "compiled core missing" not in router.stderr(), router.output()


def test_sdist_carries_what_the_compiled_build_needs(tmp_path: Path) -> None:
    """Every compiled module's source and augmenting .pxd, and the console, are in the
    sdist (a build from it would otherwise compile untyped or fall short)."""
    pytest.importorskip("setuptools", reason="setup.py needs setuptools in this environment")
    src = copy_source(tmp_path / "src")
    build = subprocess.run([sys.executable, "setup.py", "sdist", "--formats=gztar"], cwd=src,
                           env=child_env(), capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, (build.stdout + build.stderr)[-4000:]
    (sdist,) = (src / "dist").glob("fastwamp-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for module in COMPILED:
        stem = module[: -len("_c")]
        source = stem + "_py.py" if "/_core/" in module else stem + ".py"
        assert source in names and module + ".pxd" in names, module
    for needed in ("setup.py", "pyproject.toml", "README.md", "fastwamp/default.toml",
                   "fastwamp/console/index.html", "fastwamp/console/console.js"):
        assert needed in names, needed
