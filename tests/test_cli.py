"""The ``fastwamp`` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastwamp import __version__
from fastwamp.cli import main
from fastwamp.config import config_from_toml, default_config

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--config",
        "--log-level",
        "--check-config",
        "--print-default-config",
        "--version",
        "--help",
    ):
        assert flag in out
    assert "FASTWAMP_NO_UVLOOP" in out
    assert "ws://127.0.0.1:8080/ws" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fastwamp {__version__}"


def test_print_default_config(capsys):
    assert main(["--print-default-config"]) == 0
    text = capsys.readouterr().out
    assert config_from_toml(text) == default_config()
    assert text.count("#") > 20  # every key is explained


def test_check_config_default(capsys):
    assert main(["--check-config"]) == 0
    out = capsys.readouterr().out
    assert "configuration OK" in out
    assert "ws://127.0.0.1:8080/ws" in out and "tcp://127.0.0.1:8081" in out


def test_check_config_file(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_text("[[realms]]\nname = 'demo'\n", encoding="utf-8")
    assert main(["--config", str(path), "--check-config"]) == 0
    assert "realms: demo" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, key",
    [
        ("[[listeners]]\ntype = 'websocket'\nport = 70000\n", "listeners[0].port"),
        (
            "[[listeners]]\ntype = 'rawsocket'\nserializers = ['xml']\n",
            "listeners[0].serializers[0]",
        ),
        ("[[realms]]\nname = 'a'\n[[realms]]\nname = 'a'\n", "realms[1].name"),
        ("colour = 'blue'\n", "colour"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path, capsys, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["--config", str(path), "--check-config"]) == 2
    assert main(["--config", str(path)]) == 2  # refused at start too
    err = capsys.readouterr().err
    assert f": {key}: " in err and "configuration error" in err


def test_bad_log_level_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--log-level", "chatty"])
    assert info.value.code == 2


def test_python_dash_m(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[[listeners]]\ntype = 'websocket'\nport = 70000\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    ok = subprocess.run(
        [sys.executable, "-m", "fastwamp", "--check-config"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0 and "configuration OK" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "fastwamp", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2
    assert "listeners[0].port: must be between 0 and 65535, got 70000" in bad.stderr
