"""The knobs every production chart has, rendered where they belong (through the real helm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.builders import ROOT
from tests.chart.test_chart import CHART, FULLNAME, one, render, validate_all
from webhook.config import GithubSource, GitSource, OciSource, parse_config

TOKEN = {"name": "github-token", "secret": {"secretName": "github-token"}}
TOKEN_MOUNT = {"name": "github-token", "mountPath": "/var/run/secrets/github", "readOnly": True}


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    [webhook] = pod["containers"]
    return dict(webhook)


def pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pod spec the chart renders: the webhook's, the Jobs', the CronJob's."""
    found = []
    for obj in objects:
        spec = obj.get("spec", {})
        spec = spec.get("jobTemplate", {}).get("spec", spec)
        if "template" in spec:
            found.append(spec["template"]["spec"])
    return found


def test_the_readmes_production_config_deploys() -> None:
    """A GitHub token file from a Secret, a registry auth file, a git mirror volume."""
    repos = [
        {
            "name": "metric-hub",
            "history": {"type": "github", "repo": "mozilla/metric-hub",
                        "tokenFile": "/var/run/secrets/github/token"},
        },
        {
            "name": "private-config",
            "env": "PRIVATE_CONFIG_SHA",
            "history": {"type": "git", "url": "https://github.com/mozilla/private",
                        "mirrorDir": "/var/lib/jetstream-pin/git"},
        },
    ]  # fmt: skip
    image = {
        "repository": "registry.example.com/jetstream",
        "history": {"type": "oci", "authFile": "/etc/jetstream-pin/registry/.dockerconfigjson"},
    }
    values = {
        "config": {"images": [image], "configRepos": repos},
        "extraVolumes": [TOKEN],
        "extraVolumeMounts": [TOKEN_MOUNT],
        "registryAuth": {"secretName": "registry-auth"},
        "gitMirror": {"enabled": True},
    }
    objects = render(values=values)
    validate_all(objects)
    webhook = container(objects)
    mounts = {m["mountPath"]: m["name"] for m in webhook["volumeMounts"]}
    volumes = {
        v["name"]: v for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    raw = yaml.safe_load(one(objects, "ConfigMap", FULLNAME)["data"]["config.yaml"])
    config = parse_config(raw, Path("/etc/jetstream-pin/config"))
    github, git = (repo.history for repo in config.config_repos)
    assert isinstance(github, GithubSource)
    assert isinstance(git, GitSource)
    assert isinstance(config.images[0].history, OciSource)
    for path in (github.token_file, git.mirror_dir, config.images[0].history.auth_file):
        assert path is not None
        folder = next(m for m in mounts if Path(m) in (path, *path.parents))
        assert mounts[folder] in volumes
    assert volumes["registry-auth"]["secret"]["secretName"] == "registry-auth"
    assert "emptyDir" in volumes["git-mirror"]
    assert volumes["github-token"] == TOKEN


def test_extra_env_args_and_proxy() -> None:
    values = {
        "extraEnv": [{"name": "GOOGLE_CLOUD_PROJECT", "value": "p"}],
        "extraEnvFrom": [{"configMapRef": {"name": "settings"}}],
        "extraArgs": ["--config=/etc/other.yaml"],
        "proxy": {"httpsProxy": "http://proxy:3128", "noProxy": ".svc,10.0.0.1"},
    }
    webhook = container(render(values=values))
    env = {e["name"]: e["value"] for e in webhook["env"]}
    assert env == {
        "JETSTREAM_PIN_CONFIG": "/etc/jetstream-pin/config/config.yaml",
        "GOOGLE_CLOUD_PROJECT": "p",
        "HTTPS_PROXY": "http://proxy:3128",
        "https_proxy": "http://proxy:3128",
        "NO_PROXY": ".svc,10.0.0.1",
        "no_proxy": ".svc,10.0.0.1",
    }
    assert webhook["envFrom"] == [{"configMapRef": {"name": "settings"}}]
    assert webhook["args"] == ["--config=/etc/other.yaml"]
    plain = container(render())
    assert "args" not in plain
    assert "envFrom" not in plain


def test_common_labels_on_every_object_and_the_pods() -> None:
    objects = render("commonLabels.team=data-platform")
    for obj in objects:
        assert obj["metadata"]["labels"]["team"] == "data-platform", obj["metadata"]["name"]
    template = one(objects, "Deployment")["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "data-platform"


def test_probes_priority_class_and_zone_spread() -> None:
    objects = render(
        "probes.readiness.periodSeconds=3", "priorityClassName=system-cluster-critical"
    )
    webhook = container(objects)
    assert webhook["readinessProbe"]["periodSeconds"] == 3
    assert webhook["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert webhook["livenessProbe"]["failureThreshold"] == 3
    specs = pods(objects)
    assert len(specs) == 4  # webhook, certificate Job, registration Job, renewal CronJob
    assert {spec.get("priorityClassName") for spec in specs} == {"system-cluster-critical"}
    [spread] = one(objects, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "webhook"


def test_helm_test_targets_a_pinned_namespace() -> None:
    def target(*sets: str) -> list[str]:
        pod = [o for o in render(*sets) if o["kind"] == "Pod"]
        return (
            [a for a in pod[0]["spec"]["containers"][0]["command"] if "namespace" in a]
            if pod
            else []
        )

    assert target() == ["--namespace=argo"]  # the first of webhook.namespaces
    assert target("webhook.namespaces=null", "tests.namespace=team-x") == ["--namespace=team-x"]
    assert target("webhook.namespaces=null") == []  # every namespace, none named: no test


def test_chart_metadata_points_somewhere_real() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["home"].startswith("https://")
    assert chart["sources"]
    assert all(source.startswith("https://") for source in chart["sources"])
    assert chart["icon"].endswith("/charts/jetstream-pin/icon.svg")
    assert (CHART / "icon.svg").read_text().startswith("<svg")


def test_readme_values_table_names_every_value() -> None:
    """Each top-level value and each of its keys appears in the docs' values table."""
    reference = (ROOT / "docs" / "configuration.md").read_text()
    table = reference[reference.index("## Chart values") :]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []
    for name, value in values.items():
        keys = [f"{name}.{key}" for key in value] if isinstance(value, dict) else [name]
        if name in ("config", "staticData", "resources", "image", "overrides", "certificates"):
            keys = [name]  # documented as a whole (or by their own sections)
        for key in keys:
            last = key.rsplit(".", 1)[-1]
            if f"`{key}" not in table and f"`{last}`" not in table:
                missing.append(key)
    assert not missing, f"not in the values table of docs/configuration.md: {missing}"
