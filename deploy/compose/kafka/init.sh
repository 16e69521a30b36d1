#!/usr/bin/env bash
# kafka-init (docker-compose.yml): one principal per service, its ACLs and the topics.
# Runs as the super user `admin` on every `docker compose up`; every step is idempotent
# (a changed password in .env is applied on the next run).
#
# Each service may read exactly the topics it consumes, write the topics it produces plus
# the dead-letter topics (<topic>.dlq) of what it consumes, and use only its own consumer
# groups: the group named by NQT_<SERVICE>_GROUP, and for services with one group per topic
# (ingest, notify) the groups starting with "<group>." (a prefixed ACL).
# Topic names assume the default NQT_TOPIC_PREFIX (empty); tests/unit/test_compose.py checks
# this table against shared/topics.py and the services' subscribers.
set -euo pipefail

: "${KAFKA_ADMIN_PASSWORD:?KAFKA_ADMIN_PASSWORD is not set (see .env.example)}"
BIN=${KAFKA_BIN:-/opt/kafka/bin}
BOOTSTRAP=${KAFKA_BOOTSTRAP:-kafka:19092}
PARTITIONS=${KAFKA_TOPIC_PARTITIONS:-12}
ADMIN_CONFIG=$(mktemp)
trap 'rm -f "$ADMIN_CONFIG"' EXIT
cat > "$ADMIN_CONFIG" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
PROPS
admin=(--bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG")

principal() {  # principal NAME PASSWORD: create or update the SCRAM-SHA-512 credential
  [ -n "$2" ] || { echo "no password for $1 (see .env.example)" >&2; exit 1; }
  "$BIN/kafka-configs.sh" "${admin[@]}" --alter --entity-type users --entity-name "$1" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$2]"
}

allow() {  # allow PRINCIPAL OPERATION topic|group|group-prefix NAME...
  local who=$1 operation=$2 kind=$3 args=()
  shift 3
  for name in "$@"; do
    case $kind in
      topic) args+=(--topic "$name") ;;
      group|group-prefix) args+=(--group "$name") ;;
    esac
  done
  [ "$kind" = group-prefix ] && args+=(--resource-pattern-type prefixed)
  "$BIN/kafka-acls.sh" "${admin[@]}" --add --allow-principal "User:$who" --operation "$operation" "${args[@]}" >/dev/null
  echo "allowed $who $operation on $kind $*"
}

# Topics: the six of shared/topics.py and their dead-letter topics.
existing=$("$BIN/kafka-topics.sh" "${admin[@]}" --list)
for topic in inbound.events events.accepted programs.outcomes programs.changes reports.due reports.generated; do
  for name in "$topic" "$topic.dlq"; do
    grep -qx "$name" <<<"$existing" || "$BIN/kafka-topics.sh" "${admin[@]}" --create --if-not-exists \
      --topic "$name" --partitions "$PARTITIONS" --replication-factor 1
  done
done
# inbound.events stamps records with the broker's clock on arrival (shared/topics.py Topics.config):
# ingest judges the age of a record's signature by it, not by the publisher's clock. Set on every
# run, so a topic created before gets it too.
"$BIN/kafka-configs.sh" "${admin[@]}" --alter --entity-type topics --entity-name inbound.events \
  --add-config message.timestamp.type=LogAppendTime
# The history every state is rebuilt from (`nqt replay`) is kept for ever (Topics.history).
for topic in events.accepted programs.outcomes programs.changes reports.due reports.generated; do
  "$BIN/kafka-configs.sh" "${admin[@]}" --alter --entity-type topics --entity-name "$topic" \
    --add-config retention.ms=-1
done

principal nqt-ingest    "${KAFKA_INGEST_PASSWORD:-}"
principal nqt-programs  "${KAFKA_PROGRAMS_PASSWORD:-}"
principal nqt-reports   "${KAFKA_REPORTS_PASSWORD:-}"
principal nqt-notify    "${KAFKA_NOTIFY_PASSWORD:-}"
principal nqt-operator  "${KAFKA_OPERATOR_PASSWORD:-}"
# Departmental systems that publish straight to inbound.events: one principal each (sys-<unit code>).
principal sys-so-khdt    "${KAFKA_SYS_SO_KHDT_PASSWORD:-}"
principal sys-q-hoankiem "${KAFKA_SYS_Q_HOANKIEM_PASSWORD:-}"

# ingest: outcomes (event status), inbound.events (direct intake), programs.changes (units, tasks),
# reports.due (open cycles: the templates) -> events.accepted
allow nqt-ingest Read topic inbound.events programs.outcomes programs.changes reports.due
allow nqt-ingest Write topic events.accepted inbound.events.dlq programs.outcomes.dlq programs.changes.dlq reports.due.dlq
allow nqt-ingest Read group nqt-ingest
allow nqt-ingest Read group-prefix nqt-ingest.

# programs: events.accepted -> programs.changes, programs.outcomes
allow nqt-programs Read topic events.accepted
allow nqt-programs Write topic programs.changes programs.outcomes events.accepted.dlq
allow nqt-programs Read group nqt-programs

# reports: programs.changes -> reports.due, reports.generated
allow nqt-reports Read topic programs.changes
allow nqt-reports Write topic reports.due reports.generated programs.changes.dlq
allow nqt-reports Read group nqt-reports

# notify: programs.changes, programs.outcomes, reports.due, reports.generated -> nothing but dead letters
allow nqt-notify Read topic programs.changes programs.outcomes reports.due reports.generated
allow nqt-notify Write topic programs.changes.dlq programs.outcomes.dlq reports.due.dlq reports.generated.dlq
allow nqt-notify Read group-prefix nqt-notify.

# operator (`nqt registry load`, `nqt dlq list|replay`, `nqt replay`; no consumer group): publishes
# registry events and reads their outcomes, reads dead letters and sends one back to where it came
# from, reads the history to rebuild the services' state.
allow nqt-operator Read topic events.accepted programs.outcomes programs.changes reports.due \
  inbound.events.dlq events.accepted.dlq programs.outcomes.dlq programs.changes.dlq reports.due.dlq \
  reports.generated.dlq
allow nqt-operator Write topic inbound.events events.accepted programs.outcomes programs.changes reports.due \
  reports.generated

# departmental systems that publish straight to Kafka: write to inbound.events and see its
# metadata, nothing else (no read, no group, not even its dead letters). A literal ACL: a prefixed
# one on "inbound.events" would also cover inbound.events.dlq. Which unit a record speaks for is
# proved by its signature (services/ingest/intake.py), not by the principal.
allow sys-so-khdt Write topic inbound.events
allow sys-so-khdt Describe topic inbound.events
allow sys-q-hoankiem Write topic inbound.events
allow sys-q-hoankiem Describe topic inbound.events

echo "kafka-init: principals, ACLs and topics are in place"
