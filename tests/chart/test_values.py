"""Values the webhook or the install would refuse are refused by `helm` first, naming the key.

The schema mirrors the webhook's own config types (checked against
`webhook.config` below, so the two cannot drift); cross-field rules that a
schema cannot express are `fail`s in templates/validate.yaml.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.test_chart import CHART, FULLNAME, NAMESPACE, RELEASE, one, render, run_helm
from webhook import config as webhook_config
from webhook.config import BigQuerySource, StaticEnrollmentSource, parse_config

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
STATIC_DATA = {"enrollments": {"my-experiment": "2024-01-01T00:00:00Z"}}


def refused(tmp_path: Path, values: dict[str, Any], *sets: str) -> str:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    args = ["template", RELEASE, str(CHART), "-n", NAMESPACE, "--values", str(file)]
    for item in sets:
        args += ["--set", item]
    done = run_helm(*args)
    assert done.returncode != 0, "helm accepted the values"
    return done.stderr


def history(source: dict[str, Any]) -> dict[str, Any]:
    image = {"repository": "gcr.io/moz-fx-data-experiments/jetstream", "history": source}
    return {"config": {"images": [image]}}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"config": {"colour": "blue"}},
            "at '/config': additional properties 'colour' not allowed",
        ),
        (
            {"config": {"enrollments": {"type": "static", "project": "p"}}},
            "at '/config/enrollments': additional properties 'project' not allowed",
        ),
        (
            {"config": {"enrollments": {"bigquery": {"location": "us"}}}},
            "at '/config/enrollments/bigquery': additional properties 'location' not allowed",
        ),
        (
            history({"type": "gcr", "project": "p"}),
            "at '/config/images/0/history': additional properties 'project' not allowed",
        ),
        (
            history({"type": "artifactregistry", "project": "p", "location": "us"}),
            "at '/config/images/0/history': missing properties 'repository', 'image'",
        ),
        (history({"type": "docker"}), "at '/config/images/0/history/type': value must be one of"),
        (
            {"config": {"cache": {"maxEntry": 3}}},
            "at '/config/cache': additional properties 'maxEntry' not allowed",
        ),
        ({"kubernetes": {"eventQueueSize": 0}}, "at '/kubernetes/eventQueueSize': minimum"),
        (
            {"podDisruptionBudget": {"maxUnavailable": 0}},
            "at '/podDisruptionBudget/maxUnavailable'",
        ),
    ],
)
def test_schema_refuses_what_the_webhook_refuses(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    stderr = refused(tmp_path, values)
    assert "values don't meet the specifications of the schema" in stderr
    assert message in stderr, stderr


def test_config_repo_sources_are_checked_per_type(tmp_path: Path) -> None:
    repo = {"name": "metric-hub", "history": {"type": "git", "repo": "mozilla/metric-hub"}}
    stderr = refused(tmp_path, {"config": {"configRepos": [repo]}})
    assert "at '/config/configRepos/0/history': missing property 'url'" in stderr
    assert "additional properties 'repo' not allowed" in stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"server": {"adminPort": 10250}}, "server.adminPort: must differ from server.port"),
        (
            {"certificates": {"selfManaged": {"days": 60, "renewBeforeDays": 60}}},
            "certificates.selfManaged.days: must be more than renewBeforeDays (60 <= 60)",
        ),
        (
            {"kubernetes": {"timeoutSeconds": 12}},
            "kubernetes.timeoutSeconds: must be less than webhook.timeoutSeconds (12 >= 10)",
        ),
        (
            {"kubernetes": {"timeoutSeconds": 9}},
            "kubernetes.timeoutSeconds: must be less than the admission deadline (9 >= 8 s)",
        ),
        (
            {"podDisruptionBudget": {"minAvailable": 2}},
            "podDisruptionBudget.minAvailable: 2 keeps all 2 replicas up",
        ),
        (
            {"replicaCount": 1, "podDisruptionBudget": {"minAvailable": "50%"}},
            "podDisruptionBudget.minAvailable: 50% keeps all 1 replicas up",
        ),
        (
            {"config": {"enrollments": {"type": "static"}}},
            "staticData: a source of type static reads the static data file",
        ),
    ],
)
def test_cross_field_rules_fail_with_the_key(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    assert message in refused(tmp_path, values)


def webhook_config_of(objects: list[dict[str, Any]]) -> webhook_config.Config:
    raw = yaml.safe_load(one(objects, "ConfigMap", FULLNAME)["data"]["config.yaml"])
    return parse_config(raw, Path("/etc/jetstream-pin/config"))


def test_switching_the_enrollment_source_inherits_nothing() -> None:
    default = webhook_config_of(render())
    assert default.enrollments == BigQuerySource(
        "bigquery", "moz-fx-data-experiments", "mozanalysis"
    )
    switched = render("config.enrollments.type=static", values={"staticData": STATIC_DATA})
    assert webhook_config_of(switched).enrollments == StaticEnrollmentSource("static")


def test_event_queue_size_reaches_the_webhook() -> None:
    config = webhook_config_of(render("kubernetes.eventQueueSize=50"))
    assert config.kubernetes is not None
    assert config.kubernetes.event_queue_size == 50


def test_disruption_budget_never_blocks_a_drain() -> None:
    def budget(*sets: str) -> dict[str, Any] | None:
        found = [o for o in render(*sets) if o["kind"] == "PodDisruptionBudget"]
        return found[0]["spec"] if found else None

    single = budget("replicaCount=1")
    assert single is not None
    assert (single.get("maxUnavailable"), "minAvailable" in single) == (1, False)
    chosen = budget("replicaCount=3", "podDisruptionBudget.minAvailable=2")
    assert chosen is not None
    assert (chosen.get("minAvailable"), "maxUnavailable" in chosen) == (2, False)
    assert budget("podDisruptionBudget.enabled=false") is None


def _yaml_keys(cls: type) -> set[str]:
    return {str(f.metadata.get("key", f.name)) for f in dataclasses.fields(cls)}


SOURCE_TYPES: list[type] = sorted(
    set(
        typing.get_args(webhook_config.ImageSource)
        + typing.get_args(webhook_config.ConfigRepoSource)
    ),
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("cls", SOURCE_TYPES)
def test_schema_knows_exactly_the_keys_of_each_source_type(cls: type) -> None:
    source_type = typing.get_args(typing.get_type_hints(cls)["type"])[0]
    assert set(SCHEMA["definitions"][source_type]["properties"]) == _yaml_keys(cls)


def test_schema_knows_exactly_the_other_config_keys() -> None:
    definitions, config = SCHEMA["definitions"], SCHEMA["properties"]["config"]["properties"]
    assert set(definitions["bigquery"]["properties"]) == _yaml_keys(BigQuerySource) - {"type"}
    assert set(config["cache"]["properties"]) == _yaml_keys(webhook_config.CacheConfig)
    image = config["images"]["items"]["properties"]
    assert set(image) == _yaml_keys(webhook_config.ImageConfig)
    repo = config["configRepos"]["items"]["properties"]
    assert set(repo) == _yaml_keys(webhook_config.ConfigRepoConfig)
    kubernetes = SCHEMA["properties"]["kubernetes"]["properties"]
    chart_written = {"kubeconfig", "context", "overridesConfigMap"}
    assert set(kubernetes) == _yaml_keys(webhook_config.KubernetesConfig) - chart_written
