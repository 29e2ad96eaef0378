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
    assert info.value.key == str(path)
    assert "invalid TOML" in info.value.problem


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
