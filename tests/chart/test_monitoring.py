"""The optional ServiceMonitor and PrometheusRule, checked against what the webhook exports.

prometheus-operator's CRDs are not in the Kubernetes schema, so these are
explicit assertions; tests/cluster/test_monitoring_objects.py has the real API
server judge them with the operator's own CRDs.
"""

from __future__ import annotations

import re

from prometheus_client.metrics import MetricWrapperBase

from tests.chart.test_chart import FULLNAME, NAMESPACE, one, render
from webhook import metrics
from webhook.admission.admitter import Outcome

ENABLED = ("serviceMonitor.enabled=true", "prometheusRule.enabled=true")
METRIC = re.compile(r"\b(jetstream_pin_[a-z_]+)\b")


def exported() -> set[str]:
    """Every sample name the webhook's metrics module can export (counters as `_total`)."""
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_nothing_for_prometheus_by_default() -> None:
    kinds = {o["kind"] for o in render()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}


def test_service_monitor_scrapes_the_admin_port_verifying_the_certificate() -> None:
    objects = render(*ENABLED, "serviceMonitor.labels.release=kube-prometheus-stack")
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["port"], endpoint["scheme"], endpoint["path"]) == (
        "admin",
        "https",
        "/metrics",
    )
    deployment = one(objects, "Deployment")["spec"]["template"]["spec"]
    [tls] = [v["secret"]["secretName"] for v in deployment["volumes"] if v["name"] == "tls"]
    assert endpoint["tlsConfig"] == {
        "serverName": f"{FULLNAME}.{NAMESPACE}.svc",
        "ca": {"secret": {"name": tls, "key": "ca.crt"}},
    }
    command = one(objects, "Job", f"{FULLNAME}-certs")["spec"]["template"]["spec"]["containers"][0]
    assert f"--dns={endpoint['tlsConfig']['serverName']}" in command["command"]
    own = render("serviceMonitor.enabled=true", "serviceMonitor.tlsConfig.insecureSkipVerify=true")
    [endpoint] = one(own, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}


def test_alerts_use_only_metrics_and_outcomes_the_webhook_has() -> None:
    rule = one(render(*ENABLED, "prometheusRule.certificateDays=21"), "PrometheusRule")
    [group] = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {
        "JetstreamPinCertificateExpiresSoon",
        "JetstreamPinRefusingPods",
        "JetstreamPinBackendFailing",
        "JetstreamPinImageHistoryStale",
        "JetstreamPinEnrollmentListingStale",
    }
    known = exported()
    for alert in alerts.values():
        used = set(METRIC.findall(alert["expr"]))
        assert used, alert["alert"]
        assert used <= known, f"{alert['alert']}: {used - known} is not exported"
        assert f'namespace="{NAMESPACE}"' in alert["expr"]
        assert alert["labels"]["severity"] in {"warning", "critical"}
    assert alerts["JetstreamPinCertificateExpiresSoon"]["expr"].endswith("< 21 * 86400")
    [outcomes] = re.findall(r'outcome=~"([^"]+)"', alerts["JetstreamPinRefusingPods"]["expr"])
    assert set(outcomes.split("|")) == {Outcome.REFUSED, Outcome.FAILED_DENIED}
    assert 'result="error"' in alerts["JetstreamPinBackendFailing"]["expr"]
