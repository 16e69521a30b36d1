"""deploy/k8s/ cannot be applied here (no cluster), so check the manifests against the code:
modules, ports and probes, the settings each service is given (of that service, and
enough for NQT_ENV=prod), replicas, disruption budgets, spreading and selectors."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deployment import ROOT, SETTINGS, module_exists, port_default, settings_from, variables

K8S = ROOT / "deploy/k8s"
DOCS = [(path.name, doc) for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
        if doc]
OBJECTS = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in DOCS if doc["kind"] != "Kustomization"}
REPLICAS = {"ingest": 3, "programs": 3, "reports": 2, "notify": 2}
NAMESPACE = "nq-tracker"


def deployment(name: str) -> dict:
    return OBJECTS[("Deployment", name)]


def container(name: str) -> dict:
    [only] = deployment(name)["spec"]["template"]["spec"]["containers"]
    return only


def pod_labels(name: str) -> dict:
    return deployment(name)["spec"]["template"]["metadata"]["labels"]


def environment(name: str) -> dict[str, str]:
    """The variables the container gets: ConfigMaps and Secrets by envFrom, then its own env."""
    env: dict[str, str] = {}
    for source in container(name).get("envFrom", []):
        if "configMapRef" in source:
            env.update(OBJECTS[("ConfigMap", source["configMapRef"]["name"])]["data"])
        if "secretRef" in source:
            env.update(OBJECTS[("Secret", source["secretRef"]["name"])]["stringData"])
    env.update({item["name"]: item["value"] for item in container(name).get("env", [])})
    return env


def port_number(name: str, port) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container(name)["ports"] if p["name"] == port)


def test_one_file_per_service_and_kustomize_applies_them_all():
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert files == {"00-namespace.yaml", "network-policies.yaml"} | {f"{name}.yaml" for name in SETTINGS}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == files
    for _, doc in DOCS:
        if doc["kind"] not in ("Kustomization", "Namespace"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]
    assert ("Namespace", NAMESPACE) in OBJECTS


@pytest.mark.parametrize("name", SETTINGS)
def test_each_service_file_holds_its_deployment_service_budget_and_secret(name):
    kinds = {doc["kind"] for file, doc in DOCS if file == f"{name}.yaml"}
    assert kinds == {"Deployment", "Service", "PodDisruptionBudget", "Secret"}


@pytest.mark.parametrize("name", SETTINGS)
def test_each_deployment_runs_its_module_with_several_replicas(name):
    spec = deployment(name)["spec"]
    assert spec["replicas"] == REPLICAS[name]
    assert spec["selector"]["matchLabels"].items() <= pod_labels(name).items()
    command = container(name)["command"]
    assert command == ["python", "-m", f"services.{name}"] and module_exists(command[-1])


@pytest.mark.parametrize("name", SETTINGS)
def test_ports_and_probes_match_the_service(name):
    env, ports = environment(name), container(name)["ports"]
    port = port_default(name)
    assert [p["containerPort"] for p in ports] == [port]
    assert int(env[f"NQT_{name.upper()}_PORT"]) == port
    probes = {kind: container(name)[f"{kind}Probe"]["httpGet"] for kind in ("readiness", "liveness", "startup")}
    assert probes["readiness"]["path"] == "/readyz"
    assert probes["liveness"]["path"] == probes["startup"]["path"] == "/healthz"
    assert {port_number(name, probe["port"]) for probe in probes.values()} == {port}
    annotations = deployment(name)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("name", SETTINGS)
def test_every_variable_a_service_is_given_is_one_of_its_settings(name):
    given = {k for k in environment(name) if k.startswith("NQT_")}
    unknown = given - variables(SETTINGS[name])
    assert not unknown, f"{name} has no such settings: {sorted(unknown)}"
    assert set(environment(name)) == given, "only NQT_ variables configure the services"


@pytest.mark.parametrize("name", SETTINGS)
def test_each_service_starts_in_prod_with_its_own_credentials(name, monkeypatch):
    """NQT_ENV=prod refuses loopback Kafka and MongoDB, and SASL without credentials."""
    env = environment(name)
    assert env["NQT_ENV"] == "prod"
    settings = settings_from(SETTINGS[name], env, monkeypatch)
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_username == f"nqt-{name}"
    assert settings.kafka_create_topics is False
    assert settings.mongo_url.startswith(f"mongodb://nqt-{name}:")
    assert "replicaSet=rs0" in settings.mongo_url and "authSource=admin" in settings.mongo_url
    assert settings.http_host == "0.0.0.0"
    assert settings.topic_replication >= 3 and settings.topic_partitions >= 12
    mounts = [m["mountPath"] for m in container(name)["volumeMounts"]]
    assert any(settings.kafka_ssl_cafile.startswith(path + "/") for path in mounts), "the CA is mounted"


def test_credentials_are_per_service_and_shared_settings_are_common_only():
    shared = OBJECTS[("ConfigMap", "nq-tracker-config")]["data"]
    common = variables(SETTINGS["ingest"]) & variables(SETTINGS["notify"])
    assert set(shared) <= common, "service-specific settings belong to that service's Deployment"
    assert not {k for k in shared if "PASSWORD" in k or k in ("NQT_MONGO_URL", "NQT_KAFKA_USERNAME")}
    users = [OBJECTS[("Secret", f"{name}-credentials")]["stringData"]["NQT_KAFKA_USERNAME"] for name in SETTINGS]
    assert len(set(users)) == len(SETTINGS)


def test_notify_can_fetch_the_reports_it_is_told_about():
    url = environment("reports")["NQT_REPORTS_PUBLIC_URL"]
    service = OBJECTS[("Service", "reports")]
    assert url == f"http://reports.{NAMESPACE}.svc.cluster.local:{service['spec']['ports'][0]['port']}"
    assert environment("notify")["NQT_NOTIFY_REPORTS_URL"] == url, "notify fetches only from reports' links"


def test_notify_asks_ingest_where_its_service_listens_whose_a_key_is():
    port = OBJECTS[("Service", "ingest")]["spec"]["ports"][0]["port"]
    assert environment("notify")["NQT_NOTIFY_INGEST_URL"] == f"http://ingest.{NAMESPACE}.svc.cluster.local:{port}"


@pytest.mark.parametrize("name", SETTINGS)
def test_resources_spread_and_disruption_budget(name):
    resources = container(name)["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound]), bound
    spread = deployment(name)["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels(name).items()
    budget = OBJECTS[("PodDisruptionBudget", name)]["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= pod_labels(name).items()
    assert deployment(name)["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("name", SETTINGS)
def test_the_service_selects_the_pods_on_the_http_port(name):
    spec = OBJECTS[("Service", name)]["spec"]
    assert spec["selector"].items() <= pod_labels(name).items()
    [port] = spec["ports"]
    assert port["port"] == port_number(name, port["targetPort"]) == port_default(name)


@pytest.mark.parametrize("name", SETTINGS)
def test_comments_say_how_it_scales(name):
    text = (K8S / f"{name}.yaml").read_text()
    assert re.search(r"partition", text, re.I) and "NQT_TOPIC_PARTITIONS" in text
    namespace = (K8S / "00-namespace.yaml").read_text()
    assert "consumer group" in namespace and "replica set" in namespace and "idle" in namespace


# --- network policies, evaluated as Kubernetes does: a pod selected by no policy of a direction is
# open that way; once selected, only what some rule of some selecting policy admits gets through.
POLICIES = [doc["spec"] for _, doc in DOCS if doc["kind"] == "NetworkPolicy"]
OUTSIDE = {"ip": "203.0.113.7", "namespace": None, "labels": {}}                  # the internet
INGRESS_CONTROLLER = {"ip": "10.1.0.5", "namespace": "ingress-nginx", "labels": {"app": "ingress-nginx"}}
PROMETHEUS = {"ip": "10.1.0.6", "namespace": "monitoring", "labels": {"app.kubernetes.io/name": "prometheus"}}
KUBE_DNS = {"ip": "10.1.0.2", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}}


def pod(name: str) -> dict:
    return {"ip": "10.1.1.1", "namespace": NAMESPACE, "labels": pod_labels(name)}


def _selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # matchExpressions are not used here
    return selector.get("matchLabels", {}).items() <= labels.items()


def _peer(peer: dict, other: dict) -> bool:
    if "ipBlock" in peer:
        ip, block = ipaddress.ip_address(other["ip"]), peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
    if other["namespace"] is None:
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other["namespace"]}):
            return False
    elif other["namespace"] != NAMESPACE:
        return False
    return _selects(peer.get("podSelector", {}), other["labels"])


def _port(rule: dict, port: int, protocol: str) -> bool:
    return "ports" not in rule or any(p.get("protocol", "TCP") == protocol and p["port"] == port
                                      for p in rule["ports"])


def allowed(source: dict, destination: dict, port: int, protocol: str = "TCP") -> bool:
    """Whether the policies let `source` open `port` on `destination` (both ends checked)."""
    def side(direction: str, own: dict, other: dict, peers: str) -> bool:
        if own["namespace"] != NAMESPACE:
            return True  # outside the namespace: not these policies' business
        selecting = [p for p in POLICIES
                     if direction in p["policyTypes"] and _selects(p["podSelector"], own["labels"])]
        return not selecting or any(
            _port(rule, port, protocol) and (peers not in rule or any(_peer(peer, other) for peer in rule[peers]))
            for p in selecting for rule in p.get(direction.lower(), []))
    return side("Egress", source, destination, "to") and side("Ingress", destination, source, "from")


def test_from_outside_the_namespace_only_ingests_api_is_reachable():
    for client in (OUTSIDE, INGRESS_CONTROLLER):
        assert allowed(client, pod("ingest"), port_default("ingest"))
        for name in ("reports", "notify", "programs"):
            assert not allowed(client, pod(name), port_default(name)), name
    text = (K8S / "network-policies.yaml").read_text()
    assert "/ui/" in text and "ingress" in text and "port of its own" in text


@pytest.mark.parametrize("name", SETTINGS)
def test_prometheus_in_the_monitoring_namespace_scrapes_every_service(name):
    assert allowed(PROMETHEUS, pod(name), port_default(name))
    elsewhere = {**PROMETHEUS, "namespace": "default"}
    assert allowed(elsewhere, pod(name), port_default(name)) == (name == "ingest")   # ingest is public anyway


def test_the_services_reach_one_another_inside_the_namespace():
    assert allowed(pod("notify"), pod("ingest"), urlsplit(environment("notify")["NQT_NOTIFY_INGEST_URL"]).port)
    assert allowed(pod("notify"), pod("reports"), urlsplit(environment("reports")["NQT_REPORTS_PUBLIC_URL"]).port)


@pytest.mark.parametrize("name", SETTINGS)
def test_every_service_reaches_dns_kafka_and_mongodb_and_nothing_else_outside(name):
    env = environment(name)
    kafka_host, _, kafka_port = env["NQT_KAFKA_BOOTSTRAP"].partition(":")
    mongo = urlsplit(env["NQT_MONGO_URL"].split(",")[0])
    assert allowed(pod(name), KUBE_DNS, 53, "UDP")
    assert allowed(pod(name), {"ip": "10.2.0.1", "namespace": kafka_host.split(".")[1], "labels": {}}, int(kafka_port))
    assert allowed(pod(name), {"ip": "10.3.0.1", "namespace": mongo.hostname.split(".")[2], "labels": {}}, mongo.port)
    assert not allowed(pod(name), {"ip": "10.2.0.1", "namespace": "kafka", "labels": {}}, 22)
    assert allowed(pod(name), OUTSIDE, 443) == (name == "notify")          # webhooks
    assert allowed(pod(name), OUTSIDE, int(env.get("NQT_SMTP_PORT", 587))) == (name == "notify")
