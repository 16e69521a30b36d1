"""Kafka authentication settings: SASL/SCRAM reaches every client the services and the CLI
create (the FastStream broker, raw aiokafka consumers, producers and admin clients), and a
SASL protocol without credentials refuses to start."""

from __future__ import annotations

import ssl

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.security import SASLScram256, SASLScram512
from pydantic import ValidationError

from shared import kafka
from shared.settings import CommonSettings

SASL = dict(kafka_security_protocol="SASL_PLAINTEXT", kafka_username="nqt-programs", kafka_password="s3cret")


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch):
    import os
    for name in [n for n in os.environ if n.startswith("NQT_")]:
        monkeypatch.delenv(name)


def test_plaintext_by_default_adds_no_authentication():
    settings = CommonSettings()
    assert kafka.client_options(settings) == {"bootstrap_servers": "127.0.0.1:9092",
                                              "security_protocol": "PLAINTEXT"}
    assert kafka.broker_security(settings) is None


@pytest.mark.parametrize("missing", [dict(kafka_username=None), dict(kafka_password=None),
                                     dict(kafka_password=""), dict(kafka_username="")])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_without_credentials_refuses_to_start(protocol, missing):
    with pytest.raises(ValidationError, match="NQT_KAFKA_USERNAME and NQT_KAFKA_PASSWORD"):
        CommonSettings(**{**SASL, "kafka_security_protocol": protocol, **missing})


def test_unknown_protocol_or_mechanism_is_refused():
    with pytest.raises(ValidationError):
        CommonSettings(**{**SASL, "kafka_security_protocol": "SSL"})
    with pytest.raises(ValidationError):
        CommonSettings(**{**SASL, "kafka_sasl_mechanism": "PLAIN"})


def test_sasl_from_the_environment_reaches_raw_clients_with_scram_sha_512(monkeypatch):
    monkeypatch.setenv("NQT_KAFKA_BOOTSTRAP", "kafka:19092")
    monkeypatch.setenv("NQT_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("NQT_KAFKA_USERNAME", "nqt-programs")
    monkeypatch.setenv("NQT_KAFKA_PASSWORD", "s3cret")
    settings = CommonSettings()
    assert kafka.client_options(settings) == {
        "bootstrap_servers": "kafka:19092", "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "nqt-programs", "sasl_plain_password": "s3cret"}
    assert "s3cret" not in repr(settings)


async def test_every_raw_aiokafka_client_accepts_the_options():
    options = kafka.client_options(CommonSettings(**SASL))
    admin = AIOKafkaAdminClient(**options)
    consumer = AIOKafkaConsumer("programs.outcomes", **options, group_id=None)
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    for client in (admin._client, consumer._client, producer.client):
        assert (client._security_protocol, client._sasl_mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
        assert (client._sasl_plain_username, client._sasl_plain_password) == ("nqt-programs", "s3cret")
    await consumer.stop()
    await producer.stop()


@pytest.mark.parametrize("mechanism, cls", [("SCRAM-SHA-512", SASLScram512), ("SCRAM-SHA-256", SASLScram256)])
def test_the_broker_of_a_service_authenticates_the_same_way(mechanism, cls):
    settings = CommonSettings(**SASL, kafka_sasl_mechanism=mechanism)
    security = kafka.broker_security(settings)
    assert type(security) is cls
    assert (security.username, security.password, security.use_ssl) == ("nqt-programs", "s3cret", False)
    broker = kafka.make_broker(settings, service="programs")
    params = broker._connection_kwargs  # what FastStream gives aiokafka's producer, consumers and admin
    assert params["security_protocol"] == "SASL_PLAINTEXT"
    assert params["sasl_mechanism"] == mechanism
    assert (params["sasl_plain_username"], params["sasl_plain_password"]) == ("nqt-programs", "s3cret")


def test_sasl_ssl_verifies_the_broker_with_the_given_ca(tmp_path):
    settings = CommonSettings(**{**SASL, "kafka_security_protocol": "SASL_SSL"})
    options = kafka.client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    security = kafka.broker_security(settings)
    assert security.use_ssl and isinstance(security.ssl_context, ssl.SSLContext)
    missing = CommonSettings(**{**SASL, "kafka_security_protocol": "SASL_SSL",
                                "kafka_ssl_cafile": str(tmp_path / "no-such-ca.crt")})
    with pytest.raises(FileNotFoundError):
        kafka.client_options(missing)


async def test_topics_are_left_alone_when_the_operator_creates_them():
    # An unreachable bootstrap would fail or hang if ensure_topics tried to connect.
    settings = CommonSettings(kafka_bootstrap="127.0.0.1:1", kafka_create_topics=False)
    await kafka.ensure_topics(settings)
