"""The Helm chart, rendered by Helm's own engine (helm-python-sdk embeds Helm's Go SDK): lint,
Kubernetes schemas, checkov, the security context and probes, and the refusal to scale out on
SQLite or a blob directory. hadolint and checkov also check the Dockerfile."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "gateway"
SCALED_OUT = yaml.safe_load((CHART / "ci" / "scaled-out-values.yaml").read_text())
KUBERNETES_VERSION = "1.30.0"
BIN = Path(sys.executable).parent
# Custom resources have no schema in kubernetes-validate; the chart renders only this one.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
POSTGRES_URL = "postgresql+psycopg://gateway:pw@postgres:5432/gateway"
BLOB_URL = "s3://mail-blobs/gateway?endpoint=https://minio:9000"
KEY = "k" * 43 + "="


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    manifests = chart.render(values, name="mail", namespace="mail", is_install=True)
    return [
        document
        for name, text in sorted(manifests.items())
        if name.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]


def only(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [document for document in documents if document["kind"] == kind]
    return found


@pytest.mark.parametrize("values", [None, SCALED_OUT], ids=["default", "scaled-out"])
def test_the_chart_lints_clean(values: dict[str, Any] | None) -> None:
    report = helm.lint(CHART, values, strict=True, namespace="mail", kube_version="v1.30.0")
    assert report["errors"] == []
    # Severity 1 is "info" (Helm suggests an icon); warnings (2) and errors (3) fail.
    assert [message for message in report["messages"] if message["severity"] >= 2] == []


@pytest.mark.parametrize("values", [None, SCALED_OUT], ids=["default", "scaled-out"])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(
    chart: helm.Chart, values: dict[str, Any] | None
) -> None:
    documents = render(chart, values)
    kinds = {document["kind"] for document in documents}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    for document in documents:
        if (document["apiVersion"], document["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        assert document["metadata"]["namespace"] == "mail"


def test_the_default_is_one_replica_on_sqlite_with_a_volume(chart: helm.Chart) -> None:
    documents = render(chart)
    deployment = only(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # one SQLite writer
    claim = only(documents, "PersistentVolumeClaim")
    pod = deployment["spec"]["template"]["spec"]
    (data,) = [volume for volume in pod["volumes"] if volume["name"] == "data"]
    assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    env = {item["name"]: item for item in pod["containers"][0]["env"]}
    assert "GATEWAY_DATABASE_URL" not in env and "GATEWAY_BLOB_URL" not in env
    assert env["GATEWAY_INGEST_WORKERS"]["value"] == "2"  # not the node's CPU count
    assert {"Ingress", "Secret", "ServiceMonitor"}.isdisjoint(d["kind"] for d in documents)


def test_the_scaled_out_release_shares_postgresql_object_storage_and_one_key(
    chart: helm.Chart,
) -> None:
    documents = render(chart, SCALED_OUT)
    deployment = only(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "PersistentVolumeClaim" not in {document["kind"] for document in documents}
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    assert env["GATEWAY_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "mail-gateway-postgres",
        "key": "url",
    }
    assert env["GATEWAY_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mail-gateway-keys"
    assert env["GATEWAY_BLOB_URL"]["value"] == SCALED_OUT["objectStorage"]["url"]
    assert container["envFrom"] == [{"secretRef": {"name": "mail-gateway-s3"}}]
    assert env["GATEWAY_TLS_CERT"]["value"] == "/tls/tls.crt"
    assert container["image"].endswith("@" + SCALED_OUT["image"]["digest"])
    assert pod["affinity"]["podAntiAffinity"]
    assert only(documents, "Ingress")["spec"]["rules"][0]["host"] == "mail-admin.example.com"
    assert only(documents, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "admin"


@pytest.mark.parametrize("values", [None, SCALED_OUT], ids=["default", "scaled-out"])
def test_the_pod_runs_locked_down_with_probes_and_resources(
    chart: helm.Chart, values: dict[str, Any] | None
) -> None:
    pod = only(render(chart, values), "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # With a read-only root, the only writable places are the data volume and /tmp.
    assert {
        mount["mountPath"] for mount in container["volumeMounts"] if not mount.get("readOnly")
    } == {
        "/data",
        "/tmp",
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert {port["name"] for port in container["ports"]} == {
        "imap",
        "imaps",
        "submission",
        "smtps",
        "admin",
    }


def test_the_mail_service_type_is_configurable_and_ports_map_to_the_containers(
    chart: helm.Chart,
) -> None:
    documents = render(chart, {"mailService": {"type": "NodePort"}})
    mail = next(d for d in documents if d["metadata"]["name"] == "mail-gateway-mail")
    assert mail["spec"]["type"] == "NodePort"
    assert {(p["port"], p["targetPort"]) for p in mail["spec"]["ports"]} == {
        (143, "imap"),
        (993, "imaps"),
        (587, "submission"),
        (465, "smtps"),
    }
    admin = next(d for d in documents if d["metadata"]["name"] == "mail-gateway-admin")
    assert admin["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "needs an external PostgreSQL"),
        (
            {"replicaCount": 2, "database": {"url": "sqlite:////data/g.db"}},
            "database.url must start with postgresql",
        ),
        (
            {"replicaCount": 3, "database": {"url": POSTGRES_URL}, "secret": {"secretKey": KEY}},
            "needs shared blob storage",
        ),
        (
            {
                "replicaCount": 3,
                "database": {"url": POSTGRES_URL},
                "objectStorage": {"url": BLOB_URL},
            },
            "one encryption key for every replica",
        ),
    ],
)
def test_more_than_one_replica_without_shared_storage_refuses_to_render(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        render(chart, values)


def test_values_off_the_schema_are_refused(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmValuesError, match="replicaCount"):
        render(chart, {"replicaCount": "three"})
    with pytest.raises(helm.HelmValuesError, match="secretKey"):
        render(chart, {"secret": {"secretKey": "not-a-fernet-key"}})
    with pytest.raises(helm.HelmValuesError, match=r"additional|replicas"):
        render(chart, {"replicas": 3})  # a typo of replicaCount


def test_notes_tell_how_to_log_in(chart: helm.Chart) -> None:
    default = chart.render(None, name="mail", namespace="mail")["gateway/templates/NOTES.txt"]
    assert "port-forward svc/mail-gateway-admin" in default
    assert 'grep "First start"' in default and "User: admin" in default
    scaled = chart.render(SCALED_OUT, name="mail", namespace="mail")["gateway/templates/NOTES.txt"]
    assert "https://mail-admin.example.com/" in scaled
    assert "get secret mail-gateway-keys" in scaled


def _accepted_checkov_findings() -> set[str]:
    readme = (CHART / "README.md").read_text()
    section = readme.split("## Checkov findings we accept", 1)[1]
    return set(re.findall(r"^\| (CKV2?_[A-Z0-9_]+) \|", section, re.MULTILINE))


def _checkov_failures(*arguments: str) -> set[str]:
    result = subprocess.run(
        [str(BIN / "checkov"), *arguments, "--output", "json", "--quiet", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert reports and all("results" in report for report in reports), result.stdout[:2000]
    assert sum(report["summary"]["passed"] for report in reports) > 20
    return {check["check_id"] for report in reports for check in report["results"]["failed_checks"]}


def test_checkov_finds_nothing_the_chart_readme_does_not_justify(
    chart: helm.Chart, tmp_path: Path
) -> None:
    for label, values in (("default", None), ("scaled-out", SCALED_OUT)):
        directory = tmp_path / label
        directory.mkdir()
        documents = [
            d for d in render(chart, values) if (d["apiVersion"], d["kind"]) not in CUSTOM_KINDS
        ]
        (directory / "manifests.yaml").write_text(yaml.safe_dump_all(documents))
    failed = _checkov_failures("--directory", str(tmp_path), "--framework", "kubernetes")
    failed |= _checkov_failures("--file", str(REPO / "Dockerfile"), "--framework", "dockerfile")
    assert failed <= _accepted_checkov_findings(), failed - _accepted_checkov_findings()


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_inline_secrets_and_existing_secrets_mix_without_dangling_references(
    chart: helm.Chart,
) -> None:
    """Keys from an existing Secret, the database URL inline: the chart's own Secret holds
    the URL (and only it), and every reference points at a Secret that has the key."""
    documents = render(
        chart,
        {
            "replicaCount": 2,
            "secret": {"existingSecret": "keys", "secretKey": KEY},  # the existing one wins
            "database": {"url": POSTGRES_URL},
            "objectStorage": {"url": BLOB_URL, "accessKeyId": "id", "secretAccessKey": "sk"},
        },
    )
    secret = only(documents, "Secret")
    assert set(secret["data"]) == {"database-url", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    env = only(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    references = {
        item["name"]: item["valueFrom"]["secretKeyRef"] for item in env if "valueFrom" in item
    }
    assert references["GATEWAY_SECRET_KEY"] == {"name": "keys", "key": "secret-key"}
    for name in ("GATEWAY_DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert references[name]["name"] == secret["metadata"]["name"]
        assert references[name]["key"] in secret["data"]


def test_oauth2_settings_and_client_secrets_reach_the_pod(chart: helm.Chart) -> None:
    values = {
        "oauth2": {
            "redirectBaseUrl": "https://gateway.example.com",
            "existingSecret": "oauth2-clients",
            "settings": {"MICROSOFT_TENANT": "organizations"},
        }
    }
    (container,) = only(render(chart, values), "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["GATEWAY_OAUTH2_REDIRECT_BASE_URL"] == "https://gateway.example.com"
    assert env["GATEWAY_OAUTH2_MICROSOFT_TENANT"] == "organizations"
    assert {"secretRef": {"name": "oauth2-clients"}} in container["envFrom"]
    # A client secret in plain values is refused: it belongs in the Secret.
    with pytest.raises(helm.HelmValuesError, match="GOOGLE_CLIENT_SECRET"):
        render(chart, {"oauth2": {"settings": {"GOOGLE_CLIENT_SECRET": "s"}}})
