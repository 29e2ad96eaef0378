"""wampy.js 8 authenticating to fastwamp (ticket, wampcra, cryptosign): runs
``node --test js/wampy_auth.mjs`` against a router with the auth realm of
:mod:`test_auth` (same users, same credentials)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from .test_auth import (
    CLIENT_KEY,
    CRA_SECRET,
    REALM,
    STRANGER_KEY,
    TICKET,
    USERS_FILE,
    _realm_config,
)
from .test_wampy import JS_DIR, NODE_TIMEOUT, node_with_modules

pytestmark = pytest.mark.interop


def _hex(key: SigningKey) -> tuple[str, str]:
    return key.encode().hex(), key.verify_key.encode().hex()


def test_wampy_authentication() -> None:
    from .conftest import RouterProcess

    node = node_with_modules()
    with tempfile.TemporaryDirectory(prefix="fastwamp-auth-js-") as tmp:
        (Path(tmp) / "auth-users.toml").write_text(USERS_FILE, encoding="utf-8")
        rp = RouterProcess(Path(tmp), "auth-js", extra_config=_realm_config())
        endpoints = rp.start()
        try:
            seed, pubkey = _hex(CLIENT_KEY)
            stranger_seed, stranger_pubkey = _hex(STRANGER_KEY)
            env = dict(os.environ, FASTWAMP_WS_URL=endpoints.ws_url, FASTWAMP_AUTH_REALM=REALM,
                       FASTWAMP_TICKET=TICKET, FASTWAMP_CRA_SECRET=CRA_SECRET,
                       FASTWAMP_CS_SEED=seed, FASTWAMP_CS_PUBKEY=pubkey,
                       FASTWAMP_CS_STRANGER_SEED=stranger_seed,
                       FASTWAMP_CS_STRANGER_PUBKEY=stranger_pubkey, NO_COLOR="1")
            proc = subprocess.run(
                [node, "--test", "--test-reporter=spec", "wampy_auth.mjs"], cwd=JS_DIR, env=env,
                stdin=subprocess.DEVNULL, capture_output=True, text=True, encoding="utf-8",
                errors="replace", timeout=NODE_TIMEOUT,
            )
        finally:
            rp.stop(check=True)
    output = proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr.strip() else "")
    assert proc.returncode == 0, output
    counts = dict(re.findall(r"^\S*\s*(tests|pass|fail)\s+(\d+)\s*$", proc.stdout, re.MULTILINE))
    assert int(counts.get("tests", 0)) > 0 and counts.get("fail") == "0", output
    print(output)
