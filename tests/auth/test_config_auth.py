"""Authentication in the configuration: users, users files, validation, hash-secret."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from autobahn.wamp import auth as ab_auth

from fastwamp import cli
from fastwamp.auth.credentials import TicketHash
from fastwamp.config import (
    ConfigError,
    RealmConfig,
    ScramCredential,
    UserConfig,
    WampCraKey,
    config_from_toml,
    default_config_toml,
    load_config,
)

PUBKEY = "ab" * 32
GOOD = f'''
[[realms]]
name = "secure"
allow_anonymous = false
authmethods = ["ticket", "wampcra", "cryptosign", "tls"]

[[realms.users]]
authid = "alice"
authrole = "user"
ticket = "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA=="
wampcra = {{ key = "a2V5", salt = "pepper", iterations = 100, keylen = 32 }}
cryptosign_pubkeys = ["{PUBKEY}"]
tls_fingerprints = ["{':'.join(['CD'] * 32)}"]
'''


def test_users_and_methods_load():
    realm = config_from_toml(GOOD).realms[0]
    assert realm.authmethods == ["ticket", "wampcra", "cryptosign", "tls"]
    (alice,) = realm.users
    assert alice.wampcra == WampCraKey("a2V5", "pepper", 100, 32)
    assert alice.cryptosign_pubkeys == [PUBKEY]


def test_users_file_relative_to_the_config(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "users.toml").write_text(
        '[[users]]\nauthid = "bob"\nauthrole = "admin"\ncryptosign_pubkeys = ["' + "cd" * 32
        + '"]\n', encoding="utf-8")
    config_file = tmp_path / "router.toml"
    # users_file belongs to the realm table: before [[realms.users]]
    config_file.write_text(GOOD.replace('authmethods = [', 'users_file = "sub/users.toml"\n'
                                        'authmethods = ['), encoding="utf-8")
    realm = load_config(config_file).realms[0]
    assert [u.authid for u in realm.users] == ["alice", "bob"]
    assert realm.users[1].authrole == "admin"


@pytest.mark.parametrize("users_toml, problem", [
    ('[[users]]\nauthid = "alice"\nauthrole = "x"\n', "duplicate user 'alice'"),
    ('[[users]]\nauthid = "zed"\n', "required key is missing"),
    ('nonsense = 1\n', "unknown key"),
    ('[[users]\n', "not valid TOML"),
])
def test_users_file_errors(tmp_path, users_toml, problem):
    (tmp_path / "users.toml").write_text(users_toml, encoding="utf-8")
    config_file = tmp_path / "router.toml"
    config_file.write_text(GOOD.replace('authmethods = [', 'users_file = "users.toml"\n'
                                        'authmethods = ['), encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_config(config_file)


def test_missing_users_file(tmp_path):
    config_file = tmp_path / "router.toml"
    config_file.write_text('[[realms]]\nname = "r"\nusers_file = "nope.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"realms\[0\].users_file: cannot read"):
        load_config(config_file)


@pytest.mark.parametrize("change, key", [
    (('authmethods = ["ticket"', 'authmethods = ["anonymous"'), "authmethods[0]"),
    (('authmethods = ["ticket"', 'authmethods = ["password"'), "authmethods[0]"),
    (('authmethods = ["ticket"', 'authmethods = ["tls", "tls"'), "authmethods[1]"),
    (('ticket = "pbkdf2-sha256$1000', 'ticket = "md5$1000'), "users[0].ticket"),
    (('ticket = "pbkdf2-sha256$1000', 'ticket = "pbkdf2-sha256$10'), "users[0].ticket"),
    (('$aGFzaGhhc2hoYXNoaGFzaA=="', '$!!!"'), "users[0].ticket"),
    (('key = "a2V5", ', ''), "users[0].wampcra.key"),
    (('keylen = 32', 'keylen = 3'), "users[0].wampcra.keylen"),
    (('iterations = 100,', 'iterations = 0,'), "users[0].wampcra.iterations"),
    ((f'["{PUBKEY}"]', '["abc"]'), "users[0].cryptosign_pubkeys[0]"),
    ((f'["{PUBKEY}"]', '["' + "zz" * 32 + '"]'), "users[0].cryptosign_pubkeys[0]"),
    (('tls_fingerprints = ["', 'tls_fingerprints = ["00'), "users[0].tls_fingerprints[0]"),
    (('authrole = "user"', 'authrole = ""'), "users[0].authrole"),
    (('authid = "alice"', 'authid = ""'), "users[0].authid"),
    (('authrole = "user"', 'authrole = "user"\nsecret = "x"'), "users[0].secret"),
])
def test_validation_names_the_key(change, key):
    with pytest.raises(ConfigError) as info:
        config_from_toml(GOOD.replace(*change))
    assert info.value.key == f"realms[0].{key}", info.value


def test_a_key_belongs_to_one_user():
    text = GOOD + f'''
[[realms.users]]
authid = "mallory"
authrole = "user"
cryptosign_pubkeys = ["{PUBKEY.upper()}"]
'''
    with pytest.raises(ConfigError, match="already belongs to user 'alice'"):
        config_from_toml(text)


def test_router_key_validated():
    with pytest.raises(ConfigError, match="cryptosign_router_key"):
        config_from_toml('[[realms]]\nname = "r"\ncryptosign_router_key = "abc"\n')


def test_scram_credential_validated():
    good = ScramCredential("argon2id-13", "c2FsdA==", 3, 65536, "A" * 43 + "=", "B" * 43 + "=")
    config_from_toml("")  # (the default has no users)
    from fastwamp.config import Config, validate_config

    config = Config(realms=[RealmConfig("r", users=[UserConfig("u", "r", scram=good)])])
    validate_config(config)
    good.kdf = "md5"
    with pytest.raises(ConfigError, match=r"users\[0\].scram.kdf"):
        validate_config(config)


def test_default_toml_shows_every_user_key():
    import dataclasses
    import re

    keys = set(re.findall(r"\b([a-z_]+) = ", default_config_toml()))
    for cls in (UserConfig, WampCraKey, ScramCredential):
        for f in dataclasses.fields(cls):
            assert f.name in keys, f.name


# hash-secret


def run_hash_secret(monkeypatch, capsys, argv: list[str], stdin: str = "") -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = cli.main(["hash-secret", *argv])
    out, err = capsys.readouterr()
    return status, out + err


def user_from(lines: str) -> UserConfig:
    text = '[[realms]]\nname = "r"\n[[realms.users]]\nauthid = "u"\nauthrole = "r"\n' + lines
    return config_from_toml(text).realms[0].users[0]


def test_hash_secret_ticket(monkeypatch, capsys):
    status, out = run_hash_secret(monkeypatch, capsys, ["ticket", "--iterations", "1000"],
                                  "my ticket\n")
    assert status == 0 and "my ticket" not in out
    stored = TicketHash.parse(user_from(out).ticket)
    assert stored.verify("my ticket") and not stored.verify("my ticket ")


def test_hash_secret_wampcra_matches_autobahn(monkeypatch, capsys):
    status, out = run_hash_secret(monkeypatch, capsys, ["wampcra", "--salt", "s\"alt"], "pw\n")
    assert status == 0
    cra = user_from(out).wampcra
    assert cra.salt == 's"alt' and cra.iterations == 1000 and cra.keylen == 32
    assert cra.key == ab_auth.derive_key("pw", 's"alt', 1000, 32).decode()


def test_hash_secret_wampcra_plain_and_generate(monkeypatch, capsys):
    status, out = run_hash_secret(monkeypatch, capsys, ["wampcra", "--plain"], "pw\n")
    assert status == 0 and user_from(out).wampcra == WampCraKey("pw")
    status, out = run_hash_secret(monkeypatch, capsys, ["ticket", "--generate"])
    assert status == 0 and "secret (for the client): " in out


def test_hash_secret_scram_and_cryptosign(monkeypatch, capsys):
    status, out = run_hash_secret(monkeypatch, capsys,
                                  ["scram", "--iterations", "1", "--memory", "8"], "pw\n")
    assert status == 0
    assert user_from(out).scram.kdf == "argon2id-13"
    status, out = run_hash_secret(monkeypatch, capsys, ["cryptosign"], "11" * 32 + "\n")
    assert status == 0
    from nacl.signing import SigningKey

    assert user_from(out).cryptosign_pubkeys == [
        SigningKey(bytes.fromhex("11" * 32)).verify_key.encode().hex()]


@pytest.mark.parametrize("argv, stdin", [(["ticket"], "\n"), (["ticket"], ""),
                                         (["cryptosign"], "xyz\n"),
                                         (["ticket", "--iterations", "5"], "pw\n")])
def test_hash_secret_refuses(monkeypatch, capsys, argv, stdin):
    status, out = run_hash_secret(monkeypatch, capsys, argv, stdin)
    assert status == cli.EXIT_CONFIG_ERROR and "hash-secret" in out


def test_hash_secret_never_takes_the_secret_from_argv():
    proc = subprocess.run([sys.executable, "-m", "fastwamp", "hash-secret", "ticket", "s3cret"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr


def test_check_config_validates_users(tmp_path):
    config_file = tmp_path / "router.toml"
    config_file.write_text(GOOD.replace(f'["{PUBKEY}"]', '["nothex"]'), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "fastwamp", "--config", str(config_file),
                           "--check-config"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "realms[0].users[0].cryptosign_pubkeys[0]" in proc.stderr


def test_readme_example_is_valid_and_its_secrets_work():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Authentication"):]
    example = section[section.index("```toml") + 7:]
    example = example[:example.index("```")]
    realm = config_from_toml(example).realms[0]
    alice = {u.authid: u for u in realm.users}["alice"]
    assert TicketHash.parse(alice.ticket).verify("alice-ticket")
    cra = alice.wampcra
    assert cra.key == ab_auth.derive_key("alice-secret", cra.salt, cra.iterations,
                                         cra.keylen).decode()


@pytest.mark.parametrize("keys, key", [
    ('authenticator_methods = ["ticket"]', "authenticator"),
    ('authenticator = "com.auth"', "authenticator_methods"),
    ('authenticator = "com.auth"\nauthenticator_methods = ["scram"]', "authenticator_methods[0]"),
    ('authenticator = "com.auth"\nauthenticator_methods = ["tls"]', "authenticator_methods[0]"),
    ('authenticator = "com..auth"\nauthenticator_methods = ["ticket"]', "authenticator"),
    ('authenticator = "com.auth"\nauthenticator_methods = ["ticket"]\n'
     'authenticator_timeout = 0', "authenticator_timeout"),
    ('authenticator = "com.auth"\nauthenticator_methods = ["ticket"]\n'
     'authenticator_realm = "nope"', "authenticator_realm"),
])
def test_dynamic_authenticator_validation(keys, key):
    text = GOOD.replace('authmethods = [', keys + '\nauthmethods = [')
    with pytest.raises(ConfigError) as info:
        config_from_toml(text)
    assert info.value.key == f"realms[0].{key}", info.value


def test_dynamic_authenticator_config():
    text = GOOD.replace('authmethods = [', 'authenticator = "com.auth"\n'
                        'authenticator_methods = ["ticket", "cryptosign"]\n'
                        'authenticator_realm = "secure"\nauthmethods = [')
    realm = config_from_toml(text).realms[0]
    assert realm.authenticator_methods == ["ticket", "cryptosign"]
