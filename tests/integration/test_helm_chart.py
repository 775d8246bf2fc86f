"""ocicat's own Helm chart (deploy/helm/ocicat), linted and rendered by Helm's own Go code (helm-python-sdk), the
manifests checked against the Kubernetes API's schemas (kubernetes-validate) for the versions the chart supports."""

from __future__ import annotations

import copy

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from harness.processes import REPO_ROOT
from ocicat import cli
from ocicat.config import Config

CHART = REPO_ROOT / "deploy" / "helm" / "ocicat"
REQUIRED = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
# The chart's kubeVersion is >=1.29: the oldest it supports, one between, and the newest the schemas know.
KUBERNETES = ("1.29.0", "1.33.0", kubernetes_validate.latest_version())
CUSTOM_RESOURCES = {"ServiceMonitor"}  # Prometheus Operator's CRD: not in the Kubernetes API's schemas

MATRIX = {
    "defaults": {},
    "ingress": {"ingress": {"enabled": True, "className": "nginx", "host": "ocicat.example.com",
                            "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "2m"},
                            "tls": {"enabled": True}},
                "publicUrl": "https://ocicat.example.com"},
    "external-secrets": {"database": {"url": "", "existingSecret": "pg", "existingSecretKey": "uri",
                                      "existingSecretReplicaUrlsKey": "replicas"},
                         "webhook": {"secrets": [], "existingSecret": "hooks"},
                         "registry": {"username": "ocicat", "existingSecret": "registry-login"}},
    "autoscaling": {"api": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12}}},
    "read-replicas": {"database": {"replicaUrls": ["postgresql://ocicat:pw@pg-replica-1:5432/ocicat",
                                                   "postgresql://ocicat:pw@pg-replica-2:5432/ocicat"]}},
    "sign-in-with-gitlab": {"publicUrl": "https://ocicat.example.com",
                            "oidc": {"issuer": "https://gitlab.example.com", "clientId": "ocicat",
                                     "clientSecret": "from-gitlab", "secretKey": "a-long-random-string-0123456789",
                                     "gitlab": True, "roleRules": [{"match": "ops", "path": "/", "role": "reporter"},
                                                                   {"match": "ocicat-admins", "role": "admin"}]}},
    "many-workers-on-kafka": {"worker": {"replicas": 6, "concurrency": 8, "delivery": False},
                              "kafka": {"bootstrap": "kafka.example:9092", "catalogTopic": "ocicat.catalog"},
                              "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
}


def _merged(*overrides: dict) -> dict:
    values = copy.deepcopy(REQUIRED)
    for override in overrides:
        for key, value in override.items():
            values[key] = {**values[key], **value} if isinstance(value, dict) and key in values else value
    return values


def _render(values: dict) -> list[dict]:
    chart = helm.Chart.load(CHART)
    try:
        rendered = chart.render(values, name="cat", namespace="catalog", is_install=True)
    finally:
        chart.close()
    return [doc for name, text in rendered.items() if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def _pods(docs: list[dict]) -> list[dict]:
    return [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]


@pytest.mark.parametrize("kubernetes", KUBERNETES)
def test_helm_lint_strict_passes(kubernetes):
    result = helm.lint(CHART, REQUIRED, strict=True, kube_version=kubernetes)
    assert result["errors"] == [] and all(m["severity"] < 2 for m in result["messages"]), result


@pytest.mark.parametrize("case", MATRIX)
def test_every_rendered_manifest_is_valid_for_every_supported_kubernetes(case):
    docs = _render(_merged(MATRIX[case]))
    kinds = sorted(d["kind"] for d in docs)
    assert {"Deployment", "Service", "Job", "ServiceAccount", "PodDisruptionBudget"} <= set(kinds), kinds
    for doc in docs:
        if doc["kind"] in CUSTOM_RESOURCES:
            continue
        for version in KUBERNETES:
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_matrix_renders_what_each_value_asks_for():
    ingress = next(d for d in _render(_merged(MATRIX["ingress"])) if d["kind"] == "Ingress")
    assert ingress["spec"]["tls"] == [{"hosts": ["ocicat.example.com"], "secretName": "cat-ocicat-tls"}]
    hpa = next(d for d in _render(_merged(MATRIX["autoscaling"])) if d["kind"] == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    api = next(d for d in _render(_merged(MATRIX["autoscaling"])) if d["metadata"]["name"] == "cat-ocicat-api"
               and d["kind"] == "Deployment")
    assert "replicas" not in api["spec"]  # the autoscaler owns the count
    docs = _render(_merged(MATRIX["many-workers-on-kafka"]))
    worker = next(d for d in docs if d["metadata"]["name"] == "cat-ocicat-worker")
    assert worker["spec"]["replicas"] == 6
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http", "metrics"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_settings_reach_ocicat_as_it_reads_them():
    """The API's and the workers' environment, secret references resolved, parsed by ocicat's own Config."""
    docs = _render(_merged(MATRIX["many-workers-on-kafka"], {"publicUrl": "https://ocicat.example.com"}))
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    assert secret == {"database-url": REQUIRED["database"]["url"], "webhook-secrets": "change-me"}
    for pod in _pods(docs):
        [container] = pod["containers"]
        env = {e["name"]: e["value"] if "value" in e else secret[e["valueFrom"]["secretKeyRef"]["key"]]
               for e in container["env"]}
        config = Config.from_env(env)
        assert config.kafka.bootstrap == ("kafka.example:9092",) and config.kafka.catalog_topic == "ocicat.catalog"
        assert config.webhook_secrets == ("change-me",) and config.default_visibility == "private"
        assert config.registry_url == "http://registry.example:5000"
        assert config.public_url == "https://ocicat.example.com" and config.database_url == REQUIRED["database"]["url"]
    worker = next(d for d in docs if d["metadata"]["name"] == "cat-ocicat-worker")["spec"]["template"]["spec"]
    assert Config.from_env({e["name"]: e.get("value", "x") for e in worker["containers"][0]["env"]}
                           ).worker_delivery is False


def test_sign_in_settings_reach_the_api_alone():
    docs = _render(_merged(MATRIX["sign-in-with-gitlab"]))
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    assert secret["oidc-client-secret"] == "from-gitlab" and secret["secret-key"].startswith("a-long")
    env = {}
    for pod in _pods(docs):
        env[pod["containers"][0]["name"]] = {
            e["name"]: e["value"] if "value" in e else secret[e["valueFrom"]["secretKeyRef"]["key"]]
            for e in pod["containers"][0]["env"]}
    oidc = Config.from_env(env["api"]).oidc
    assert (oidc.issuer, oidc.client_id, oidc.client_secret, oidc.gitlab) == (
        "https://gitlab.example.com", "ocicat", "from-gitlab", True)
    assert [(r.match.pattern, r.path, r.role) for r in oidc.role_rules] == [("ops", "/", "reporter"),
                                                                             ("ocicat-admins", "/", "admin")]
    assert Config.from_env(env["worker"]).oidc is None  # the workers never see the client secret


def test_read_replicas_reach_the_api_alone():
    docs = _render(_merged(MATRIX["read-replicas"]))
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    for pod in _pods(docs):
        env = {e["name"]: e["value"] if "value" in e else secret[e["valueFrom"]["secretKeyRef"]["key"]]
               for e in pod["containers"][0]["env"]}
        replicas = Config.from_env(env).database_replica_urls
        assert replicas == ((*MATRIX["read-replicas"]["database"]["replicaUrls"],)
                            if pod["containers"][0]["name"] == "api" else ()), pod["containers"][0]["name"]


def test_existing_secrets_are_read_and_no_secret_is_written():
    docs = _render(_merged(MATRIX["external-secrets"]))
    assert not [d for d in docs if d["kind"] == "Secret"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for pod in _pods(docs) for e in pod["containers"][0]["env"]
            if "valueFrom" in e}
    assert refs == {"OCICAT_DATABASE_URL": {"name": "pg", "key": "uri"},
                    "OCICAT_DATABASE_REPLICA_URLS": {"name": "pg", "key": "replicas"},
                    "OCICAT_WEBHOOK_SECRETS": {"name": "hooks", "key": "webhook-secrets"},
                    "OCICAT_REGISTRY_PASSWORD": {"name": "registry-login", "key": "registry-password"}}


@pytest.mark.parametrize("case", MATRIX)
def test_containers_run_as_non_root_on_a_read_only_root_filesystem(case):
    for pod in _pods(_render(_merged(MATRIX[case]))):
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # the one writable place


BAD = {
    "no database": ({"database": {"url": ""}}, "/database"),
    "a typo": ({"api": {"replica": 3}}, "additional properties 'replica'"),
    "a string for a number": ({"worker": {"replicas": "two"}}, "/worker/replicas"),
    "an unknown visibility": ({"defaultVisibility": "secret"}, "/defaultVisibility"),
    "an ingress without a host": ({"ingress": {"enabled": True}}, "/ingress"),
    "a database that is not PostgreSQL": ({"database": {"url": "mysql://db/ocicat"}}, "/database"),
    "a replica that is not a URL": ({"database": {"replicaUrls": ["pg-replica:5432"]}}, "/database/replicaUrls/0"),
    "sign-in without a client secret": ({"publicUrl": "https://o.example", "oidc": {"issuer": "https://idp.example",
                                                                                    "clientId": "c"}}, "/oidc"),
    "sign-in without the public URL": ({"oidc": {"issuer": "https://idp.example", "clientId": "c", "clientSecret": "s",
                                                 "secretKey": "0123456789abcdef"}}, "publicUrl"),
    "a rule with an unknown role": ({"oidc": {"roleRules": [{"match": "x", "role": "root"}]}}, "/oidc/roleRules/0"),
}


@pytest.mark.parametrize("case", BAD)
def test_the_schema_refuses_bad_values_at_install(case):
    values, where = BAD[case]
    with pytest.raises(helm.HelmValuesError) as refused:
        _render(_merged(values))
    assert where in str(refused.value)


def test_the_image_the_chart_runs_is_what_the_dockerfile_builds():
    """No image builder runs here: the Dockerfile's steps are checked against the project and the chart instead."""
    steps = [line.split(None, 1) for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    copied = {args.split()[0] for step, args in steps if step == "COPY"}
    setup = (REPO_ROOT / "setup.cfg").read_text()
    packages = setup.split("[options.packages.find]")[1].split("include =")[1].split("[")[0].split()
    assert {p for p in packages if "." not in p} <= copied  # every package pip installs is in the build context
    assert dict(steps)["USER"].strip() == str(yaml.safe_load((CHART / "values.yaml").read_text())
                                              ["podSecurityContext"]["runAsUser"])  # numeric: runAsNonRoot checks it
    assert dict(steps)["FROM"].strip().endswith("-slim") and dict(steps)["ENTRYPOINT"].strip() == '["ocicat"]'
    docs = _render(REQUIRED)
    commands = {d["spec"]["template"]["spec"]["containers"][0]["args"][0] for d in docs
                if d["kind"] in ("Deployment", "Job")}
    assert commands == {"api", "worker", "migrate"} and commands <= set(cli.main.commands)
