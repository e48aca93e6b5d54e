"""Config loading: the example works, and every mistake names its key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.builders import EXAMPLES
from webhook.config import (
    BigQuerySource,
    ConfigError,
    ConfigMapRef,
    GithubSource,
    GitSource,
    KubernetesConfig,
    StaticEnrollmentSource,
    load_config,
    parse_config,
)
from webhook.core.datasets import Dataset

BASE: dict[str, Any] = {
    "images": [
        {"repository": "gcr.io/moz-fx-data-experiments/jetstream", "history": {"type": "static"}}
    ],
    "enrollments": {"type": "static"},
    "configRepos": [{"name": "metric-hub", "history": {"type": "static"}}],
    "static": "data.yaml",
}


def test_example_config_loads_with_paths_relative_to_the_file() -> None:
    config = load_config(EXAMPLES / "config.yaml")
    assert config.mode == "enforce"
    assert config.on_error == "deny"
    assert config.static == EXAMPLES / "static-data.yaml"
    assert config.server.cert_file == EXAMPLES / "../certs/tls.crt"
    assert config.images[0].breaking_tag == "breaking"
    assert config.config_repos[0].env == "METRIC_HUB_SHA"


def test_defaults() -> None:
    config = parse_config(copy.deepcopy(BASE), Path("/etc/jp"))
    assert (config.mode, config.on_error, config.server.port) == ("enforce", "deny", 8443)
    assert config.server.admin_port == 8444
    assert config.static == Path("/etc/jp/data.yaml")
    assert isinstance(config.enrollments, StaticEnrollmentSource)
    assert config.pinned_commands == (
        "run",
        "ensure-enrollments",
        "export-statistics-to-json",
        "export-metadata-to-json",
    )
    assert config.enrollment_args == ()
    policy = config.enrollments.dataset_policy()
    assert policy.allowed == {Dataset("moz-fx-data-experiments", "mozanalysis")}


def test_production_shapes_parse() -> None:
    data = copy.deepcopy(BASE)
    data["enrollments"] = {
        "type": "bigquery", "project": "my-project", "dataset": "d", "credentials": "anonymous",
        "endpoint": "http://127.0.0.1:9", "timeoutSeconds": 1.5,
    }  # fmt: skip
    data["configRepos"][0]["history"] = {
        "type": "github",
        "repo": "mozilla/metric-hub",
        "tokenFile": "/t",
    }
    config = parse_config(data, Path("/"))
    assert config.enrollments == BigQuerySource(
        "bigquery", "my-project", "d", "anonymous", "http://127.0.0.1:9", 1.5
    )
    history = config.config_repos[0].history
    assert isinstance(history, GithubSource)
    assert history.token_file == Path("/t")


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("mode", "enforcing", "mode: must be one of enforce, audit; got 'enforcing'"),
        ("onError", "ignore", "onError: must be one of deny, allow"),
        ("colour", "blue", "colour: unknown key"),
        ("images", {}, "images: must be a list"),
        ("images", [], "images: at least one image repository is required"),
        ("images.0.history.type", "dockerhub", "images[0].history.type: must be one of"),
        ("images.0.history.extra", 1, "images[0].history.extra: unknown key"),
        ("images.0.repository", _DELETE, "images[0].repository: required key is missing"),
        ("images.0.repository", "gcr.io/x/jetstream:latest", "without tag or digest"),
        ("images.0.breakingTag", 3, "images[0].breakingTag: must be a non-empty string"),
        ("enrollments", "static", "enrollments: must be a mapping"),
        ("enrollments", {"type": "bigquery"}, "enrollments.project: required key is missing"),
        ("server", {"port": "8443"}, "server.port: must be an integer"),
        ("server", {"port": True}, "server.port: must be an integer"),
        ("server", {"port": 0}, "server.port: must be positive"),
        ("server", {"port": 70000}, "server.port: must be at most 65535"),
        ("server", {"adminPort": -1}, "server.adminPort: must be positive"),
        ("server", {"adminPort": 65536}, "server.adminPort: must be at most 65535"),
        ("server", {"adminPort": "8444"}, "server.adminPort: must be an integer"),
        ("server", {"port": 9000, "adminPort": 9000}, "server.adminPort: must differ"),
        ("server", {"certFile": 5}, "server.certFile: must be a file path"),
        ("configRepos.0.name", "Metric Hub", "configRepos[0].name"),
        ("configRepos.0.env", "1BAD", "configRepos[0].env"),
        ("static", _DELETE, "static: a source of type 'static' needs the data file"),
        ("podLimits", {"containers": 0}, "podLimits.containers: must be positive"),
        ("podLimits", {"argvChars": -1}, "podLimits.argvChars: must be positive"),
        ("podLimits", {"maxArgs": 5}, "podLimits.maxArgs: unknown key"),
        ("kubernetes", "in-cluster", "kubernetes: must be a mapping"),
        ("kubernetes", {"events": "yes"}, "kubernetes.events: must be true or false"),
        ("kubernetes", {"cacheSeconds": 0}, "kubernetes.cacheSeconds: must be a positive"),
        ("kubernetes", {"eventQueueSize": 0}, "kubernetes.eventQueueSize: must be positive"),
        ("kubernetes", {"watch": True}, "kubernetes.watch: unknown key"),
        (
            "kubernetes",
            {"overridesConfigMap": {"name": "o"}},
            "kubernetes.overridesConfigMap.namespace: required key is missing",
        ),
        (
            "kubernetes",
            {"overridesConfigMap": {"name": "Bad_Name", "namespace": "x"}},
            "kubernetes.overridesConfigMap.name: 'Bad_Name' is not a valid ConfigMap name",
        ),
        (
            "kubernetes",
            {"overridesConfigMap": {"name": "o", "namespace": "a.b"}},
            "kubernetes.overridesConfigMap.namespace: 'a.b' is not a valid namespace",
        ),
    ],
)
def test_errors_name_the_key(dotted: str, value: Any, message: str) -> None:
    data = copy.deepcopy(BASE)
    _set(data, dotted, value)
    with pytest.raises(ConfigError) as caught:
        parse_config(data, Path("/"), source="my.yaml")
    assert str(caught.value).startswith("config my.yaml: ")
    assert message in str(caught.value)


def test_kubernetes_section() -> None:
    data = copy.deepcopy(BASE)
    assert parse_config(data, Path("/etc/jp")).kubernetes is None
    data["kubernetes"] = {}
    assert parse_config(data, Path("/etc/jp")).kubernetes == KubernetesConfig()
    data["kubernetes"] = {
        "kubeconfig": "kube.yaml", "context": "test", "timeoutSeconds": 0.5, "cacheSeconds": 3,
        "workflowLabels": False, "events": False, "eventQueueSize": 10,
        "overridesConfigMap": {"name": "jetstream-pin-overrides", "namespace": "jetstream-pin"},
    }  # fmt: skip
    kube = parse_config(data, Path("/etc/jp")).kubernetes
    assert kube == KubernetesConfig(
        Path("/etc/jp/kube.yaml"), "test", 0.5, 3.0, False,
        ConfigMapRef("jetstream-pin-overrides", "jetstream-pin"), False, 10,
    )  # fmt: skip


def test_timeout_must_be_positive() -> None:
    data = copy.deepcopy(BASE)
    data["enrollments"] = {
        "type": "bigquery",
        "project": "my-project",
        "dataset": "d",
        "timeoutSeconds": 0,
    }
    with pytest.raises(ConfigError, match=r"enrollments\.timeoutSeconds: must be a positive"):
        parse_config(data, Path("/"))


def test_duplicate_config_repo_env() -> None:
    data = copy.deepcopy(BASE)
    data["configRepos"].append({"name": "other", "history": {"type": "static"}})
    with pytest.raises(ConfigError, match="name and env must be unique"):
        parse_config(data, Path("/"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mode: [unclosed", "not valid YAML"),
        ("- a list", "top level: must be a mapping"),
        ("", "top level: must be a mapping, got nothing"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    monkeypatch.delenv("JETSTREAM_PIN_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="JETSTREAM_PIN_CONFIG"):
        load_config(None)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    monkeypatch.setenv("JETSTREAM_PIN_CONFIG", str(path))
    assert load_config(None).static == tmp_path / "data.yaml"


def _with_history(history: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["configRepos"][0]["history"] = history
    return data


def test_git_and_github_keys_parse() -> None:
    git = parse_config(
        _with_history(
            {
                "type": "git",
                "url": "https://github.com/mozilla/metric-hub",
                "mirrorDir": "mirrors",
                "fetchIntervalSeconds": 30,
                "fetchTimeoutSeconds": 90,
                "endpoint": "https://git.internal/metric-hub.git",
            }
        ),
        Path("/etc/jp"),
    ).config_repos[0]
    assert git.history == GitSource(
        "git",
        "https://github.com/mozilla/metric-hub",
        "main",
        endpoint="https://git.internal/metric-hub.git",
        mirror_dir=Path("/etc/jp/mirrors"),
        fetch_interval_seconds=30.0,
        fetch_timeout_seconds=90.0,
    )
    github = parse_config(
        _with_history({"type": "github", "repo": "mozilla/metric-hub", "tokenEnv": "GH_TOKEN"}),
        Path("/"),
    ).config_repos[0]
    assert github.history == GithubSource("github", "mozilla/metric-hub", token_env="GH_TOKEN")


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/mozilla/metric-hub",
        "https://x-access-token:abc@github.com/mozilla/metric-hub.git",
        "ssh://git@github.com/mozilla/metric-hub.git",
        "git@github.com:mozilla/metric-hub.git",
        "file:///srv/git/metric-hub",
        "/srv/git/metric-hub",
        "http://127.0.0.1:8080/metric-hub.git",
        "http://user:pw@localhost/metric-hub.git",
    ],
)
def test_git_urls_accepted(url: str) -> None:
    parse_config(_with_history({"type": "git", "url": url}), Path("/"))


GITHUB = {"type": "github", "repo": "mozilla/metric-hub"}
GIT = {"type": "git", "url": "https://github.com/mozilla/metric-hub"}


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ({**GITHUB, "repo": "metric-hub"}, "history.repo: 'metric-hub' must be 'owner/name'"),
        ({**GITHUB, "repo": "mozilla/.."}, "must be 'owner/name'"),
        ({**GITHUB, "branch": "-main"}, "history.branch: '-main' is not a valid branch name"),
        ({**GITHUB, "branch": "a..b"}, "not a valid branch name"),
        ({**GITHUB, "branch": "main.lock"}, "not a valid branch name"),
        ({**GITHUB, "branch": 5}, "history.branch: must be a non-empty string"),
        ({**GITHUB, "endpoint": "ftp://x"}, "history.endpoint: must be an http(s) URL"),
        ({**GITHUB, "tokenFile": "t", "tokenEnv": "T"}, "give tokenFile or tokenEnv, not both"),
        ({**GITHUB, "tokenEnv": "1X"}, "history.tokenEnv: '1X' is not a variable name"),
        (
            {**GITHUB, "tokenEnv": "T", "endpoint": "http://ghe.example.com/api/v3"},
            "a token is only sent over https (or to a loopback address)",
        ),
        ({**GITHUB, "timeoutSeconds": -1}, "history.timeoutSeconds: must be a positive number"),
        ({**GITHUB, "token": "x"}, "history.token: unknown key"),
        ({"type": "git"}, "history.url: required key is missing"),
        ({**GIT, "url": "relative/path"}, "history.url: a local path must be absolute"),
        ({**GIT, "url": "-uhack"}, "must not start with '-'"),
        ({**GIT, "url": "ext::sh -c touch% /tmp/x"}, "history.url: must not start with '-' or"),
        ({**GIT, "url": "fd::17"}, "remote helpers ('transport::address') are not allowed"),
        ({**GIT, "url": "ftp://example.com/x.git"}, "history.url: scheme must be one of"),
        ({**GIT, "url": "http://u:p@example.com/x"}, "only allowed over https"),
        ({**GIT, "endpoint": "relative"}, "history.endpoint: a local path must be absolute"),
        ({**GIT, "fetchIntervalSeconds": 0}, "history.fetchIntervalSeconds: must be a positive"),
        ({**GIT, "mirrorDir": 3}, "history.mirrorDir: must be a file path"),
    ],
)
def test_config_repo_source_errors_name_the_key(history: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_with_history(history), Path("/"))
    assert str(caught.value).startswith("config <config>: configRepos[0].")
    assert message in str(caught.value)


def test_config_errors_never_echo_url_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_with_history({**GIT, "url": "http://robot:s3cret@example.com/x"}), Path("/"))
    assert "s3cret" not in str(caught.value)
