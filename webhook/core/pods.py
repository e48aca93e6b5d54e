"""Reading a pod: its experiment slug, its target containers, its existing pins.

Pods reach the webhook as untyped JSON. Everything here checks the shape it
relies on and names the offending path, so a hostile or broken object is
refused with a clear message instead of an exception deep in the resolver.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, TypeVar

from webhook.core.argv import Invocation, read_invocation
from webhook.core.pinning import Refusal, describe_value

LABEL_SLUG = "jetstream/experiment-slug"
LABEL_PIN = "jetstream/pin"
LABEL_WORKFLOW = "workflows.argoproj.io/workflow"
ANNOTATION_PIN_DIGEST = "jetstream/pin-digest"

_SPACE = re.compile(r"\s")
_MEMO_IMAGE_CHARS = 512  # longer references are parsed every time, not remembered
R = TypeVar("R")
CONTAINER_FIELDS = ("initContainers", "containers")
_DOCKER_HUB = "docker.io"


class MalformedPod(Refusal):
    """The object is not a Pod this webhook can read; retrying will not help."""


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None

    @property
    def key(self) -> str:
        return normalize_repository(self.repository)

    def pinned_to(self, digest: str) -> str:
        return f"{self.repository}@{digest}"


@dataclass(frozen=True)
class PodLimits:
    """How much of a pod the webhook examines; beyond it the pod is refused (400).

    Mutating webhooks run before the API server validates a pod, so anyone
    who may create a pod in scope can send one with 20,000 containers or a
    million arguments. These bounds keep reading a pod cheap whatever it holds;
    a Jetstream pod uses a few containers and a few dozen arguments.
    """

    containers: int = 256  # initContainers + containers
    args: int = 4096  # command + args entries of the target containers together
    argv_chars: int = 256 * 1024  # characters in those entries


DEFAULT_LIMITS = PodLimits()


NO_INVOCATION = Invocation(None, (), None, None, in_shell=False)


@dataclass(frozen=True)
class Target:
    """A container running one of the configured images, found by name and image."""

    field: str
    index: int
    name: str
    image: str
    ref: ImageRef
    repository: str
    invocation: Invocation = NO_INVOCATION

    @property
    def pinned(self) -> bool:
        return self.ref.digest is not None

    @property
    def path(self) -> str:
        return f"spec.{self.field}[{self.index}]"


@dataclass(frozen=True)
class Experiment:
    """One experiment a pod names, and the enrollments dataset its command line names.

    `project` / `dataset` None: the pod names none (the configured one applies).
    """

    slug: str
    project: str | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class PodFacts:
    namespace: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    targets: tuple[Target, ...]
    slug: str | None
    slug_origin: str
    experiments: tuple[Experiment, ...] = ()
    workflow_uid: str | None = None

    @property
    def workflow(self) -> str | None:
        return self.labels.get(LABEL_WORKFLOW)

    @property
    def pin_label(self) -> str | None:
        return self.labels.get(LABEL_PIN)

    @property
    def pin_digest_annotation(self) -> str | None:
        return self.annotations.get(ANNOTATION_PIN_DIGEST)

    @property
    def subcommands(self) -> tuple[str | None, ...]:
        """The Jetstream subcommand of each target container (None: not recognised)."""
        return tuple(t.invocation.subcommand for t in self.targets)


def _remembered_for_short(function: Callable[[str], R]) -> Callable[[str], R]:
    """`function`, its answers for texts of ordinary length remembered (bounded LRU).

    Pods repeat a handful of images (Argo's executor, the configured ones).
    Longer texts are computed every time, so a hostile pod cannot fill the
    memo with megabytes.
    """
    remembered = lru_cache(maxsize=4096)(function)

    @wraps(function)
    def call(text: str) -> R:
        return remembered(text) if len(text) <= _MEMO_IMAGE_CHARS else function(text)

    call.cache_info = remembered.cache_info  # type: ignore[attr-defined]
    return call


@_remembered_for_short
def parse_image(image: str) -> ImageRef | None:
    """Split `repo[:tag][@digest]`; None for text that is no image reference."""
    if not image or _SPACE.search(image):
        return None
    name, _, digest = image.partition("@")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            return None
    if not name or name.endswith("/") or (digest == "" and "@" in image):
        return None
    return ImageRef(name, tag, digest or None)


@_remembered_for_short
def normalize_repository(repository: str) -> str:
    """One spelling per repository, so `jetstream` and `docker.io/library/jetstream` match."""
    first, sep, rest = repository.partition("/")
    has_host = sep and ("." in first or ":" in first or first == "localhost")
    if not has_host:
        path = repository if sep else f"library/{repository}"
        return f"{_DOCKER_HUB}/{path}"
    host = first.lower()
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = _DOCKER_HUB
    return f"{host}/{rest}"


def read_pod(
    pod: Any, repositories: Iterable[str], namespace: str, limits: PodLimits = DEFAULT_LIMITS
) -> PodFacts:
    """The facts the resolver needs, or MalformedPod naming the first bad path.

    Linear in the pod's size, and bounded by `limits` before any work that
    grows with it.
    """
    if not isinstance(pod, dict):
        raise MalformedPod("request.object is not a JSON object")
    metadata = _optional_dict(pod, "metadata", "request.object.metadata")
    labels = _string_map(metadata, "labels")
    annotations = _string_map(metadata, "annotations")
    spec = _optional_dict(pod, "spec", "request.object.spec")
    wanted = _wanted(tuple(repositories))
    targets = tuple(_targets(spec, wanted, limits))
    slug, origin, experiments = _experiments(labels, targets)
    name = metadata.get("name") or metadata.get("generateName") or ""
    pod_namespace = metadata.get("namespace") or namespace
    return PodFacts(
        namespace=pod_namespace if isinstance(pod_namespace, str) else namespace,
        name=name if isinstance(name, str) else "",
        labels=labels,
        annotations=annotations,
        targets=targets,
        slug=slug,
        slug_origin=origin,
        experiments=experiments,
        workflow_uid=_workflow_uid(metadata),
    )


@lru_cache(maxsize=16)
def _wanted(repositories: tuple[str, ...]) -> dict[str, str]:
    """The configured repositories by normalised name (the same few for every review)."""
    return {normalize_repository(r): r for r in repositories}


def _optional_dict(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPod(f"{path} must be an object")
    return value


def _string_map(metadata: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _optional_dict(metadata, key, f"metadata.{key}")
    for name, text in value.items():
        if not isinstance(text, str):
            raise MalformedPod(f"metadata.{key}[{describe_value(name)}] must be a string")
    return value


def _workflow_uid(metadata: Mapping[str, Any]) -> str | None:
    """The uid of the Argo Workflow that owns the pod (Argo sets this ownerReference)."""
    owners = metadata.get("ownerReferences")
    if not isinstance(owners, list):
        return None
    for owner in owners:
        if (
            isinstance(owner, dict)
            and owner.get("kind") == "Workflow"
            and str(owner.get("apiVersion", "")).startswith("argoproj.io/")
            and isinstance(owner.get("uid"), str)
        ):
            uid: str = owner["uid"]
            return uid
    return None


def _containers(spec: Mapping[str, Any], field: str) -> list[Any]:
    value = spec.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPod(f"spec.{field} must be a list of objects")
    return value


def _argv_part(container: Mapping[str, Any], key: str, path: str) -> list[str] | None:
    argv = container.get(key)
    if argv is None:
        return None
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise MalformedPod(f"{path}.{key} must be a list of strings")
    return argv


def _targets(
    spec: Mapping[str, Any], wanted: Mapping[str, str], limits: PodLimits
) -> Iterable[Target]:
    lists = [(field, _containers(spec, field)) for field in CONTAINER_FIELDS]
    count = sum(len(containers) for _, containers in lists)
    if count > limits.containers:
        raise MalformedPod(
            f"the pod has {count} containers and initContainers; jetstream-pin reads at most "
            f"{limits.containers} (its setting podLimits.containers)"
        )
    args = chars = 0
    for field, containers in lists:
        for index, container in enumerate(containers):
            path = f"spec.{field}[{index}]"
            if not isinstance(container, dict):
                raise MalformedPod(f"spec.{field} must be a list of objects")
            image = container.get("image")
            if image is None:
                continue
            if not isinstance(image, str):
                raise MalformedPod(f"{path}.image must be a string")
            ref = parse_image(image)
            if ref is None or ref.key not in wanted:
                continue
            name = container.get("name")
            if not isinstance(name, str):
                raise MalformedPod(f"{path}.name must be a string")
            command = _argv_part(container, "command", path)
            arguments = _argv_part(container, "args", path)
            for part in (command or [], arguments or []):
                args += len(part)
                if args > limits.args:
                    raise MalformedPod(
                        f"the target containers have more than {limits.args} command and args "
                        "entries; jetstream-pin reads at most that many (its setting "
                        "podLimits.args)"
                    )
                chars += sum(map(len, part))
            if chars > limits.argv_chars:
                raise MalformedPod(
                    f"the target containers' command and args hold more than "
                    f"{limits.argv_chars} characters; jetstream-pin reads at most that many "
                    "(its setting podLimits.argvChars)"
                )
            invocation = read_invocation(command, arguments)
            yield Target(field, index, name, image, ref, wanted[ref.key], invocation)


def _experiments(
    labels: Mapping[str, str], targets: Sequence[Target]
) -> tuple[str | None, str, tuple[Experiment, ...]]:
    """Rule 1: the slug label, else every --experiment_slug of the target containers.

    Each experiment carries the dataset named by the command line it came from
    (for the label, the first target container that names one).
    """
    if LABEL_SLUG in labels:
        slug = labels[LABEL_SLUG]
        named = next((t.invocation for t in targets if t.invocation.dataset), None)
        experiment = Experiment(slug, *((named.project, named.dataset) if named else ()))
        return slug, f"pod label {LABEL_SLUG}", (experiment,)
    seen: dict[Experiment, str] = {}
    for target in targets:
        call = target.invocation
        for value in call.slugs:
            seen.setdefault(Experiment(value, call.project, call.dataset), target.name)
    if not seen:
        return None, "", ()
    first, container_name = next(iter(seen.items()))
    origin = f"--experiment_slug in container {describe_value(container_name, 63)}"
    return first.slug, origin, tuple(seen)
