"""One typed configuration, read from YAML and checked completely at start.

A webhook that starts with a typo in its config fails later, on the critical
path of every pod. So every key is known, every type is checked, and errors
name the key (`images[0].history.type`) and the file. Relative paths are taken
relative to the config file's directory, like kubeconfig does.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from webhook.core.commands import DEFAULT_PINNED_COMMANDS
from webhook.core.datasets import Dataset, DatasetPolicy
from webhook.core.times import NotATime, parse_rfc3339

CONFIG_ENV = "JETSTREAM_PIN_CONFIG"
# The share of server.maxBodyBytesInFlight one large request body may hold
# (webhook.serving.bounds): so a few huge bodies cannot hold up ordinary reviews.
LARGE_SHARE = 0.75
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REPO_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/(?!\.\.?$)[A-Za-z0-9._-]{1,100}")
_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
_HTTP_URL = re.compile(r"https?://[^/?#\s]+(/\S*)?$")
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"([^@/:\s]+@)?[^/:\s]{2,}:")
_GIT_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
# BigQuery's ids: a project (optionally domain-scoped, `example.com:p`) and a dataset.
_PROJECT = re.compile(r"([a-z][-a-z0-9.]{0,62}:)?[a-z][-a-z0-9]{4,28}[a-z0-9]")
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")
_COMMAND = re.compile(r"[a-z][a-z0-9_-]{0,63}")
MAX_PORT = 65535
MAX_DEADLINE = 29.0


class ConfigError(ValueError):
    pass


def key(yaml_key: str, **kwargs: Any) -> Any:
    """A field spelled differently in YAML (camelCase) than in Python."""
    return field(metadata={"key": yaml_key}, **kwargs)


@dataclass(frozen=True)
class ServerConfig:
    port: int = 8443
    admin_port: int = key("adminPort", default=8444)  # status page (and metrics): never admission
    host: str = "0.0.0.0"  # noqa: S104 - a pod must listen on its pod IP
    cert_file: Path = key("certFile", default=Path("certs/tls.crt"))
    key_file: Path = key("keyFile", default=Path("certs/tls.key"))
    workers: int = 1  # caches are per process: one worker makes one backend call per key
    threads: int = 16
    max_request_bytes: int = key("maxRequestBytes", default=6 * 1024 * 1024)
    drain_seconds: float = key("drainSeconds", default=5.0)
    # One admission's wall-clock budget for all its lookups; under the webhook's timeoutSeconds.
    admission_deadline_seconds: float = key("admissionDeadlineSeconds", default=8.0)
    # The front end's bounds on clients (see webhook.serving.front).
    handshake_timeout_seconds: float = key("handshakeTimeoutSeconds", default=5.0)
    header_timeout_seconds: float = key("headerTimeoutSeconds", default=5.0)
    body_timeout_seconds: float = key("bodyTimeoutSeconds", default=10.0)
    idle_timeout_seconds: float = key("idleTimeoutSeconds", default=60.0)
    max_connections: int = key("maxConnections", default=1024)  # per worker, admission port
    admin_max_connections: int = key("adminMaxConnections", default=64)  # per worker, admin port
    # Bytes of request bodies one worker holds at once (webhook.serving.bounds.BodyBudget).
    max_body_bytes_in_flight: int = key("maxBodyBytesInFlight", default=32 * 1024 * 1024)
    # A review with a larger body is decided in an admission thread, never on the event loop.
    loop_review_max_bytes: int = key("loopReviewMaxBytes", default=64 * 1024)


@dataclass(frozen=True)
class StaticSource:
    type: Literal["static"]


@dataclass(frozen=True)
class BigQuerySource:
    type: Literal["bigquery"]
    project: str  # of the enrollments table when a pod names none (and billed for the calls)
    dataset: str
    credentials: Literal["default", "anonymous"] = "default"
    endpoint: str | None = None
    timeout_seconds: float = key("timeoutSeconds", default=2.0)
    # `project.dataset` a pod may name with --project_id/--dataset_id; () : the one above.
    allowed_datasets: tuple[str, ...] = key("allowedDatasets", default=())

    def dataset_policy(self) -> DatasetPolicy:
        return _dataset_policy(self.project, self.dataset, self.allowed_datasets)


@dataclass(frozen=True)
class StaticEnrollmentSource:
    """The data file's enrollments, answered for the configured dataset and every allowed one."""

    type: Literal["static"]
    project: str = "moz-fx-data-experiments"
    dataset: str = "mozanalysis"
    allowed_datasets: tuple[str, ...] = key("allowedDatasets", default=())

    def dataset_policy(self) -> DatasetPolicy:
        return _dataset_policy(self.project, self.dataset, self.allowed_datasets)


def _dataset_policy(project: str, dataset: str, allowed: tuple[str, ...]) -> DatasetPolicy:
    return DatasetPolicy.of(Dataset(project, dataset), (Dataset.parse(a) for a in allowed))


@dataclass(frozen=True)
class ArtifactRegistrySource:
    type: Literal["artifactregistry"]
    project: str
    location: str
    repository: str
    image: str
    credentials: Literal["default", "anonymous"] = "default"
    endpoint: str | None = None
    timeout_seconds: float = key("timeoutSeconds", default=3.0)
    # Registry v2 host of the repository, read only for a multi-arch index's children.
    docker_endpoint: str | None = key("dockerEndpoint", default=None)


@dataclass(frozen=True)
class GcrSource:
    type: Literal["gcr"]
    credentials: Literal["default", "anonymous"] = "default"
    endpoint: str | None = None
    timeout_seconds: float = key("timeoutSeconds", default=3.0)


@dataclass(frozen=True)
class OciSource:
    type: Literal["oci"]
    name: str | None = None
    endpoint: str | None = None
    timeout_seconds: float = key("timeoutSeconds", default=3.0)
    # A Docker config file (a mounted kubernetes.io/dockerconfigjson Secret).
    auth_file: Path | None = key("authFile", default=None)
    # Token realms on other hosts that may receive those credentials.
    credential_hosts: tuple[str, ...] = key("credentialHosts", default=())
    # PEM CA certificates that sign a private registry's certificate (only this source
    # trusts them; REQUESTS_CA_BUNDLE would replace every client's trust).
    ca_file: Path | None = key("caFile", default=None)


@dataclass(frozen=True)
class GithubSource:
    type: Literal["github"]
    repo: str
    branch: str = "main"
    token_file: Path | None = key("tokenFile", default=None)
    token_env: str | None = key("tokenEnv", default=None)
    endpoint: str | None = None
    timeout_seconds: float = key("timeoutSeconds", default=2.0)


@dataclass(frozen=True)
class GitSource:
    type: Literal["git"]
    url: str
    branch: str = "main"
    endpoint: str | None = None  # fetch from here instead of `url` (an internal mirror)
    mirror_dir: Path | None = key("mirrorDir", default=None)
    fetch_interval_seconds: float = key("fetchIntervalSeconds", default=60.0)
    fetch_timeout_seconds: float = key("fetchTimeoutSeconds", default=120.0)
    timeout_seconds: float = key("timeoutSeconds", default=5.0)


@dataclass(frozen=True)
class ConfigMapRef:
    name: str
    namespace: str


@dataclass(frozen=True)
class KubernetesConfig:
    """The Kubernetes API: Workflow labels, the overrides ConfigMap, Events.

    No `kubeconfig`: the pod's service account (in-cluster); a kubeconfig file
    is for tests and for running outside the cluster.
    """

    kubeconfig: Path | None = None
    context: str | None = None
    timeout_seconds: float = key("timeoutSeconds", default=1.0)
    cache_seconds: float = key("cacheSeconds", default=10.0)
    workflow_labels: bool = key("workflowLabels", default=True)
    overrides_config_map: ConfigMapRef | None = key("overridesConfigMap", default=None)
    events: bool = True
    event_queue_size: int = key("eventQueueSize", default=1000)
    # Record each experiment's decision on its Workflow (needs `patch` on workflows).
    workflow_decisions: bool = key("workflowDecisions", default=True)
    # How long a Workflow's first decision waits for others to share its write.
    decision_write_delay_seconds: float = key("decisionWriteDelaySeconds", default=1.0)


EnrollmentSource = StaticEnrollmentSource | BigQuerySource
ImageSource = StaticSource | ArtifactRegistrySource | GcrSource | OciSource
ConfigRepoSource = StaticSource | GithubSource | GitSource


@dataclass(frozen=True)
class ImageConfig:
    repository: str
    history: ImageSource
    breaking_tag: str | None = key("breakingTag", default="breaking")


@dataclass(frozen=True)
class ConfigRepoConfig:
    name: str
    history: ConfigRepoSource
    env: str = "METRIC_HUB_SHA"


@dataclass(frozen=True)
class CacheConfig:
    """How long answers are trusted; why: docs/configuration.md, "Timeouts and caches"."""

    image_refresh_seconds: float = key("imageRefreshSeconds", default=300.0)
    image_max_stale_seconds: float = key("imageMaxStaleSeconds", default=3600.0)
    enrollment_ttl_seconds: float = key("enrollmentTtlSeconds", default=3600.0)
    not_enrolled_ttl_seconds: float = key("notEnrolledTtlSeconds", default=60.0)
    enrollment_list_refresh_seconds: float = key("enrollmentListRefreshSeconds", default=300.0)
    prefetch_enrollments: bool = key("prefetchEnrollments", default=True)
    config_ttl_seconds: float = key("configTtlSeconds", default=3600.0)
    config_tip_ttl_seconds: float = key("configTipTtlSeconds", default=60.0)
    max_entries: int = key("maxEntries", default=20000)


@dataclass(frozen=True)
class PodLimitsConfig:
    """How much of a pod is read (webhook.core.pods.PodLimits); beyond it the pod is refused."""

    containers: int = 256
    args: int = 4096
    argv_chars: int = key("argvChars", default=256 * 1024)


@dataclass(frozen=True)
class EnrollmentArgsRule:
    """Arguments added to some subcommands of experiments enrolled at or before a moment."""

    commands: tuple[str, ...]
    enrolled_at_or_before: datetime = key("enrolledAtOrBefore")
    add: tuple[str, ...] = key("add")
    unless_present: tuple[str, ...] = key("unlessPresent", default=())


@dataclass(frozen=True)
class Config:
    images: tuple[ImageConfig, ...]
    enrollments: EnrollmentSource
    mode: Literal["enforce", "audit"] = "enforce"
    on_error: Literal["deny", "allow"] = key("onError", default="deny")
    server: ServerConfig = ServerConfig()
    config_repos: tuple[ConfigRepoConfig, ...] = key("configRepos", default=())
    static: Path | None = None
    cache: CacheConfig = CacheConfig()
    pod_limits: PodLimitsConfig = key("podLimits", default=PodLimitsConfig())
    # Jetstream subcommands whose pods are pinned; others pass through unpinned.
    pinned_commands: tuple[str, ...] = key("pinnedCommands", default=DEFAULT_PINNED_COMMANDS)
    enrollment_args: tuple[EnrollmentArgsRule, ...] = key("enrollmentArgs", default=())
    kubernetes: KubernetesConfig | None = None

    def uses_static(self) -> bool:
        histories = [i.history for i in self.images] + [r.history for r in self.config_repos]
        sources = [self.enrollments, *histories]
        return any(isinstance(s, StaticSource | StaticEnrollmentSource) for s in sources)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config from `path`, else from $JETSTREAM_PIN_CONFIG."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    if not chosen:
        raise ConfigError(f"no config file given: pass --config FILE or set {CONFIG_ENV}")
    file = Path(chosen)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"config {file}: cannot read: {err.strerror or err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"config {file}: not valid YAML: {err}") from err
    return parse_config(data, base_dir=file.resolve().parent, source=str(file))


def parse_config(data: Any, base_dir: Path, source: str = "<config>") -> Config:
    try:
        config: Config = _build(Config, data, "", base_dir)
        _check(config)
    except ConfigError as err:
        raise ConfigError(f"config {source}: {err}") from None
    return config


def _check(config: Config) -> None:
    if not config.images:
        raise ConfigError("images: at least one image repository is required")
    seen: set[str] = set()
    for index, image in enumerate(config.images):
        if image.repository in seen:
            raise ConfigError(f"images[{index}].repository: {image.repository} is listed twice")
        seen.add(image.repository)
        if "@" in image.repository or ":" in image.repository.rpartition("/")[2]:
            raise ConfigError(
                f"images[{index}].repository: give the repository without tag or digest"
            )
    names: set[str] = set()
    envs: set[str] = set()
    for index, repo in enumerate(config.config_repos):
        if not _REPO_NAME.fullmatch(repo.name):
            raise ConfigError(
                f"configRepos[{index}].name: {repo.name!r} must be lowercase letters, digits "
                "and '-' (it becomes the annotation jetstream/<name>-sha)"
            )
        if not _ENV_NAME.fullmatch(repo.env):
            raise ConfigError(f"configRepos[{index}].env: {repo.env!r} is not a variable name")
        if repo.name in names or repo.env in envs:
            raise ConfigError(f"configRepos[{index}]: name and env must be unique")
        names.add(repo.name)
        envs.add(repo.env)
        _check_repo_history(repo.history, f"configRepos[{index}].history")
    if config.uses_static() and config.static is None:
        raise ConfigError("static: a source of type 'static' needs the data file set here")
    positive: tuple[str, ...] = ("port", "admin_port", "workers", "threads", "max_request_bytes")
    positive += ("max_connections", "admin_max_connections", "max_body_bytes_in_flight")
    positive += ("loop_review_max_bytes",)
    positive += tuple(f"{p}_timeout_seconds" for p in ("handshake", "header", "body", "idle"))
    for name in positive:
        if getattr(config.server, name) <= 0:
            raise ConfigError(f"server.{_yaml_key(ServerConfig, name)}: must be positive")
    for name in ("port", "admin_port"):
        if getattr(config.server, name) > MAX_PORT:
            raise ConfigError(f"server.{_yaml_key(ServerConfig, name)}: must be at most {MAX_PORT}")
    if not 0 < config.server.admission_deadline_seconds <= MAX_DEADLINE:
        raise ConfigError(
            f"server.admissionDeadlineSeconds: must be above 0 and at most {MAX_DEADLINE} "
            "(the API server's limit for a webhook is 30 s; leave a margin under timeoutSeconds)"
        )
    if config.server.max_request_bytes > LARGE_SHARE * config.server.max_body_bytes_in_flight:
        raise ConfigError(
            f"server.maxBodyBytesInFlight: must be at least {1 / LARGE_SHARE:.3g} times "
            "server.maxRequestBytes (a quarter is kept for ordinary reviews)"
        )
    if config.server.admin_port == config.server.port:
        raise ConfigError(
            "server.adminPort: must differ from server.port (the admission path stays separate)"
        )
    for name in ("containers", "args", "argv_chars"):
        if getattr(config.pod_limits, name) <= 0:
            raise ConfigError(f"podLimits.{_yaml_key(PodLimitsConfig, name)}: must be positive")
    if config.cache.max_entries <= 0:
        raise ConfigError("cache.maxEntries: must be positive")
    _check_datasets(config.enrollments)
    _check_commands(config)
    if config.kubernetes is not None:
        _check_kubernetes(config.kubernetes)


def _check_commands(config: Config) -> None:
    if not config.pinned_commands:
        raise ConfigError("pinnedCommands: list at least one Jetstream subcommand")
    for index, command in enumerate(config.pinned_commands):
        if not _COMMAND.fullmatch(command):
            raise ConfigError(f"pinnedCommands[{index}]: {command!r} is not a subcommand name")
    for index, rule in enumerate(config.enrollment_args):
        where = f"enrollmentArgs[{index}]"
        if not rule.commands or not rule.add:
            raise ConfigError(f"{where}: give at least one of commands and of add")
        for name, values in (("add", rule.add), ("unlessPresent", rule.unless_present)):
            for position, arg in enumerate(values):
                if not arg or any(c.isspace() or ord(c) < 32 for c in arg):
                    raise ConfigError(
                        f"{where}.{name}[{position}]: {arg!r} must be one argument "
                        "without spaces or control characters"
                    )


def _check_datasets(source: EnrollmentSource) -> None:
    """Project and dataset ids as BigQuery spells them, so a typo fails the start."""
    if not _PROJECT.fullmatch(source.project):
        raise ConfigError(f"enrollments.project: {source.project!r} is not a BigQuery project id")
    if not _DATASET.fullmatch(source.dataset):
        raise ConfigError(f"enrollments.dataset: {source.dataset!r} is not a BigQuery dataset id")
    for index, text in enumerate(source.allowed_datasets):
        project, dot, dataset = text.rpartition(".")
        if not dot or not _PROJECT.fullmatch(project) or not _DATASET.fullmatch(dataset):
            raise ConfigError(
                f"enrollments.allowedDatasets[{index}]: {text!r} must be 'project.dataset'"
            )


def _check_kubernetes(kube: KubernetesConfig) -> None:
    if kube.event_queue_size <= 0:
        raise ConfigError("kubernetes.eventQueueSize: must be positive")
    ref = kube.overrides_config_map
    if ref is not None:
        where = "kubernetes.overridesConfigMap"
        if not _DNS_SUBDOMAIN.fullmatch(ref.name):
            raise ConfigError(f"{where}.name: {ref.name!r} is not a valid ConfigMap name")
        if not _DNS_LABEL.fullmatch(ref.namespace):
            raise ConfigError(f"{where}.namespace: {ref.namespace!r} is not a valid namespace")


def _check_repo_history(source: ConfigRepoSource, where: str) -> None:
    """The GitHub and git keys that types alone cannot check."""
    if isinstance(source, StaticSource):
        return
    if not is_branch_name(source.branch):
        raise ConfigError(f"{where}.branch: {source.branch!r} is not a valid branch name")
    if isinstance(source, GithubSource):
        if source.endpoint is not None and not _HTTP_URL.match(source.endpoint):
            raise ConfigError(f"{where}.endpoint: must be an http(s) URL")
        if not _GITHUB_REPO.fullmatch(source.repo):
            raise ConfigError(f"{where}.repo: {source.repo!r} must be 'owner/name'")
        if source.token_file is not None and source.token_env is not None:
            raise ConfigError(f"{where}: give tokenFile or tokenEnv, not both")
        if source.token_env is not None and not _ENV_NAME.fullmatch(source.token_env):
            raise ConfigError(f"{where}.tokenEnv: {source.token_env!r} is not a variable name")
        has_token = source.token_file is not None or source.token_env is not None
        if has_token and source.endpoint and not is_safe_for_credentials(source.endpoint):
            raise ConfigError(
                f"{where}.endpoint: a token is only sent over https (or to a loopback address)"
            )
        return
    for name, url in (("url", source.url), ("endpoint", source.endpoint)):
        problem = git_url_problem(url) if url is not None else None
        if problem:
            raise ConfigError(f"{where}.{name}: {problem}")


def is_branch_name(name: str) -> bool:
    """A conservative subset of git's ref-name rules (no option-like or odd names)."""
    return bool(_BRANCH.fullmatch(name)) and ".." not in name and not name.endswith((".lock", "."))


def is_safe_for_credentials(url: str) -> bool:
    """https anywhere; plain http only to this machine (tests, a local proxy)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def git_url_problem(url: str) -> str | None:
    """Why `url` is not something git should fetch from, or None when it is fine."""
    if url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        return "must not start with '-' or contain spaces or control characters"
    if "::" in url.split("/", 1)[0]:
        return "remote helpers ('transport::address') are not allowed"
    scheme = _URL_SCHEME.match(url)
    if scheme:
        if scheme.group(1).lower() not in _GIT_SCHEMES:
            return f"scheme must be one of {', '.join(sorted(_GIT_SCHEMES))}"
        parts = urlsplit(url)
        if parts.password and not is_safe_for_credentials(url):
            return "credentials in the URL are only allowed over https"
        return None
    if _SCP_LIKE.match(url):
        return None  # user@host:path, git's ssh shorthand
    if not Path(url).is_absolute():
        return "a local path must be absolute"
    return None


def _yaml_key(cls: type, name: str) -> str:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return str(f.metadata.get("key", name))
    return name


def _build(cls: type, data: Any, path: str, base_dir: Path) -> Any:
    where = path or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {str(f.metadata.get("key", f.name)): f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"{_join(path, str(unknown[0]))}: unknown key (known keys: {', '.join(fields)})"
        )
    values: dict[str, Any] = {}
    for yaml_name, f in fields.items():
        child = _join(path, yaml_name)
        if yaml_name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{child}: required key is missing")
            continue
        values[f.name] = _value(hints[f.name], data[yaml_name], child, base_dir)
    return cls(**values)


def _value(hint: Any, value: Any, path: str, base_dir: Path) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        if len(options) > 1 and all(dataclasses.is_dataclass(a) for a in options):
            return _variant(options, value, path, base_dir)
        return _value(options[0], value, path, base_dir)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(str(a) for a in args)
            raise ConfigError(f"{path}: must be one of {allowed}; got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: must be a list, got {_kind(value)}")
        return tuple(_value(args[0], v, f"{path}[{i}]", base_dir) for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, path, base_dir)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: must be a file path, got {_kind(value)}")
        return base_dir / value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: must be true or false, got {_kind(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{path}: must be a positive number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: must be an integer, got {_kind(value)}")
        return value
    if hint is datetime:
        return _moment(value, path)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: must be a non-empty string, got {_kind(value)}")
        return value
    raise ConfigError(f"{path}: unsupported setting type {hint!r}")  # pragma: no cover


def _moment(value: Any, path: str) -> datetime:
    """An RFC 3339 time with a zone (YAML may already have read it as a datetime)."""
    moment = value
    if isinstance(value, str):
        try:
            moment = parse_rfc3339(value)
        except NotATime:
            moment = None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ConfigError(f"{path}: must be an RFC 3339 time with a zone, got {_kind(value)}")
    return moment.astimezone(UTC)


def _variant(options: list[Any], value: Any, path: str, base_dir: Path) -> Any:
    by_type = {typing.get_args(typing.get_type_hints(o)["type"])[0]: o for o in options}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: must be a mapping, got {_kind(value)}")
    chosen = value.get("type")
    if chosen not in by_type:
        raise ConfigError(f"{path}.type: must be one of {', '.join(by_type)}; got {chosen!r}")
    return _build(by_type[chosen], value, path, base_dir)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]
