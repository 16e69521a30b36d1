"""docker-compose.yml cannot run here (no Docker engine), so check that it names only what
exists and agrees with the code: service modules, ports, settings of the right service,
what NQT_ENV=prod requires, the Kafka ACLs against the topics and consumer groups the
subscribers really use, the MongoDB users, Prometheus targets and the .env.example."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shared.topics import Topics
from tests.deployment import (PUBLISHES, ROOT, SETTINGS, group_default, module_exists, port_default,
                              settings_from, subscriptions, topic_attrs_in_source, topic_name, variables)
from shared.settings import CommonSettings

COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
KAFKA_INIT = (ROOT / "deploy/compose/kafka/init.sh").read_text()
MONGO_INIT = (ROOT / "deploy/compose/mongo/init-users.js").read_text()
ENV_EXAMPLE = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), flags=re.M))
INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")
# Which settings class reads the environment of each compose service that runs our code.
READERS = {**SETTINGS, "tools": CommonSettings}


def interpolate(value, env: dict[str, str]) -> str:
    """What docker compose makes of `value` with `env` as the .env file."""
    def one(match):
        name, op, default = match.groups()
        given = env.get(name)
        if op == ":-" and not given:
            return default
        if op == ":?" and not given:
            raise AssertionError(f"{name} is required: {default}")
        return given or ""
    return INTERPOLATION.sub(one, str(value))


def environment(name: str, env: dict[str, str] | None = None) -> dict[str, str]:
    env = ENV_EXAMPLE if env is None else env
    return {k: interpolate(v, env) for k, v in (SERVICES[name].get("environment") or {}).items()}


def acls() -> list[tuple[str, str, str, list[str]]]:
    """(principal, operation, kind, names) of every `allow` line of the init script."""
    text = KAFKA_INIT.replace("\\\n", " ")
    return [(who, op, kind, names.split())
            for who, op, kind, names in re.findall(r"^allow (\S+) (\S+) (topic|group|group-prefix) (.+)$", text, re.M)]


SYSTEMS = sorted({who for who, *_ in acls() if who.startswith("sys-")})


def granted(principal: str, operation: str, kind: str) -> set[str]:
    return {n for who, op, k, names in acls() if (who, op, k) == (principal, operation, kind) for n in names}


def test_the_four_services_kafka_mongodb_and_monitoring_are_there():
    assert set(SETTINGS) | {"kafka", "kafka-init", "mongo", "mail", "prometheus", "grafana"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["kafka-init"]["image"] == SERVICES["kafka"]["image"]
    assert SERVICES["mongo"]["image"] == "mongo:7"
    assert SERVICES["prometheus"]["image"].startswith("prom/prometheus:")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana:")


@pytest.mark.parametrize("name", SETTINGS)
def test_each_service_runs_its_own_module_on_its_own_port(name):
    service = SERVICES[name]
    assert service["command"] == ["python", "-m", f"services.{name}"]
    assert module_exists(f"services.{name}")
    port = int(service["environment"][f"NQT_{name.upper()}_PORT"])
    assert port == port_default(name)
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "shared.healthcheck", str(port)]
    for infra in ("kafka", "mongo"):
        assert service["depends_on"][infra] == {"condition": "service_healthy"}
    assert service["depends_on"]["kafka-init"] == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize("name", READERS)
def test_every_variable_a_service_is_given_is_one_of_its_settings(name):
    given = {k for k in SERVICES[name]["environment"] if k.startswith("NQT_")}
    assert given, "the services are configured with NQT_ variables"
    unknown = given - variables(READERS[name])
    assert not unknown, f"{name} has no such settings: {sorted(unknown)}"


@pytest.mark.parametrize("name", READERS)
def test_each_service_starts_with_nqt_env_prod_and_its_own_credentials(name, monkeypatch):
    """prod refuses loopback Kafka and MongoDB and SASL without credentials: each service is
    given its own address, principal and database user, and the settings validate."""
    env = {**environment(name), "NQT_ENV": "prod"}
    settings = settings_from(READERS[name], env, monkeypatch)
    assert settings.kafka_bootstrap == "kafka:19092"
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    principal = "nqt-operator" if name == "tools" else f"nqt-{name}"
    assert settings.kafka_username == principal
    assert settings.kafka_create_topics is False, "kafka-init creates the topics; the ACLs deny Create"
    user = "nqt-ingest" if name == "tools" else f"nqt-{name}"  # `nqt keys` works on ingest's database
    assert settings.mongo_url.startswith(f"mongodb://{user}:")
    assert settings.mongo_url.endswith("@mongo:27017/?authSource=admin")


def test_every_nqt_variable_named_anywhere_in_it_is_a_setting():
    named = set(re.findall(r"\b(NQT_[A-Z0-9_]+)", COMPOSE_TEXT))
    known = set().union(*(variables(cls) for cls in READERS.values()))
    assert named <= known, f"not settings in the code: {sorted(named - known)}"


def test_every_variable_it_reads_from_env_is_listed_in_env_example():
    read = {m.group(1) for m in INTERPOLATION.finditer(COMPOSE_TEXT)}
    assert read, "secrets come from .env"
    assert read <= set(ENV_EXAMPLE), f"missing from .env.example: {sorted(read - set(ENV_EXAMPLE))}"
    assert set(ENV_EXAMPLE) <= read, f"listed but never read: {sorted(set(ENV_EXAMPLE) - read)}"


def test_secrets_have_no_defaults_and_env_is_not_committed():
    for match in INTERPOLATION.finditer(COMPOSE_TEXT):
        if re.search(r"PASSWORD", match.group(1)):
            assert match.group(2) == ":?", f"{match.group(0)}: a password must be required, never defaulted"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_infrastructure_has_health_checks_and_everything_binds_to_loopback():
    for name, service in SERVICES.items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), (name, mapping)
    for name in ("kafka", "mongo", "prometheus", "grafana"):
        assert SERVICES[name]["healthcheck"]["test"]
    assert SERVICES["notify"]["depends_on"]["mail"] == {"condition": "service_started"}
    assert environment("notify")["NQT_SMTP_HOST"] == "mail"
    mail = SERVICES["mail"]["command"]
    assert mail[mail.index("--host") + 1] == "0.0.0.0", "the sink must accept notify's connections"
    assert environment("notify")["NQT_SMTP_PORT"] == mail[mail.index("--port") + 1]


def test_notify_can_fetch_the_reports_it_is_told_about():
    url = environment("reports")["NQT_REPORTS_PUBLIC_URL"]
    assert url == f"http://reports:{port_default('reports')}"
    assert environment("notify")["NQT_NOTIFY_REPORTS_URL"] == url, "notify fetches only from reports' links"


def test_notify_asks_ingest_where_it_listens_whose_a_key_is():
    assert environment("notify")["NQT_NOTIFY_INGEST_URL"] == f"http://ingest:{environment('ingest')['NQT_INGEST_PORT']}"


def test_the_image_copies_only_what_exists_and_commands_exist():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.M):
        assert (ROOT / source).exists(), source
    for module in re.findall(r'"-m", "([\w.]+)"', COMPOSE_TEXT):
        assert module_exists(module), module
    scripts = re.search(r"\[project\.scripts\](.*?)(\n\[|\Z)", (ROOT / "pyproject.toml").read_text(), re.S).group(1)
    assert SERVICES["tools"]["command"][0] in re.findall(r"^(\S+)\s*=", scripts, re.M)


def test_every_mounted_file_exists():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, volume)
    for name in ("kafka", "kafka-init"):
        script = SERVICES[name]["entrypoint"][-1]
        mount = next(v for v in SERVICES[name]["volumes"] if ":/nqt" in v)
        assert (ROOT / mount.split(":")[0] / Path(script).name).exists(), script


@pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
@pytest.mark.parametrize("script", ["deploy/compose/kafka/start.sh", "deploy/compose/kafka/init.sh"])
def test_the_kafka_scripts_are_valid_bash(script):
    result = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_kafka_requires_scram_and_denies_what_no_acl_allows():
    start = (ROOT / "deploy/compose/kafka/start.sh").read_text()
    assert "INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT" in start
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in start
    assert "allow.everyone.if.no.acl.found=false" in start
    assert "CONTROLLER://127.0.0.1:" in start, "the plaintext controller listener stays inside the container"
    assert re.search(r"^super\.users=User:admin;User:ANONYMOUS$", start, re.M)
    assert "kafka:19092" in start and SERVICES["kafka"]["ports"] == ["127.0.0.1:9092:9092"]


def test_kafka_init_creates_exactly_the_topics_of_the_code():
    created = re.search(r"^for topic in (.+); do$", KAFKA_INIT, re.M).group(1).split()
    assert {t for t in created} | {Topics.dlq(t) for t in created} == set(Topics("").all())


@pytest.mark.parametrize("name", SETTINGS)
def test_each_principal_reads_and_writes_exactly_its_own_topics(name):
    """Read: the topics its subscribers consume. Write: the topics it publishes to and the
    dead-letter topics of what it consumes. Nothing else."""
    consumed = {topic for topic, _ in subscriptions(name)}
    names = {topic_name(a) for a in topic_attrs_in_source(name)}
    produced = {topic_name(a) for a in PUBLISHES[name]}
    assert names == consumed | produced, "a topic the code uses is missing from the table (or the reverse)"
    principal = f"nqt-{name}"
    assert granted(principal, "Read", "topic") == consumed
    assert granted(principal, "Write", "topic") == produced | {Topics.dlq(t) for t in consumed}
    everything = set(Topics("").all())
    for _, _, kind, topics in (a for a in acls() if a[2] == "topic"):
        assert set(topics) <= everything, f"no such topics: {set(topics) - everything}"
    assert {op for who, op, _, _ in acls() if who == principal} == {"Read", "Write"}


@pytest.mark.parametrize("name", SETTINGS)
def test_each_principal_uses_only_its_own_consumer_groups(name):
    assert f"NQT_{name.upper()}_GROUP" not in SERVICES[name]["environment"], "the ACLs assume the default group"
    used = {group for _, group in subscriptions(name)}
    principal, base = f"nqt-{name}", group_default(name)
    literal, prefixes = granted(principal, "Read", "group"), granted(principal, "Read", "group-prefix")
    for group in used:
        assert group in literal or any(group.startswith(p) for p in prefixes), f"{group} is not allowed"
    assert literal <= used, f"groups allowed but never used: {literal - used}"
    for prefix in prefixes:
        assert prefix == f"{base}.", "a prefix may only cover the service's own suffixed groups"
        assert any(g.startswith(prefix) for g in used), f"prefix {prefix} covers no group in use"


def test_every_principal_has_a_password_from_env():
    principals = dict(re.findall(r'^principal (\S+)\s+"\$\{(\w+):-\}"$', KAFKA_INIT, re.M))
    assert set(principals) == {f"nqt-{s}" for s in SETTINGS} | {"nqt-operator"} | set(SYSTEMS)
    assert {who for who, *_ in acls()} <= set(principals)
    init_env = SERVICES["kafka-init"]["environment"]
    for principal, variable in principals.items():
        assert variable in init_env and variable in ENV_EXAMPLE, variable
    for name in READERS:
        env = SERVICES[name]["environment"]
        assert f"${{{principals[env['NQT_KAFKA_USERNAME']]}:?" in env["NQT_KAFKA_PASSWORD"], name


def test_the_operator_touches_only_existing_topics():
    everything = set(Topics("").all())
    for operation in ("Read", "Write"):
        assert granted("nqt-operator", operation, "topic") <= everything
    assert not granted("nqt-operator", "Read", "group") | granted("nqt-operator", "Read", "group-prefix")
    assert Topics("").accepted in granted("nqt-operator", "Write", "topic"), "nqt registry load"
    assert Topics("").outcomes in granted("nqt-operator", "Read", "topic"), "nqt registry load waits for outcomes"


def test_each_departmental_system_may_only_write_to_inbound_events():
    """Its own principal, allowed Write and Describe on exactly inbound.events and nothing else
    (no reading, no group, no dead-letter topic: a prefixed ACL would have covered that)."""
    assert SYSTEMS, "departmental systems have principals of their own"
    for system in SYSTEMS:
        assert [(op, kind, names) for who, op, kind, names in acls() if who == system] == [
            ("Write", "topic", [Topics("").inbound]), ("Describe", "topic", [Topics("").inbound])]
    assert "--resource-pattern-type prefixed" not in " ".join(
        line for line in KAFKA_INIT.splitlines() if "inbound.events" in line)


def test_inbound_events_stamps_the_brokers_clock():
    """A record's signature is judged by when the broker appended it: LogAppendTime, in the
    topics the services create and in kafka-init."""
    assert Topics("").config(Topics("").inbound) == {"message.timestamp.type": "LogAppendTime"}
    assert all("message.timestamp.type" not in Topics("").config(t) for t in Topics("").all() if t != Topics("").inbound)
    assert re.search(r"--entity-name inbound\.events\s*\\?\s*--add-config message\.timestamp\.type=LogAppendTime",
                     KAFKA_INIT)


def test_the_history_is_kept_for_ever_and_the_operator_may_replay_it():
    """`nqt replay` rebuilds every state from the history topics: a broker's default retention (7
    days) would delete it, so they are kept for ever, in the topics the services create and in
    kafka-init; the operator may read them and has a MongoDB user for the live and replay databases."""
    topics = Topics("")
    history = set(topics.history())
    assert {topics.accepted, topics.outcomes, topics.changes, topics.due} <= history
    assert all(topics.config(t) == {"retention.ms": "-1"} for t in history)
    assert all("retention.ms" not in topics.config(t) for t in set(topics.all()) - history)
    kept = re.search(r"for topic in ([^;]+); do\s+\S+ \S+ --alter --entity-type topics --entity-name \"\$topic\"\s*\\?"
                     r"\s*--add-config retention\.ms=-1", KAFKA_INIT)
    assert kept and set(kept.group(1).split()) == history
    assert history - {topics.generated} <= granted("nqt-operator", "Read", "topic")
    assert 'user: "nqt-replay"' in MONGO_INIT and "MONGO_REPLAY_PASSWORD" in SERVICES["mongo"]["environment"]
    assert '["ingest", "programs", "reports", "notify"].flatMap(' in MONGO_INIT
    assert '{role: "readWrite", db: `nqt_${service}`}, {role: "readWrite", db: `replay_nqt_${service}`}' in MONGO_INIT


@pytest.mark.parametrize("name", SETTINGS)
def test_each_service_has_a_mongodb_user_for_its_own_database_only(name):
    assert 'for (const service of ["ingest", "programs", "reports", "notify"])' in MONGO_INIT
    assert "user: `nqt-${service}`" in MONGO_INIT and "db: `nqt_${service}`" in MONGO_INIT
    assert SETTINGS[name]().database(name) == f"nqt_{name}"
    variable = f"MONGO_{name.upper()}_PASSWORD"
    assert variable in SERVICES["mongo"]["environment"]
    assert f"${{{variable}:?" in SERVICES[name]["environment"]["NQT_MONGO_URL"]
    mongo = SERVICES["mongo"]["environment"]
    assert {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"} <= set(mongo)


def test_prometheus_scrapes_the_four_services_where_they_listen():
    command = SERVICES["prometheus"]["command"]
    config_path = next(c for c in command if c.startswith("--config.file=")).split("=", 1)[1]
    mount = next(v for v in SERVICES["prometheus"]["volumes"] if v.startswith("./"))
    source, target = mount.split(":")[:2]
    config = yaml.safe_load((ROOT / source / Path(config_path).relative_to(target)).read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"{name}:{port_default(name)}" for name in SETTINGS}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"])
    for rules in config.get("rule_files", []):  # relative to the config file, in the mounted directory
        assert (ROOT / source / rules).exists(), rules
    local = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == [j["job_name"] for j in local["scrape_configs"]]
    assert config.get("rule_files") == local.get("rule_files"), "the same alerts in compose as in the local stack"


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards_folder():
    mounts = dict(v.split(":")[:2] for v in SERVICES["grafana"]["volumes"] if v.startswith("./"))
    provisioning = ROOT / next(s for s, t in mounts.items() if t == "/etc/grafana/provisioning")
    [source] = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    port = SERVICES["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["type"] == "prometheus" and source["url"] == f"http://prometheus:{port}"
    [provider] = yaml.safe_load((provisioning / "dashboards/nq-tracker.yml").read_text())["providers"]
    assert mounts["./deploy/grafana"] == provider["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.skipif(not shutil.which("promtool"), reason="no promtool")
def test_prometheus_accepts_the_compose_configuration():
    result = subprocess.run(["promtool", "check", "config", str(ROOT / "deploy/prometheus/prometheus.compose.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
