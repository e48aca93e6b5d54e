"""The Helm chart through the real `helm` binary: lint, render, validate, and check what matters.

Every rendered object is validated against the Kubernetes 1.37 OpenAPI schema
(kubernetes-validate, strict). cert-manager's Certificate and Issuer are CRDs
that schema does not know, so those are checked by explicit assertions below.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import helm
from tests.support.kube import validate
from webhook.config import parse_config

CHART = helm.CHART
NAMESPACE = "jetstream-pin"
RELEASE = "jp"
FULLNAME = "jp-jetstream-pin"
CRD_KINDS = {("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer")}
HOOK = "helm.sh/hook"


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return helm.run_helm(*args)
    except helm.HelmMissing as err:
        pytest.fail(str(err))


def render(
    *sets: str, values: dict[str, Any] | None = None, kube: str = "1.33.0", tmp: Path | None = None
) -> list[dict[str, Any]]:
    try:
        return helm.render(RELEASE, NAMESPACE, kube, sets, values)
    except helm.HelmMissing as err:
        pytest.fail(str(err))


def one(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def kinds(objects: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)


def validate_all(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            check_cert_manager(obj)
        else:
            validate(obj)


def check_cert_manager(obj: dict[str, Any]) -> None:
    """By hand, as kubernetes-validate has no cert-manager schema."""
    assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
    assert obj["metadata"]["namespace"] == NAMESPACE
    spec = obj["spec"]
    if obj["kind"] == "Issuer":
        assert spec in (
            {"selfSigned": {}},
            {"ca": {"secretName": spec.get("ca", {}).get("secretName")}},
        )
        assert spec.get("ca", {"secretName": "x"})["secretName"]
        return
    assert set(spec) <= {
        "secretName",
        "dnsNames",
        "duration",
        "renewBefore",
        "privateKey",
        "usages",
        "issuerRef",
        "isCA",
        "commonName",
    }
    assert spec["secretName"]
    assert spec["issuerRef"]["name"]
    assert spec["privateKey"] in (
        {"algorithm": "ECDSA", "size": 256},
        {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    )


MODES = {
    "selfManaged": [],
    "certManager": ["certificates.mode=certManager"],
    "certManager with issuer": [
        "certificates.mode=certManager",
        "certificates.certManager.issuerRef.name=corp-ca",
        "certificates.certManager.issuerRef.kind=ClusterIssuer",
    ],
    "provided": [
        "certificates.mode=provided",
        "certificates.provided.secretName=my-tls",
        f"certificates.provided.caBundle={base64.b64encode(b'-----BEGIN CERT').decode()}",
    ],
}


def test_lint() -> None:
    for sets in MODES.values():
        args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
        for item in sets:
            args += ["--set", item]
        done = run_helm(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("mode", list(MODES))
def test_every_object_is_valid(mode: str) -> None:
    objects = render(*MODES[mode])
    validate_all(objects)
    deployment = one(objects, "Deployment")
    secret = deployment["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"]
    webhook = helm.webhook_configuration(objects)
    jobs = [o for o in objects if o["kind"] == "Job"]
    certificates = [o for o in objects if o["kind"] == "Certificate"]
    annotations = webhook["metadata"].get("annotations", {})
    client = webhook["webhooks"][0]["clientConfig"]
    if mode == "selfManaged":
        assert secret == f"{FULLNAME}-tls"
        validate(webhook)  # registered by the post-install Job, so it must be valid too
        assert "MutatingWebhookConfiguration" not in [o["kind"] for o in objects]
        cron = one(objects, "CronJob")["spec"]["jobTemplate"]
        commands = {
            job["metadata"]["name"]: job["spec"]["template"]["spec"]["containers"][0]["command"]
            for job in [*jobs, cron | {"metadata": {"name": "renew"}}]
        }
        assert set(commands) == {f"{FULLNAME}-certs", f"{FULLNAME}-register", "renew"}
        for command in commands.values():
            assert command[:2] == ["jetstream-pin", "certs"]
            assert f"--secret={NAMESPACE}/{secret}" in command
            assert f"--webhook={webhook['metadata']['name']}" in command
            assert f"--dns={FULLNAME}.{NAMESPACE}.svc" in command
        assert commands[f"{FULLNAME}-register"][-4:] == [
            f"--register-from={NAMESPACE}/{FULLNAME}-webhook",
            f"--wait-for-deployment={NAMESPACE}/{FULLNAME}",
            "--wait-seconds=240",
            f"--owner-clusterrole={FULLNAME}-renew",
        ]
        assert "caBundle" not in client
        assert not certificates
        hooks = {
            f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["annotations"][HOOK]
            for o in objects
            if HOOK in o["metadata"].get("annotations", {})
        }
        every = "pre-install,pre-upgrade,post-install,post-upgrade"
        assert hooks == {
            f"Job/{FULLNAME}-certs": "pre-install,pre-upgrade",
            f"Job/{FULLNAME}-register": "post-install,post-upgrade",
        } | {
            f"{kind}/{FULLNAME}-certs": every
            for kind in (
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
            )
        } | {
            f"{kind}/{FULLNAME}-test": "test"
            for kind in ("ServiceAccount", "Role", "RoleBinding", "Pod")
        }
    elif mode.startswith("certManager"):
        assert not jobs
        validate(webhook)
        serving = one(objects, "Certificate", f"{FULLNAME}-tls")
        assert serving["spec"]["secretName"] == secret
        assert f"{FULLNAME}.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
        assert annotations["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{FULLNAME}-tls"
        if mode == "certManager":
            ca = one(objects, "Certificate", f"{FULLNAME}-ca")
            assert ca["spec"]["isCA"] is True
            assert serving["spec"]["issuerRef"]["name"] == f"{FULLNAME}-ca"
            assert len([o for o in objects if o["kind"] == "Issuer"]) == 2
        else:
            assert serving["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}
            assert len(certificates) == 1
    else:
        assert secret == "my-tls"
        assert client["caBundle"] == MODES["provided"][2].split("=", 1)[1]
        assert not jobs
        assert not certificates


def test_webhook_scope_and_policy() -> None:
    objects = render("webhook.failurePolicy=Ignore", "webhook.timeoutSeconds=7")
    [hook] = helm.webhook_configuration(objects)["webhooks"]
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["sideEffects"] == "NoneOnDryRun"  # Events are skipped for dryRun
    assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 7)
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["rules"] == [
        {
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "scope": "Namespaced",
        },
    ]
    expressions = hook["namespaceSelector"]["matchExpressions"]
    assert {
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": [NAMESPACE, "kube-system"],
    } in expressions
    assert {
        "key": "kubernetes.io/metadata.name",
        "operator": "In",
        "values": ["argo"],
    } in expressions
    assert hook["objectSelector"] == {
        "matchExpressions": [{"key": "workflows.argoproj.io/workflow", "operator": "Exists"}]
    }
    service = one(objects, "Service")
    assert hook["clientConfig"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": NAMESPACE,
        "path": "/mutate",
        "port": 443,
    }
    [condition] = hook["matchConditions"]
    assert "object.spec.containers.exists(c, " in condition["expression"]
    assert "startsWith('gcr.io/moz-fx-data-experiments/jetstream:')" in condition["expression"]


def test_defaults_on_the_webhook() -> None:
    [hook] = helm.webhook_configuration(render())["webhooks"]
    assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Fail", 10)
    [hook] = helm.webhook_configuration(render("kubernetes.events=false"))["webhooks"]
    assert hook["sideEffects"] == "None"


def test_audit_mode_never_refuses_unless_told_to() -> None:
    [hook] = helm.webhook_configuration(render("mode=audit"))["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    explicit = render("mode=audit", "webhook.failurePolicy=Fail")
    [hook] = helm.webhook_configuration(explicit)["webhooks"]
    assert hook["failurePolicy"] == "Fail"


def test_match_conditions_only_where_the_cluster_has_them() -> None:
    [hook] = helm.webhook_configuration(render(kube="1.27.16"))["webhooks"]
    assert "matchConditions" not in hook
    for beta in ("1.28.0", "1.29.5"):  # beta, on by default
        [hook] = helm.webhook_configuration(render(kube=beta))["webhooks"]
        assert hook["matchConditions"][0]["name"] == "runs-a-pinned-image"
    [hook] = helm.webhook_configuration(render("webhook.matchConditions=false"))["webhooks"]
    assert "matchConditions" not in hook


def test_admission_policy_matches_what_the_webhook_matches() -> None:
    objects = render(values={"webhook": {"namespaces": ["argo", "batch"]}})
    [hook] = helm.webhook_configuration(objects)["webhooks"]
    spec = one(objects, "ValidatingAdmissionPolicy")["spec"]
    constraints = spec["matchConstraints"]
    assert constraints["namespaceSelector"] == hook["namespaceSelector"]
    assert constraints["objectSelector"] == hook["objectSelector"]
    assert constraints["resourceRules"] == [
        {**hook["rules"][0], "operations": ["CREATE", "UPDATE"]}
    ]
    [condition] = spec["matchConditions"]
    [webhook_condition] = hook["matchConditions"]
    assert condition["expression"] == (
        f"request.operation == 'UPDATE' || {webhook_condition['expression']}"
    )
    assert spec["failurePolicy"] == "Fail"
    assert [v["reason"] for v in spec["validations"]] == ["Forbidden"] * 3
    binding = one(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": FULLNAME, "validationActions": ["Deny"]}


def test_admission_policy_cel_comes_from_the_webhook_config() -> None:
    """Another image repository and config repo show in the expressions, never a copy."""
    images = [
        {"repository": "gcr.io/moz-fx-data-experiments/jetstream", "history": {"type": "gcr"}},
        {"repository": "registry.example:5000/team/jetstream", "history": {"type": "oci"}},
    ]
    repos = [
        {"name": "metric-hub", "history": {"type": "github", "repo": "mozilla/metric-hub"}},
        {"name": "extra", "env": "EXTRA_SHA", "history": {"type": "git", "url": "/srv/x"}},
    ]
    objects = render(values={"config": {"images": images, "configRepos": repos}})
    spec = one(objects, "ValidatingAdmissionPolicy")["spec"]
    variables = {v["name"]: v["expression"] for v in spec["variables"]}
    assert "c.image.startsWith('registry.example:5000/team/jetstream:')" in variables["targets"]
    assert "e.name == 'METRIC_HUB_SHA'" in variables["missing"]  # the default env name
    assert "e.name == 'EXTRA_SHA'" in variables["missing"]
    assert (
        "METRIC_HUB_SHA=<commit> and EXTRA_SHA=<commit>"
        in (spec["validations"][0]["messageExpression"])
    )
    # One predicate for "a target container", shared with the webhook's matchCondition.
    predicate = variables["targets"].removeprefix("variables.containers.filter(c, ")
    assert variables["oldTargets"] == f"variables.oldContainers.filter(c, {predicate}"
    [hook] = helm.webhook_configuration(objects)["webhooks"]
    assert (
        f"object.spec.containers.exists(c, {predicate}" in hook["matchConditions"][0]["expression"]
    )


@pytest.mark.parametrize(
    ("sets", "actions"),
    [
        ((), ["Deny"]),
        (("mode=audit",), ["Warn", "Audit"]),
        (("onError=allow",), ["Warn", "Audit"]),
        (("validatingPolicy.actions=warn",), ["Warn", "Audit"]),
        (("mode=audit", "validatingPolicy.actions=deny"), ["Deny"]),
    ],
)
def test_admission_policy_denies_only_where_the_webhook_would(
    sets: tuple[str, ...], actions: list[str]
) -> None:
    binding = one(render(*sets), "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == actions


def test_admission_policy_only_where_the_cluster_has_it() -> None:
    old = render(kube="1.29.15")
    kinds_old = {o["kind"] for o in old}
    assert helm.webhook_configuration(old)["kind"] == "MutatingWebhookConfiguration"
    assert not {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} & kinds_old
    assert "ValidatingAdmissionPolicy" in {o["kind"] for o in render(kube="1.30.0")}
    disabled = {o["kind"] for o in render("validatingPolicy.enabled=false")}
    assert not {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} & disabled


def test_own_namespace_can_never_be_a_target() -> None:
    done = run_helm(
        "template",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--set",
        f"webhook.namespaces={{argo,{NAMESPACE}}}",
    )
    assert done.returncode != 0
    assert "webhook.namespaces: jetstream-pin is the release's own namespace" in done.stderr
    objects = render("webhook.namespaces=null", "webhook.excludeNamespaces={team-x}")
    [hook] = helm.webhook_configuration(objects)["webhooks"]
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": [NAMESPACE, "kube-system", "team-x"],
        },
    ]


def test_deployment_is_available_and_hardened() -> None:
    objects = render()
    deployment = one(objects, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = spec["selector"]["matchLabels"]
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["labelSelector"]["matchLabels"] == labels
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
    assert one(objects, "Service")["spec"]["selector"] == labels
    for job in [o for o in objects if o["kind"] == "Job"]:
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        assert not labels.items() <= job_labels.items(), "a certs Job must not look like a replica"

    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in context
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "webhook": 10250,  # GKE private clusters: the control plane reaches 443 and 10250 only
        "admin": 8444,
    }
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "webhook", "scheme": "HTTPS"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "emptyDir" in volumes["tmp"]
    assert mounts["tls"]["mountPath"] == "/etc/jetstream-pin/tls"
    assert "subPath" not in mounts["tls"]
    assert container["resources"]["limits"]["memory"] == "512Mi"
    ports = {
        p["name"]: (p["port"], p["targetPort"]) for p in one(objects, "Service")["spec"]["ports"]
    }
    assert ports == {"webhook": (443, "webhook"), "admin": (8444, "admin")}


def test_rbac_is_minimal() -> None:
    def rules(objects: list[dict[str, Any]], hooks: bool) -> list[tuple[Any, ...]]:
        found = []
        for o in objects:
            if (
                o["kind"] in ("Role", "ClusterRole")
                and (HOOK in o["metadata"].get("annotations", {})) == hooks
            ):
                for rule in o["rules"]:
                    for resource in rule["resources"]:
                        found.append(
                            (
                                o["kind"],
                                o["metadata"].get("namespace"),
                                rule["apiGroups"][0],
                                resource,
                                tuple(rule.get("resourceNames", ())),
                                tuple(rule["verbs"]),
                            )
                        )
        return sorted(found)

    objects = render()
    webhooks = (
        "ClusterRole",
        None,
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    )
    renewal = [  # the CronJob's: its Secret and its webhook configuration, nothing else
        (*webhooks, (FULLNAME,), ("get", "patch")),
        ("Role", NAMESPACE, "", "secrets", (f"{FULLNAME}-tls",), ("get", "update")),
    ]
    assert rules(objects, hooks=False) == sorted(
        [
            ("Role", "argo", "", "events", (), ("create",)),
            ("Role", "argo", "argoproj.io", "workflows", (), ("get", "patch")),
            ("Role", NAMESPACE, "", "configmaps", (f"{FULLNAME}-overrides",), ("get",)),
            *renewal,
        ]
    )
    labels_only = render("kubernetes.workflowDecisions=false")  # reading needs no patch
    assert ("Role", "argo", "argoproj.io", "workflows", (), ("get",)) in rules(
        labels_only, hooks=False
    )
    assert rules(objects, hooks=True) == sorted(
        [
            (*webhooks, (), ("create",)),
            (*webhooks, (FULLNAME,), ("get", "patch", "update")),
            ("ClusterRole", None, "rbac.authorization.k8s.io", "clusterroles",
             (f"{FULLNAME}-renew",), ("get",)),
            ("Role", NAMESPACE, "", "configmaps", (f"{FULLNAME}-webhook",), ("get",)),
            ("Role", NAMESPACE, "", "secrets", (), ("create",)),
            ("Role", NAMESPACE, "", "secrets", (f"{FULLNAME}-tls",), ("get", "update")),
            ("Role", NAMESPACE, "apps", "deployments", (FULLNAME,), ("get",)),
            ("Role", "argo", "", "pods", (), ("create",)),  # helm test: one dry run
        ]
    )  # fmt: skip
    everywhere = render("webhook.namespaces=null", "kubernetes.events=false")
    assert rules(everywhere, hooks=False) == sorted(
        [
            ("ClusterRole", None, "argoproj.io", "workflows", (), ("get", "patch")),
            ("Role", NAMESPACE, "", "configmaps", (f"{FULLNAME}-overrides",), ("get",)),
            *renewal,
        ]
    )
    bindings = [
        o
        for o in render()
        if o["kind"] == "RoleBinding" and HOOK not in o["metadata"].get("annotations", {})
    ]
    for binding in bindings:
        account = binding["metadata"]["name"]  # each identity is bound only to its own roles
        assert account in (FULLNAME, f"{FULLNAME}-renew", f"{FULLNAME}-overrides")
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": account.removesuffix("-overrides"),
                "namespace": NAMESPACE,
            }
        ]


def test_config_is_what_the_webhook_accepts(tmp_path: Path) -> None:
    objects = render(
        "mode=audit",
        "overrides.entries.my-experiment=latest",
        "serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=jp@p.iam.gserviceaccount.com",
        values={"staticData": {"enrollments": {"my-experiment": "2024-01-01T00:00:00Z"}}},
        tmp=tmp_path,
    )
    config_map = one(objects, "ConfigMap", FULLNAME)
    raw = yaml.safe_load(config_map["data"]["config.yaml"])
    config = parse_config(raw, Path("/etc/jetstream-pin/config"))
    assert config.server.admin_port == 8444
    assert config.mode == "audit"
    assert config.server.cert_file == Path("/etc/jetstream-pin/tls/tls.crt")
    assert config.static == Path("/etc/jetstream-pin/config/static-data.yaml")
    assert "static-data.yaml" in config_map["data"]
    assert config.kubernetes is not None
    assert config.kubernetes.overrides_config_map is not None
    overrides = one(objects, "ConfigMap", config.kubernetes.overrides_config_map.name)
    assert config.kubernetes.overrides_config_map.namespace == NAMESPACE
    assert overrides["data"] == {"my-experiment": "latest"}
    account = one(objects, "ServiceAccount", FULLNAME)
    assert account["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "jp@p.iam.gserviceaccount.com"
    }
    deployment = one(objects, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [
        {"name": "JETSTREAM_PIN_CONFIG", "value": "/etc/jetstream-pin/config/config.yaml"}
    ]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def deadline(*sets: str) -> float:
    config_map = one(render(*sets), "ConfigMap", FULLNAME)
    parsed = parse_config(yaml.safe_load(config_map["data"]["config.yaml"]), Path("/c"))
    return parsed.server.admission_deadline_seconds


def test_the_admission_deadline_follows_the_webhook_timeout() -> None:
    assert deadline() == 8.0
    assert deadline("webhook.timeoutSeconds=7") == 5.6
    assert deadline("server.admissionDeadlineSeconds=3") == 3.0
    done = run_helm(
        "template", RELEASE, str(CHART), "-n", NAMESPACE,
        "--set-json", "server.admissionDeadlineSeconds=9.5",
    )  # fmt: skip
    assert done.returncode != 0
    assert "server.admissionDeadlineSeconds: 9.5 leaves too little margin" in done.stderr
    assert "at most 8" in done.stderr


def test_network_policy(tmp_path: Path) -> None:
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    api_server = {"ipBlock": {"cidr": "172.16.0.0/28"}}
    objects = render(
        values={
            "networkPolicy": {
                "enabled": True,
                "adminFrom": [monitoring],
                "webhookFrom": [api_server],
            }
        },
        tmp=tmp_path,
    )
    validate_all(objects)
    policy = one(objects, "NetworkPolicy")
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": "webhook", "protocol": "TCP"}], "from": [api_server]},
        {"ports": [{"port": "admin", "protocol": "TCP"}], "from": [monitoring]},
    ]
    assert "NetworkPolicy" not in [o["kind"] for o in render()]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
        (
            {"certificates": {"mode": "vault"}},
            "at '/certificates/mode': value must be one of 'selfManaged', 'certManager'",
        ),
        ({"certificates": {"mode": "provided"}}, "at '/certificates/provided/secretName'"),
        ({"webhook": {"timeoutSeconds": 60}}, "at '/webhook/timeoutSeconds'"),
        ({"webhook": {"failurePolicy": "Retry"}}, "at '/webhook/failurePolicy'"),
        ({"mode": "on"}, "at '/mode': value must be one of 'enforce', 'audit'"),
        (
            {"overrides": {"entries": {"my-experiment": "newest"}}},
            "at '/overrides/entries/my-experiment'",
        ),
        ({"config": {"server": {"port": 1}}}, "invalid propertyName 'server'"),
        ({"colour": "blue"}, "additional properties 'colour' not allowed"),
        (
            {"validatingPolicy": {"actions": "block"}},
            "at '/validatingPolicy/actions': value must be one of 'auto', 'deny', 'warn'",
        ),
        ({"validatingPolicy": {"enabled": "yes"}}, "at '/validatingPolicy/enabled'"),
        ({"validatingPolicy": {"mode": "deny"}}, "additional properties 'mode' not allowed"),
    ],
)
def test_bad_values_fail_with_the_schema_message(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(values))
    done = run_helm("template", RELEASE, str(CHART), "-n", NAMESPACE, "--values", str(file))
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr, done.stderr


def test_default_render_objects() -> None:
    """The list of docs/operating.md and the report; a new object must be added there on purpose."""
    names = [
        "ClusterRole/-certs", "ClusterRole/-renew",
        "ClusterRoleBinding/-certs", "ClusterRoleBinding/-renew",
        "ConfigMap/", "ConfigMap/-overrides", "ConfigMap/-webhook",
        "CronJob/-renew", "Deployment/", "Job/-certs", "Job/-register",
        "PodDisruptionBudget/",
        "Role/", "Role/-certs", "Role/-overrides", "Role/-renew",
        "RoleBinding/", "RoleBinding/-certs", "RoleBinding/-overrides", "RoleBinding/-renew",
        "Service/", "ServiceAccount/", "ServiceAccount/-certs", "ServiceAccount/-renew",
        "ValidatingAdmissionPolicy/", "ValidatingAdmissionPolicyBinding/",
    ]  # fmt: skip
    names += ["Pod/-test", "Role/-test", "RoleBinding/-test", "ServiceAccount/-test"]  # helm test
    assert kinds(render()) == sorted(name.replace("/", f"/{FULLNAME}") for name in names)
