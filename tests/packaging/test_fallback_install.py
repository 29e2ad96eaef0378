"""Without a C compiler, ``pip install`` installs the pure-Python router, which works
and says once at start that its compiled core is missing.

The install goes into a fresh virtual environment from a copy of the source
tree, with ``CC=/bin/false`` standing in for a machine without a compiler
(about 30 s with pip's cache warm: the dependencies are wheels, and Cython
never runs). It stays in the normal suite because the fallback is only worth
having if it keeps working; ``-m "not packaging"`` leaves it out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from routerproc import child_env, copy_source, serve_one_call, venv_bin

#: Seconds for creating the venv and installing into it.
INSTALL_TIMEOUT = 420

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(INSTALL_TIMEOUT + 180)]


def test_install_without_compiler_falls_back_and_routes(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = child_env(CC="/bin/false", CXX="/bin/false")
    install = subprocess.run(
        [str(venv_bin(venv, "python")), "-m", "pip", "install", "-v", str(src)],
        env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
    )
    build_log = install.stdout + install.stderr
    assert install.returncode == 0, build_log[-6000:]
    assert "no usable C compiler" in build_log, build_log[-6000:]
    installed = subprocess.run(
        [str(venv_bin(venv, "python")), "-c", "import fastwamp, os; print(os.path.dirname("
         "fastwamp.__file__))"], env=env, capture_output=True, text=True, timeout=60,
        cwd=tmp_path,
    )
    package = Path(installed.stdout.strip())
    assert package.is_relative_to(venv), installed.stdout + installed.stderr
    assert not [p for p in package.rglob("*") if p.suffix in (".so", ".pyd")]

    router = serve_one_call(venv, tmp_path)
    stderr = router.stderr()
    assert stderr.count("compiled core missing") == 1, router.output()
    assert "WARNING" in next(line for line in stderr.splitlines()
                             if "compiled core missing" in line)


@pytest.mark.skipif(bool(os.environ.get("FASTWAMP_NO_EXTENSIONS")),
                    reason="FASTWAMP_NO_EXTENSIONS is set")
def test_compiled_build_is_in_use() -> None:
    """An install that fell back to pure Python fails here (CI tests the compiled build)
    unless FASTWAMP_NO_EXTENSIONS=1 says the pure build is meant."""
    from fastwamp.extensions import compiled_core_status, interpreted_modules

    missing = interpreted_modules()
    assert not missing, (
        f"{missing} run as pure Python: the build fell back (no C compiler? see the "
        "warning of `pip install -v`); set FASTWAMP_NO_EXTENSIONS=1 to test the pure build")
    assert compiled_core_status() is None


def test_no_extensions_switch_is_reported_as_a_choice() -> None:
    code = ("import logging; from fastwamp.extensions import compiled_core_status as s; "
            "level, text = s(); assert level == logging.INFO, (level, text); print(text)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=child_env(FASTWAMP_NO_EXTENSIONS="1"))
    assert proc.returncode == 0, proc.stderr
    assert "FASTWAMP_NO_EXTENSIONS" in proc.stdout


@pytest.mark.parametrize("required", [False, True])
def test_build_ext_without_compiler(tmp_path: Path, required: bool) -> None:
    """``build_ext`` alone, in seconds: a warning and no compiled module, or, with
    FASTWAMP_REQUIRE_EXTENSIONS=1, a failed build."""
    pytest.importorskip("setuptools", reason="setup.py needs setuptools in this environment")
    src = copy_source(tmp_path / "src")
    env = child_env(CC="/bin/false", CXX="/bin/false")
    if required:
        env["FASTWAMP_REQUIRE_EXTENSIONS"] = "1"
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=src,
                           env=env, capture_output=True, text=True, timeout=300)
    output = build.stdout + build.stderr
    assert "no usable C compiler" in output, output[-4000:]
    if required:
        assert build.returncode != 0, output[-4000:]
        assert "FASTWAMP_REQUIRE_EXTENSIONS is set" in output, output[-4000:]
    else:
        assert build.returncode == 0, output[-4000:]
        assert "installing the pure-Python router" in output, output[-4000:]
    assert not list(src.rglob("*.so")) and not list(src.rglob("*.c"))
