"""The chart's /metrics token: inline (in the chart's Secret) or from an existing Secret, given
to the gateway as GATEWAY_METRICS_TOKEN and sent by the ServiceMonitor as a bearer token."""

from __future__ import annotations

import base64
from typing import Any

import helm_python as helm
import kubernetes_validate

from tests.deploy.test_helm_chart import KUBERNETES_VERSION, chart, only, render  # noqa: F401

TOKEN = "metrics-token-value"


def _token_reference(documents: list[dict[str, Any]]) -> dict[str, str] | None:
    env = only(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    for item in env:
        if item["name"] == "GATEWAY_METRICS_TOKEN":
            reference: dict[str, str] = item["valueFrom"]["secretKeyRef"]
            return reference
    return None


def test_no_token_by_default(chart: helm.Chart) -> None:  # noqa: F811 - the fixture
    documents = render(chart, {"serviceMonitor": {"enabled": True}})
    assert _token_reference(documents) is None
    endpoint = only(documents, "ServiceMonitor")["spec"]["endpoints"][0]
    assert "authorization" not in endpoint


def test_inline_token_goes_to_the_chart_secret_and_the_service_monitor(
    chart: helm.Chart,  # noqa: F811 - the fixture
) -> None:
    documents = render(chart, {"serviceMonitor": {"enabled": True, "token": TOKEN}})
    secret = only(documents, "Secret")
    assert base64.b64decode(secret["data"]["metrics-token"]).decode() == TOKEN
    reference = {"name": secret["metadata"]["name"], "key": "metrics-token"}
    assert _token_reference(documents) == reference
    endpoint = only(documents, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": reference}
    for document in documents:
        if document["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_existing_secret_token_wins_and_the_chart_makes_no_secret(
    chart: helm.Chart,  # noqa: F811 - the fixture
) -> None:
    documents = render(
        chart,
        {
            "serviceMonitor": {
                "enabled": True,
                "token": TOKEN,
                "tokenExistingSecret": "monitoring",
                "tokenExistingSecretKey": "scrape-token",
            }
        },
    )
    assert not [document for document in documents if document["kind"] == "Secret"]
    reference = {"name": "monitoring", "key": "scrape-token"}
    assert _token_reference(documents) == reference
    endpoint = only(documents, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["authorization"]["credentials"] == reference
