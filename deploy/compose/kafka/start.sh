#!/usr/bin/env bash
# Kafka for docker-compose.yml: one KRaft node (broker + controller) from the official
# apache/kafka image, with SASL/SCRAM-SHA-512 on both client listeners and ACLs enforced.
#
#   INTERNAL  kafka:19092      the compose network (services, kafka-init, tools)
#   EXTERNAL  127.0.0.1:9092   the host (published on loopback only)
#   CONTROLLER 127.0.0.1:9093  inside this container only
#
# SCRAM credentials live in the cluster metadata, so the first one (the super user `admin`,
# used by kafka-init and between broker and itself) is written when the storage is formatted;
# kafka-init adds one principal per service afterwards. The controller listener is plaintext
# and its principal (ANONYMOUS) must be a super user, as the broker registers through it: it
# is bound to the container's loopback, so nothing outside this container can use it.
# Passwords: letters and digits only (they end up in JAAS and SCRAM config strings).
set -euo pipefail

: "${KAFKA_ADMIN_PASSWORD:?KAFKA_ADMIN_PASSWORD is not set (see .env.example)}"
KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
DATA=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
CONF=${KAFKA_CONF_DIR:-$KAFKA_HOME/config}
INTERNAL=${KAFKA_INTERNAL_ADVERTISED:-kafka:19092}
EXTERNAL_PORT=${KAFKA_EXTERNAL_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
JAAS="org.apache.kafka.common.security.scram.ScramLoginModule required"

cat > "$CONF/nqt-server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=INTERNAL://0.0.0.0:${INTERNAL##*:},EXTERNAL://0.0.0.0:${EXTERNAL_PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=INTERNAL://${INTERNAL},EXTERNAL://127.0.0.1:${EXTERNAL_PORT}
listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=${JAAS} username="admin" password="${KAFKA_ADMIN_PASSWORD}";
listener.name.external.scram-sha-512.sasl.jaas.config=${JAAS};
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:ANONYMOUS
log.dirs=${DATA}
num.partitions=12
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS

# For the health check (and anyone in this container): the admin's client settings.
cat > "$CONF/nqt-admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=${JAAS} username="admin" password="${KAFKA_ADMIN_PASSWORD}";
PROPS

if [ ! -f "$DATA/meta.properties" ]; then
  "$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted \
    --cluster-id "${CLUSTER_ID:-$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid)}" \
    --config "$CONF/nqt-server.properties" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${KAFKA_ADMIN_PASSWORD}]"
fi
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$CONF/nqt-server.properties"
