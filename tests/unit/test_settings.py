import pytest

from streams.errors import ConfigError
from streams.settings import load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("DW_KAFKA", "DW_WEB_PORT", "DW_CLOCK", "DW_RULES", "DW_DATA_DIR"):
        monkeypatch.delenv(k, raising=False)
    s = load_settings()
    assert (s.kafka, s.web_port, s.web_host, s.clock, s.retention_days) == (
        "localhost:9092",
        6066,
        "127.0.0.1",
        "wall",
        400,
    )
    assert s.rules.name == "rules.yaml" and s.rules.exists()


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("DW_KAFKA", "localhost", "DW_KAFKA='localhost': Value error, expected host:port"),
        ("DW_KAFKA", "a:1,,b", "DW_KAFKA"),
        ("DW_WEB_PORT", "70000", "DW_WEB_PORT='70000'"),
        ("DW_WEB_PORT", "http", "DW_WEB_PORT='http'"),
        ("DW_CLOCK", "sundial", "DW_CLOCK='sundial': Input should be 'wall' or 'stream'"),
        ("DW_RULES", "/nope/rules.yaml", "rules file /nope/rules.yaml does not exist"),
        ("DW_RETENTION_DAYS", "0", "DW_RETENTION_DAYS"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert message in str(info.value)


def test_topic_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_TOPIC_PREFIX", "t1.")
    s = load_settings()
    assert (s.disposals_topic, s.dlq_topic, s.alerts_topic) == (
        "t1.disposals",
        "t1.disposals.dlq",
        "t1.alerts",
    )


def test_store_defaults_to_rocksdb_and_the_removed_unsafe_store_is_named() -> None:
    assert load_settings().store == "rocksdb"
    assert load_settings(store="memory").store == "memory"
    with pytest.raises(ConfigError, match=r"DW_STORE='rocksdb-unsafe': .*is gone: use rocksdb"):
        load_settings(store="rocksdb-unsafe")


def test_changelog_topic_keeps_the_name_faust_gave_it() -> None:
    assert load_settings(app_id="dw-1", topic_prefix="t.").changelog_topic == "dw-1-crimes-changelog"


def test_registry_settings_need_the_url_and_a_rule_over_several_never_echoes_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DW_PSEUDONYM_KEY", "k" * 40)
    monkeypatch.setenv("DW_SCHEMA_REGISTRY_PASSWORD", "hunter2-registry")
    monkeypatch.setenv("DW_SCHEMA_REGISTRY_USER", "dw")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert "DW_SCHEMA_REGISTRY_USER is set but DW_SCHEMA_REGISTRY_URL is not" in text
    assert "k" * 40 not in text and "hunter2" not in text
    monkeypatch.setenv("DW_SCHEMA_REGISTRY_URL", "http://registry:8081/apis/ccompat/v7")
    s = load_settings()
    assert s.schema_compatibility == "FULL"
    monkeypatch.setenv("DW_SCHEMA_COMPATIBILITY", "NONE")
    with pytest.raises(ConfigError, match="DW_SCHEMA_COMPATIBILITY='NONE'"):
        load_settings()
