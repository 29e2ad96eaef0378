"""Build script: compiles fastwamp's routing core with Cython, when it can.

The core modules are written once as typed Python (``*_py.py``) and compiled
through an augmenting ``*_c.pxd`` into ``*_c`` extension modules, so the
compiled and pure-Python builds cannot drift apart.

The extensions are optional: where no working C compiler (or no Python
headers) is found, or an extension fails to compile, the build prints a warning
and installs the pure-Python modules alone; the router then says so once at
start. Cython runs only inside ``build_ext``, so building the metadata or an
sdist does not translate anything.

Environment switches:
  FASTWAMP_NO_EXTENSIONS=1       build nothing (pure-Python install, for debugging)
  FASTWAMP_REQUIRE_EXTENSIONS=1  fail the build instead of falling back (CI, Docker)
  FASTWAMP_DEBUG=1               annotate and enable line tracing
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

COMPILED_MODULES = [
    "fastwamp._core.trie",
    "fastwamp._core.callees",
    "fastwamp._core.uri",
    "fastwamp._core.fanout",
    "fastwamp._core.message",
    "fastwamp._core.msgpack_check",
]
#: Modules compiled as they are (``X.py`` → ``X_c``, typed by ``X_c.pxd``); the
#: interpreted ``X`` picks the compiled twin of its classes at import (see member.py).
COMPILED_ROUTER_MODULES = [
    "fastwamp.router.member",
    "fastwamp.router.dealer",
    "fastwamp.router.broker",
    "fastwamp.transport.rawsocket_reader",
]

#: What a missing or broken compiler raises from ``build_ext``.
BUILD_ERRORS = (CCompilerError, ExecError, PlatformError, OSError, ValueError)

DEBUG = bool(os.environ.get("FASTWAMP_DEBUG"))
REQUIRE_EXTENSIONS = bool(os.environ.get("FASTWAMP_REQUIRE_EXTENSIONS"))


def warn(message: str) -> None:
    """Print a framed warning on stderr (pip shows it with ``-v``, or when the build fails)."""
    rule = "*" * 76
    body = textwrap.fill(message, 74, initial_indent="  ", subsequent_indent="  ")
    print(f"\n{rule}\n  WARNING: fastwamp\n{body}\n{rule}\n", file=sys.stderr, flush=True)


class OptionalBuildExt(build_ext):
    """``build_ext`` that translates with Cython first and leaves out what cannot compile."""

    def build_extensions(self) -> None:
        self.check_extensions_list(self.extensions)
        problem = self.compiler_problem()
        if problem is not None:
            self.fall_back(f"no usable C compiler ({problem})")
            # Nothing built: nothing to copy in place or to list among the outputs.
            self.extensions = []
            return
        self.cythonize_sources()
        failed = []
        for ext in list(self.extensions):
            try:
                self.build_extension(ext)
            except BUILD_ERRORS as exc:
                if REQUIRE_EXTENSIONS:
                    raise
                failed.append(f"{ext.name}: {exc}")
                self.extensions.remove(ext)
        if failed:
            warn("these compiled modules failed to build; their pure-Python twins are "
                 "installed instead: " + "; ".join(failed))

    def fall_back(self, reason: str) -> None:
        if REQUIRE_EXTENSIONS:
            raise PlatformError(f"FASTWAMP_REQUIRE_EXTENSIONS is set but {reason}")
        warn(f"{reason}: installing the pure-Python router without its compiled core. It "
             "works the same, several times slower per message. Install a C compiler and "
             "the Python headers (Debian: apt-get install gcc python3-dev) and reinstall "
             "to get the compiled core.")

    def compiler_problem(self) -> str | None:
        """Compile a file that includes Python.h; None if that works, else why not."""
        with tempfile.TemporaryDirectory() as tmp:
            probe = os.path.join(tmp, "probe.c")
            with open(probe, "w") as f:
                f.write("#include <Python.h>\nint fastwamp_probe(void) { return 0; }\n")
            try:
                self.compiler.compile([probe], output_dir=tmp)
            except BUILD_ERRORS as exc:
                detail = str(exc) or type(exc).__name__
                return detail if len(detail) <= 200 else detail[:200] + "..."
        return None

    def cythonize_sources(self) -> None:
        """Replace each extension's Python source by the C file Cython makes of it."""
        from Cython.Build import cythonize

        translated = cythonize(
            self.extensions,
            language_level=3,
            annotate=DEBUG,
            # The augmenting X_c.pxd is not in Cython's dependency scan of X_py.py:
            # regenerate every time (a few seconds) so a .pxd edit is never missed.
            force=True,
            compiler_directives={
                "embedsignature": True,
                "boundscheck": False,
                "wraparound": False,
                "linetrace": DEBUG,
            },
        )
        for ext, c_ext in zip(self.extensions, translated, strict=True):
            ext.sources = c_ext.sources


def extensions() -> list[Extension]:
    """The extension modules to build (none with ``FASTWAMP_NO_EXTENSIONS``)."""
    if os.environ.get("FASTWAMP_NO_EXTENSIONS"):
        return []
    macros = [("CYTHON_TRACE", "1")] if DEBUG else []
    return [
        Extension(f"{name}_c", [name.replace(".", "/") + "_py.py"], define_macros=macros)
        for name in COMPILED_MODULES
    ] + [
        Extension(f"{name}_c", [name.replace(".", "/") + ".py"], define_macros=macros)
        for name in COMPILED_ROUTER_MODULES
    ]


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
