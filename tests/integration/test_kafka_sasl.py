"""Kafka with SASL/SCRAM-SHA-512 and ACLs, as docker-compose.yml runs it: started by the very
script the compose file uses (deploy/compose/kafka/start.sh), here on the locally provisioned
Kafka jars. The services' broker, raw aiokafka clients and topic creation authenticate with
the NQT_KAFKA_* settings; a wrong password or a principal without ACLs gets nothing."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from faststream.kafka.annotations import KafkaMessage

from deploy.local import infra, provision
from shared import kafka
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"kafka-storage.sh": "kafka.tools.StorageTool", "kafka-server-start.sh": "kafka.Kafka",
         "kafka-configs.sh": "kafka.admin.ConfigCommand"}


class SaslKafka:
    def __init__(self, home: Path, port: int, admin_password: str, proc: subprocess.Popen, log: Path):
        self.home, self.port, self.admin_password, self.proc, self.log = home, port, admin_password, proc, log

    def settings(self, username: str, password: str, **overrides) -> CommonSettings:
        return CommonSettings(kafka_bootstrap=f"127.0.0.1:{self.port}", kafka_security_protocol="SASL_PLAINTEXT",
                              kafka_username=username, kafka_password=password, env="test", **overrides)

    def add_user(self, name: str, password: str) -> None:
        """A SCRAM principal with no ACLs, added by the admin as kafka-init does."""
        subprocess.run([str(self.home / "bin/kafka-configs.sh"), "--bootstrap-server", f"127.0.0.1:{self.port}",
                        "--command-config", str(self.home / "config/nqt-admin.properties"), "--alter",
                        "--entity-type", "users", "--entity-name", name,
                        "--add-config", f"SCRAM-SHA-512=[password={password}]"], check=True, capture_output=True)


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory):
    libs = provision.provision_kafka()
    home = tmp_path_factory.mktemp("sasl-kafka")
    (home / "bin").mkdir()
    (home / "config").mkdir()
    (home / "log4j2.properties").write_text("rootLogger.level = WARN\n")
    for script, main in TOOLS.items():  # the image's bin/ scripts, on the provisioned jars
        path = home / "bin" / script
        path.write_text(f'#!/usr/bin/env bash\nexec java -Xmx384m -Dlog4j2.configurationFile={home}/log4j2.properties '
                        f'-cp "{libs}/*" {main} "$@"\n')
        path.chmod(0o755)
    port, internal, controller = infra.free_port(), infra.free_port(), infra.free_port()
    admin_password = secrets.token_hex(8)
    env = {**os.environ, "KAFKA_ADMIN_PASSWORD": admin_password, "KAFKA_HOME": str(home),
           "KAFKA_DATA_DIR": str(home / "data"), "KAFKA_CONF_DIR": str(home / "config"),
           "KAFKA_INTERNAL_ADVERTISED": f"127.0.0.1:{internal}", "KAFKA_EXTERNAL_PORT": str(port),
           "KAFKA_CONTROLLER_PORT": str(controller)}
    log = home / "kafka.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", str(ROOT / "deploy/compose/kafka/start.sh")], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = infra.Server("Kafka (SASL)", port, proc, log)
    try:
        infra.wait_for_port(server.name, port, proc, log, timeout=90)
        yield SaslKafka(home, port, admin_password, proc, log)
    finally:
        server.stop()


async def test_the_service_broker_and_raw_clients_authenticate_and_round_trip(sasl_kafka):
    prefix = f"s{secrets.token_hex(3)}."
    settings = sasl_kafka.settings("admin", sasl_kafka.admin_password, topic_prefix=prefix, topic_partitions=1)
    await kafka.ensure_topics(settings, [settings.topics.accepted])  # the admin client, authenticated
    broker = kafka.make_broker(settings, service="sasl-check")
    received: asyncio.Queue[bytes] = asyncio.Queue()

    @broker.subscriber(settings.topics.accepted, group_id=f"{prefix}group", auto_offset_reset="earliest",
                       ack_policy=kafka.COMMIT_AFTER_WRITE)
    async def on_record(msg: KafkaMessage) -> None:
        await received.put(msg.body)

    await broker.start()
    try:
        assert await broker.ping(timeout=10.0)
        await broker.publish(b'{"hello": "sasl"}', settings.topics.accepted, key=b"02")
        assert await asyncio.wait_for(received.get(), 60) == b'{"hello": "sasl"}'
    finally:
        await broker.stop()
    consumer = AIOKafkaConsumer(settings.topics.accepted, **kafka.client_options(settings), group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        assert [r.value for records in batch.values() for r in records] == [b'{"hello": "sasl"}']
    finally:
        await consumer.stop()


async def test_a_wrong_password_gets_no_connection(sasl_kafka):
    producer = AIOKafkaProducer(**kafka.client_options(sasl_kafka.settings("admin", "not-the-password")))
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


async def test_a_principal_without_acls_may_not_write(sasl_kafka):
    """allow.everyone.if.no.acl.found=false: authenticating is not enough, kafka-init's ACLs are needed."""
    admin = sasl_kafka.settings("admin", sasl_kafka.admin_password, topic_partitions=1,
                                topic_prefix=f"s{secrets.token_hex(3)}.")
    await kafka.ensure_topics(admin, [admin.topics.due])
    password = secrets.token_hex(8)
    await asyncio.to_thread(sasl_kafka.add_user, "nqt-nobody", password)
    producer = AIOKafkaProducer(**kafka.client_options(sasl_kafka.settings("nqt-nobody", password)),
                                request_timeout_ms=10_000)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(admin.topics.due, b"{}")
    finally:
        await producer.stop()
