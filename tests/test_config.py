"""Configuration: TOML loading, type and value checks that name the bad key."""

from __future__ import annotations

import pytest

from fastwamp.config import (
    ClusterConfig,
    Config,
    ConfigError,
    HistoryConfig,
    ListenerConfig,
    RealmConfig,
    config_from_dict,
    config_from_toml,
    default_config,
    default_config_toml,
    load_config,
    validate_config,
)


def test_default_toml_is_the_default_config():
    assert config_from_toml(default_config_toml()) == default_config()
    validate_config(default_config())


def test_default_toml_shows_every_key():
    import dataclasses
    import re

    text = default_config_toml()
    keys = set(re.findall(r"^#?\s*([a-z_]+) = ", text, re.MULTILINE))
    for cls in (Config, RealmConfig, HistoryConfig, ListenerConfig, ClusterConfig):
        for f in dataclasses.fields(cls):
            assert f.name in keys or f.name in ("realms", "listeners", "cluster"), f.name


def test_empty_file_gives_the_default():
    assert config_from_toml("") == default_config()


def test_full_example():
    config = config_from_toml(
        """
log_level = "DEBUG"
call_timeout_default_ms = 1000
call_timeout_max_ms = 60000
strict_request_ids = true

[[realms]]
name = "com.example"
allow_anonymous = false
authmethods = ["ticket"]
authenticator = "com.example.authenticate"
authenticator_methods = ["ticket"]
strict_uris = true
trustlevels = { "*" = 0, backend = 2 }
disclosure = "on_request"
event_retention = false
history_store = "/tmp/history.db"

[[realms.event_history]]
uri = "com.example.news"

[[realms.event_history]]
uri = "com.example."
match = "prefix"
limit = 10
max_age = 60

[[realms]]
name = "realm2"

[[listeners]]
type = "websocket"
host = "::1"
port = 9000
path = "/wamp"
serializers = ["cbor"]
compression = true

[[listeners]]
type = "rawsocket"
port = 0
max_message_size = 65536
"""
    )
    assert config == Config(
        realms=[
            RealmConfig(
                "com.example",
                allow_anonymous=False,
                authmethods=["ticket"],
                authenticator="com.example.authenticate",
                authenticator_methods=["ticket"],
                strict_uris=True,
                trustlevels={"*": 0, "backend": 2},
                disclosure="on_request",
                event_retention=False,
                history_store="/tmp/history.db",
                event_history=[
                    HistoryConfig("com.example.news"),
                    HistoryConfig("com.example.", match="prefix", limit=10, max_age=60.0),
                ],
            ),
            RealmConfig("realm2"),
        ],
        listeners=[
            ListenerConfig(
                "websocket",
                host="::1",
                port=9000,
                path="/wamp",
                serializers=["cbor"],
                compression=True,
            ),
            ListenerConfig("rawsocket", port=0, max_message_size=65536),
        ],
        log_level="debug",
        call_timeout_default_ms=1000,
        call_timeout_max_ms=60000,
        strict_request_ids=True,
    )


BAD = [
    # (toml, key, words in the problem)
    ("loglevel = 'info'", "loglevel", ["unknown key", "log_level"]),
    ("log_level = 'loud'", "log_level", ["must be one of"]),
    ("log_level = 3", "log_level", ["string", "integer 3"]),
    ("strict_request_ids = 1", "strict_request_ids", ["boolean"]),
    ("call_timeout_max_ms = true", "call_timeout_max_ms", ["integer", "boolean"]),
    ("call_timeout_default_ms = -1", "call_timeout_default_ms", [">= 0"]),
    (
        "call_timeout_default_ms = 10\ncall_timeout_max_ms = 5",
        "call_timeout_default_ms",
        ["larger"],
    ),
    ("realms = []", "realms", ["at least one"]),
    ("[realms]\nname = 'x'", "realms", ["array of tables"]),
    ("[[realms]]\nallow_anonymous = true", "realms[0].name", ["required"]),
    ("[[realms]]\nname = 'a'\n[[realms]]\nname = 'a'", "realms[1].name", ["duplicate realm"]),
    ("[[realms]]\nname = 'a b'", "realms[0].name", ["not a valid realm"]),
    ("[[realms]]\nname = 'a..b'", "realms[0].name", ["not a valid realm"]),
    (
        "[[realms]]\nname = 'r'\nanonymous = true",
        "realms[0].anonymous",
        ["unknown key", "allow_anonymous"],
    ),
    (
        "[[realms]]\nname = 'r'\ntrustlevels = { x = 'high' }",
        "realms[0].trustlevels.x",
        ["integer"],
    ),
    ("[[realms]]\nname = 'r'\ntrustlevels = { x = -1 }", "realms[0].trustlevels.x", [">= 0"]),
    ("[[realms]]\nname = 'r'\ntrustlevels = 3", "realms[0].trustlevels", ["table"]),
    ("[[realms]]\nname = 'r'\ndisclosure = 'sometimes'", "realms[0].disclosure", ["on_request"]),
    ("[[realms]]\nname = 'r'\nevent_retention = 'yes'", "realms[0].event_retention", ["boolean"]),
    ("[[realms]]\nname = 'r'\nevent_history = 'x'", "realms[0].event_history", ["array"]),
    ("[[realms]]\nname = 'r'\nevent_history = [1]", "realms[0].event_history[0]", ["table"]),
    (
        "[[realms]]\nname = 'r'\n[[realms.event_history]]\nmatch = 'exact'",
        "realms[0].event_history[0].uri",
        ["required"],
    ),
    (
        "[[realms]]\nname = 'r'\n[[realms.event_history]]\nuri = 'a'\nmatch = 'fuzzy'",
        "realms[0].event_history[0].match",
        ["wildcard"],
    ),
    (
        "[[realms]]\nname = 'r'\n[[realms.event_history]]\nuri = 'a'\nlimit = 0",
        "realms[0].event_history[0].limit",
        [">= 1"],
    ),
    (
        "[[realms]]\nname = 'r'\n[[realms.event_history]]\nuri = 'a'\nmax_age = -1",
        "realms[0].event_history[0].max_age",
        [">= 0"],
    ),
    (
        "[[realms]]\nname = 'r'\n[[realms.event_history]]\nuri = 'a'\nsize = 3",
        "realms[0].event_history[0].size",
        ["unknown key"],
    ),
    ("listeners = []", "listeners", ["at least one"]),
    ("[[listeners]]\nport = 1", "listeners[0].type", ["required"]),
    ("[[listeners]]\ntype = 'mqtt'", "listeners[0].type", ["websocket", "rawsocket"]),
    (
        "[[listeners]]\ntype = 'websocket'\nport = 70000",
        "listeners[0].port",
        ["between 0 and 65535", "70000"],
    ),
    ("[[listeners]]\ntype = 'websocket'\nport = -1", "listeners[0].port", ["between 0 and 65535"]),
    ("[[listeners]]\ntype = 'websocket'\nport = '80'", "listeners[0].port", ["integer", "'80'"]),
    ("[[listeners]]\ntype = 'websocket'\nport = 8.5", "listeners[0].port", ["integer", "float"]),
    ("[[listeners]]\ntype = 'websocket'\nhost = ''", "listeners[0].host", ["empty"]),
    ("[[listeners]]\ntype = 'websocket'\npath = 'ws'", "listeners[0].path", ["start with '/'"]),
    (
        "[[listeners]]\ntype = 'websocket'\nserializers = ['xml']",
        "listeners[0].serializers[0]",
        ["unknown serializer 'xml'"],
    ),
    (
        "[[listeners]]\ntype = 'websocket'\nserializers = 'json'",
        "listeners[0].serializers",
        ["array"],
    ),
    (
        "[[listeners]]\ntype = 'websocket'\nserializers = [1]",
        "listeners[0].serializers[0]",
        ["string"],
    ),
    (
        "[[listeners]]\ntype = 'websocket'\nserializers = []",
        "listeners[0].serializers",
        ["at least one"],
    ),
    (
        "[[listeners]]\ntype = 'websocket'\nserializers = ['json', 'json']",
        "listeners[0].serializers[1]",
        ["duplicate"],
    ),
    (
        "[[listeners]]\ntype = 'websocket'\nmax_message_size = 100",
        "listeners[0].max_message_size",
        ["between 512"],
    ),
    (
        "[[listeners]]\ntype = 'rawsocket'\nmax_message_size = 16777217",
        "listeners[0].max_message_size",
        ["16777216"],
    ),
    (
        "[[listeners]]\ntype = 'rawsocket'\npath = '/ws'",
        "listeners[0].path",
        ["websocket listeners only"],
    ),
    (
        "[[listeners]]\ntype = 'rawsocket'\ncompression = true",
        "listeners[0].compression",
        ["websocket listeners only"],
    ),
    ("[[listeners]]\ntype = 'websocket'\nprot = 1", "listeners[0].prot", ["unknown key", "port"]),
    (
        "[[listeners]]\ntype = 'websocket'\nport = 9000\n[[listeners]]\ntype = 'rawsocket'\nport = 9000",
        "listeners[1].port",
        ["already used by listeners[0]"],
    ),
    ("workers = 0", "workers", ["from 1 to 256"]),
    ("[cluster]\nenabled = true", "cluster.nats_urls", ["required"]),
    ("[cluster]\nnats_urls = ['http://x']", "cluster.nats_urls[0]", ["not a NATS URL"]),
    ("[cluster]\nsubject_prefix = 'a.*'", "cluster.subject_prefix", ["subject tokens"]),
    ("[cluster]\nnode_timeout = 0.5", "cluster.node_timeout", ["twice heartbeat_interval"]),
    ("[cluster]\nheartbeat_interval = 0", "cluster.heartbeat_interval", ["> 0"]),
    ("[cluster]\nnode_name = 'x'", "cluster.node_name", ["unknown key"]),
    ("[[realms]]\nname = 'r'\nlocality = 'near'", "realms[0].locality", ["local_first"]),
]


@pytest.mark.parametrize(
    "text, key, words", BAD, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD)]
)
def test_bad_config_names_the_key(text, key, words):
    with pytest.raises(ConfigError) as info:
        config_from_toml(text)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    for word in words:
        assert word in info.value.problem


def test_port_zero_may_repeat():
    config = config_from_toml(
        "[[listeners]]\ntype = 'websocket'\nport = 0\n[[listeners]]\ntype = 'rawsocket'\nport = 0"
    )
    assert [lst.port for lst in config.listeners] == [0, 0]


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[[listeners]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.source, info.value.line) == (str(path), 1)
    assert "invalid TOML" in info.value.problem
    assert info.value.report()[0].startswith(f"{path}:1: invalid TOML: ")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "cannot read" in str(info.value)


def test_config_from_dict_accepts_parsed_data():
    config = config_from_dict({"realms": [{"name": "r"}], "log_level": "warning"})
    assert config.realms == [RealmConfig("r")]
    assert config.log_level == "warning"


def test_validate_config_on_dataclasses():
    config = default_config()
    config.listeners[0].serializers = ["json", "yaml"]
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.serializers\[1\]"):
        validate_config(config)


def test_cluster_table():
    config = config_from_toml("""
workers = 4
[cluster]
enabled = true
nats_urls = ["nats://10.0.0.5:4222", "tls://nats.example:4222"]
node = "east-1"
region = "us-east"
[[realms]]
name = "realm1"
locality = "region_first"
""")
    assert config.workers == 4
    assert config.cluster.nats_urls[1] == "tls://nats.example:4222"
    assert config.cluster.region == "us-east"
    assert config.realms[0].locality == "region_first"
    assert config_from_toml("workers = 2\n[cluster]\nenabled = true").cluster.enabled


# ---------------------------------------------------------------------------
# Every problem at once, each at its line.

MANY_PROBLEMS = """\
log_level = "chatty"

[[realms]]
name = "realm1"
allow_anonymus = true
trustlevels = { "*" = 0, backend = -1 }

[[realms.roles]]
name = "backend"
permissions = [
  { uri = "com.example.", match = "prefx", allow = ["call"] },
]

[[realms]]
name = "closed"
allow_anonymous = false

[[listeners]]
type = "websocket"
port = 70000
serializers = ["json", "yaml"]

[[listeners]]
type = "rawsocket"
path = "/ws"

[cluster]
node_timeout = "soon"
"""


def test_every_problem_is_reported_at_its_line():
    with pytest.raises(ConfigError) as info:
        config_from_toml(MANY_PROBLEMS, "router.toml")
    found = {(error.key, error.line) for error in info.value.errors}
    assert found == {
        ("log_level", 1),
        ("realms[0].allow_anonymus", 5),
        ("realms[0].trustlevels.backend", 6),
        ("realms[0].roles[0].permissions[0].match", 11),
        ("realms[1].allow_anonymous", 16),
        ("listeners[0].port", 20),
        ("listeners[0].serializers[1]", 21),
        ("listeners[1].path", 25),
        ("cluster.node_timeout", 28),
    }
    assert all(error.source == "router.toml" for error in info.value.errors)
    report = info.value.report()
    assert [int(line.split(":")[1]) for line in report] == sorted(
        line for _, line in found)
    assert "router.toml:5: realms[0].allow_anonymus: unknown key; did you mean " \
        "'allow_anonymous'?" in report
    # The first problem found is still the error's own key and text.
    assert str(info.value).splitlines()[0] == f"{info.value.key}: {info.value.problem}"
    assert len(str(info.value).splitlines()) == len(found)


def test_dotted_keys_and_tables_are_located():
    text = "[cluster]\nenabled = true\n\n[[realms]]\nname = 'r'\nroles.x = 1\n"
    with pytest.raises(ConfigError) as info:
        config_from_toml(text, "c.toml")
    assert info.value.report() == [
        "c.toml:1: cluster.nats_urls: required when the cluster is enabled (with workers > 1, "
        "an empty list starts a local nats-server)",
        "c.toml:6: realms[0].roles: must be an array of tables, got a table",
    ]


def test_a_key_not_written_falls_back_to_its_table_or_no_line():
    with pytest.raises(ConfigError) as info:
        config_from_toml("[[realms]]\nname = 'r'\n[[realms]]\nname = 'r'\n", "c.toml")
    assert info.value.report() == ["c.toml:4: realms[1].name: duplicate realm 'r'"]
    with pytest.raises(ConfigError) as info:
        config_from_toml("\n\n[[realms]]\n", "c.toml")
    assert info.value.report() == ["c.toml:3: realms[0].name: required key is missing"]
    config = default_config()
    config.listeners = []
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    assert info.value.report() == ["listeners: at least one listener is required"]


def test_users_file_problems_point_into_the_users_file(tmp_path):
    (tmp_path / "users.toml").write_text(
        '[[users]]\nauthid = "ann"\nauthrole = "r"\n\n'
        '[[users]]\nauthid = "bob"\nauthrole = "r"\nticket = "plain"\nmood = 1\n',
        encoding="utf-8")
    path = tmp_path / "router.toml"
    path.write_text('[[realms]]\nname = "r"\nallow_anonymous = false\n'
                    'authmethods = ["ticket"]\nusers_file = "users.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    users = str(tmp_path / "users.toml")
    located = {(e.source, e.line, e.key) for e in info.value.errors}
    assert located == {(users, 9, "users[1].mood"), (users, 8, "users[1].ticket")}
    assert info.value.report()[0].startswith(f"{users}:8: users[1].ticket: ")


@pytest.mark.parametrize("realm, joinable", [
    ("allow_anonymous = false", False),
    ('allow_anonymous = false\nauthmethods = ["ticket"]', False),
    ('allow_anonymous = false\nauthmethods = ["ticket"]\n'
     '[[realms.users]]\nauthid = "a"\nauthrole = "r"\ncryptosign_pubkeys = ["' + "ab" * 32 + '"]',
     False),
    ('allow_anonymous = false\nauthmethods = ["cryptosign"]\n'
     '[[realms.users]]\nauthid = "a"\nauthrole = "r"\ncryptosign_pubkeys = ["' + "ab" * 32 + '"]',
     True),
    ('allow_anonymous = false\nauthmethods = ["wampcra"]\nauthenticator = "a.b"\n'
     'authenticator_methods = ["wampcra"]', True),
    ("allow_anonymous = true", True),
])
def test_a_realm_no_client_can_join_is_refused(realm, joinable):
    text = f'[[realms]]\nname = "r"\n{realm}\n'
    if joinable:
        config_from_toml(text)
        return
    with pytest.raises(ConfigError) as info:
        config_from_toml(text, "c.toml")
    assert info.value.key == "realms[0].allow_anonymous"
    assert info.value.line == 3
    assert "no client can join this realm" in info.value.problem


def test_check_config_prints_every_problem_with_file_and_line(tmp_path, capsys):
    from fastwamp.cli import main

    path = tmp_path / "bad.toml"
    path.write_text(MANY_PROBLEMS, encoding="utf-8")
    assert main(["--config", str(path), "--check-config"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{path}:1: log_level: must be one of debug, info, warning, error, " \
        "critical, got 'chatty'"
    assert f"{path}:5: realms[0].allow_anonymus: unknown key; did you mean " \
        "'allow_anonymous'?" in err
    assert err[-1] == "fastwamp: 9 configuration errors; nothing was started"


def test_reload_logs_every_problem_and_keeps_the_running_config(tmp_path, caplog):
    from fastwamp.server import reload_from_file

    path = tmp_path / "bad.toml"
    path.write_text(MANY_PROBLEMS, encoding="utf-8")

    class NeverReloaded:
        def reload(self, config: Config) -> None:
            raise AssertionError("a bad configuration was applied")

    assert reload_from_file(NeverReloaded(), str(path)) is False  # type: ignore[arg-type]
    assert f"{path}:5: realms[0].allow_anonymus" in caplog.text
    assert f"{path}:28: cluster.node_timeout" in caplog.text


def test_key_lines_follow_toml_shapes():
    from fastwamp.ops.toml_lines import key_lines, line_of

    lines = key_lines('''a = 1
[[r]]
n = """x
y"""
[[r.u]]
w = { k = 'v', s = "t" }
[[r]]
p = [
  { q = 1 },  # comment
  { q = [1,
         2] },
]
"k.x" = 3
[t.s]
z.y = 4
''')
    assert lines["a"] == 1
    assert lines["r[0]"] == 2 and lines["r[0].n"] == 3
    assert lines["r[0].u[0].w.s"] == 6
    assert lines["r[1]"] == 7
    assert lines["r[1].p[1].q[1]"] == 11
    assert lines["r[1].k.x"] == 13
    assert lines["t.s.z.y"] == 15
    assert line_of(lines, "r[1].p[0].q") == 9
    assert line_of(lines, "r[1].nothing[3]") == 7
    assert line_of(lines, "missing") is None
    key_lines("[[broken\nx = {a = [1, \"")  # never raises on text tomllib refuses


def _check_against_schema(value, schema, where="") -> None:
    """A small JSON Schema check: the keywords config_json_schema uses."""
    kind = schema.get("type")
    python = {"object": dict, "array": list, "string": str, "boolean": bool,
              "integer": int, "number": (int, float)}[kind]
    assert isinstance(value, python), where
    if "enum" in schema:
        assert value in schema["enum"], where
    if kind == "array":
        for i, item in enumerate(value):
            _check_against_schema(item, schema["items"], f"{where}[{i}]")
    if kind == "object":
        props = schema.get("properties")
        for key, item in value.items():
            if props is None:
                _check_against_schema(item, schema["additionalProperties"], f"{where}.{key}")
            else:
                assert key in props, f"{where}.{key}"
                _check_against_schema(item, props[key], f"{where}.{key}")
        for key in schema.get("required", ()):
            assert key in value, f"{where}.{key}"


def test_config_schema_matches_the_checker(capsys):
    import json

    import tomllib

    from fastwamp.cli import main

    assert main(["--config-schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    realm = schema["properties"]["realms"]["items"]
    assert realm["required"] == ["name"]
    assert realm["properties"]["locality"]["enum"] == ["local_first", "region_first", "global"]
    assert "Let clients join" in realm["properties"]["allow_anonymous"]["description"]
    listener = schema["properties"]["listeners"]["items"]["properties"]
    assert listener["serializers"]["items"]["enum"] == ["json", "msgpack", "cbor"]
    assert schema["properties"]["cluster"]["properties"]["node_timeout"]["type"] == "number"
    _check_against_schema(tomllib.loads(default_config_toml()), schema)
    _check_against_schema(tomllib.loads(MANY_PROBLEMS.replace("allow_anonymus", "strict_uris")
                                        .replace('"chatty"', '"info"')
                                        .replace('"soon"', "3").replace('"yaml"', '"cbor"')
                                        .replace('"prefx"', '"prefix"')), schema)
    with pytest.raises(AssertionError):
        _check_against_schema(tomllib.loads(MANY_PROBLEMS), schema)


@pytest.mark.parametrize("text, key, suggestion", [
    ("[[listener]]\ntype = 'websocket'", "listener", "listeners"),
    ("[cluster]\nnode_name = 'x'", "cluster.node_name", "node"),
    ("[[realms]]\nname = 'r'\nallow_anonymus = true", "realms[0].allow_anonymus",
     "allow_anonymous"),
    ("[[listeners]]\ntype = 'http'\nprot = 9100", "listeners[0].prot", "port"),
])
def test_unknown_keys_get_the_nearest_known_key(text, key, suggestion):
    with pytest.raises(ConfigError) as info:
        config_from_toml(text)
    assert (info.value.key, info.value.problem) == (key, f"unknown key; did you mean "
                                                         f"{suggestion!r}?")


def test_unknown_key_without_a_near_one_lists_the_keys():
    with pytest.raises(ConfigError) as info:
        config_from_toml("[cluster]\nzzz = 1")
    assert info.value.problem.startswith("unknown key; known: enabled, nats_urls, node, ")
