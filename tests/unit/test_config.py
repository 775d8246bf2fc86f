"""Settings: read from the environment strictly, refused by name when malformed."""

from __future__ import annotations

import re

import pytest

from indexer.bus.kafka_client import client_options
from ocicat.config import Config, ConfigError


def _kafka_env(**extra) -> dict:
    return {"OCICAT_KAFKA_BOOTSTRAP": "broker-1:9092, broker-2:9093", **extra}


def test_kafka_settings_are_read_and_passed_through(tmp_path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    for path in (ca, cert, key):
        path.write_text("-----BEGIN-----\n")
    config = Config.from_env(_kafka_env(
        OCICAT_KAFKA_TOPIC="registry.events", OCICAT_KAFKA_PARTITIONS="24", OCICAT_KAFKA_REPLICATION_FACTOR="3",
        OCICAT_KAFKA_GROUP="indexers", OCICAT_KAFKA_SECURITY_PROTOCOL="sasl_ssl",
        OCICAT_KAFKA_SASL_MECHANISM="scram-sha-512", OCICAT_KAFKA_SASL_USERNAME="ocicat",
        OCICAT_KAFKA_SASL_PASSWORD="s3cret", OCICAT_KAFKA_SSL_CAFILE=str(ca), OCICAT_KAFKA_SSL_CERTFILE=str(cert),
        OCICAT_KAFKA_SSL_KEYFILE=str(key),
    ))
    kafka = config.kafka
    assert kafka.bootstrap == ("broker-1:9092", "broker-2:9093")
    assert (kafka.topic, kafka.partitions, kafka.replication_factor, kafka.group) == ("registry.events", 24, 3, "indexers")
    assert "s3cret" not in repr(config)

    options = client_options(kafka, "worker")
    assert options["bootstrap_servers"] == ["broker-1:9092", "broker-2:9093"]
    assert options["client_id"].startswith("ocicat-worker-")
    assert {k: options[k] for k in ("security_protocol", "sasl_mechanism", "sasl_plain_username",
                                    "sasl_plain_password", "ssl_cafile", "ssl_certfile", "ssl_keyfile")} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "ocicat",
        "sasl_plain_password": "s3cret", "ssl_cafile": str(ca), "ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    assert Config.from_env({}).kafka is None  # the PostgreSQL queue stays the default
    defaults = Config.from_env({"OCICAT_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}).kafka
    assert (defaults.topic, defaults.partitions, defaults.group, defaults.security_protocol) == (
        "ocicat-events", 12, "ocicat-indexer", "PLAINTEXT")
    assert "sasl_mechanism" not in client_options(defaults, "receiver")


@pytest.mark.parametrize("env, message", [
    ({"OCICAT_KAFKA_TOPIC": "events"}, "OCICAT_KAFKA_TOPIC is set but OCICAT_KAFKA_BOOTSTRAP is not"),
    (_kafka_env(OCICAT_KAFKA_BOOTSTRAP="broker-1"), "must be host:port"),
    (_kafka_env(OCICAT_KAFKA_BOOTSTRAP="broker-1:99999"), "must be host:port"),
    (_kafka_env(OCICAT_KAFKA_TOPIC="events/all"), "OCICAT_KAFKA_TOPIC must be"),
    (_kafka_env(OCICAT_KAFKA_PARTITIONS="0"), "OCICAT_KAFKA_PARTITIONS must be at least 1"),
    (_kafka_env(OCICAT_KAFKA_PARTITIONS="many"), "OCICAT_KAFKA_PARTITIONS must be an integer"),
    (_kafka_env(OCICAT_KAFKA_SECURITY_PROTOCOL="TLS"), "OCICAT_KAFKA_SECURITY_PROTOCOL must be one of"),
    (_kafka_env(OCICAT_KAFKA_SECURITY_PROTOCOL="SASL_SSL"), "needs OCICAT_KAFKA_SASL_MECHANISM"),
    (_kafka_env(OCICAT_KAFKA_SECURITY_PROTOCOL="SASL_SSL", OCICAT_KAFKA_SASL_MECHANISM="GSSAPI"),
     "needs OCICAT_KAFKA_SASL_MECHANISM, one of PLAIN"),
    (_kafka_env(OCICAT_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", OCICAT_KAFKA_SASL_MECHANISM="PLAIN",
                OCICAT_KAFKA_SASL_USERNAME="ocicat"), "needs OCICAT_KAFKA_SASL_USERNAME and OCICAT_KAFKA_SASL_PASSWORD"),
    (_kafka_env(OCICAT_KAFKA_SASL_USERNAME="ocicat"), "does not use SASL"),
    (_kafka_env(OCICAT_KAFKA_SSL_CAFILE="/etc/hosts"), "does not use TLS"),
    (_kafka_env(OCICAT_KAFKA_SECURITY_PROTOCOL="SSL", OCICAT_KAFKA_SSL_CAFILE="/nonexistent/ca.pem"),
     "OCICAT_KAFKA_SSL_CAFILE must name a readable file"),
    (_kafka_env(OCICAT_KAFKA_SECURITY_PROTOCOL="SSL", OCICAT_KAFKA_SSL_KEYFILE="/etc/hosts"),
     "OCICAT_KAFKA_SSL_KEYFILE needs OCICAT_KAFKA_SSL_CERTFILE"),
    (_kafka_env(OCICAT_KAFKA_TOPICS="events"), "unknown setting OCICAT_KAFKA_TOPICS"),
])
def test_bad_kafka_settings_are_refused_by_name(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.from_env(env)


def test_settings_of_the_worker_and_logs_are_checked_by_name():
    config = Config.from_env({"OCICAT_LOG_FORMAT": "JSON", "OCICAT_RESYNC_INTERVAL": "3600",
                              "OCICAT_WORKER_METRICS_LISTEN": "127.0.0.1:9464"})
    assert (config.log_format, config.resync_interval, config.worker_metrics_listen) == ("json", 3600, "127.0.0.1:9464")
    assert Config.from_env({}).resync_interval == 0  # off by default
    for env, message in (({"OCICAT_LOG_FORMAT": "xml"}, "OCICAT_LOG_FORMAT"),
                         ({"OCICAT_WORKER_METRICS_LISTEN": "9464"}, "OCICAT_WORKER_METRICS_LISTEN"),
                         ({"OCICAT_RESYNC_INTERVAL": "-1"}, "OCICAT_RESYNC_INTERVAL")):
        with pytest.raises(ConfigError, match=message):
            Config.from_env(env)


@pytest.mark.parametrize("env, message", [
    ({"OCICAT_REGISTRY_URL": "http://ocicat:s3cret@registry:5000"}, "must not hold credentials"),
    ({"OCICAT_REGISTRY_URL": "https://token@registry.example"}, "must not hold credentials"),
    ({"OCICAT_REGISTRY_PUBLIC_HOST": "user:pass@registry.example"}, "must be host or host:port"),
    ({"OCICAT_REGISTRY_PUBLIC_HOST": "registry.example/evil"}, "must be host or host:port"),
])
def test_registry_credentials_never_hide_in_an_address(env, message):
    """A password in the URL ended up in every chart's oci:// reference, the UI's commands and the logs."""
    with pytest.raises(ConfigError, match=message) as refused:
        Config.from_env(env)
    assert "s3cret" not in str(refused.value) and "pass" not in str(refused.value)


def test_the_public_host_is_what_users_pull_from():
    assert Config.from_env({"OCICAT_REGISTRY_PUBLIC_HOST": "registry.example:443"}).registry_host == "registry.example:443"
    assert Config.from_env({"OCICAT_REGISTRY_URL": "http://10.0.0.5:5000/"}).registry_host == "10.0.0.5:5000"
