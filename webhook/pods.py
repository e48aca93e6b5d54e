"""Reading a pod: its experiment slug, its target containers, its existing pins.

Pods reach the webhook as untyped JSON. Everything here checks the shape it
relies on and names the offending path, so a hostile or broken object is
refused with a clear message instead of an exception deep in the resolver.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, TypeVar

from webhook.pinning import Refusal, describe_value

LABEL_SLUG = "jetstream/experiment-slug"
LABEL_PIN = "jetstream/pin"
LABEL_WORKFLOW = "workflows.argoproj.io/workflow"
ANNOTATION_PIN_DIGEST = "jetstream/pin-digest"

_SLUG_FLAG = re.compile(r"--experiment[_-]slug(?:=(.*))?\Z", re.DOTALL)
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
class Target:
    """A container running one of the configured images, found by name and image."""

    field: str
    index: int
    name: str
    image: str
    ref: ImageRef
    repository: str

    @property
    def pinned(self) -> bool:
        return self.ref.digest is not None

    @property
    def path(self) -> str:
        return f"spec.{self.field}[{self.index}]"


@dataclass(frozen=True)
class PodFacts:
    namespace: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    targets: tuple[Target, ...]
    slug: str | None
    slug_origin: str

    @property
    def workflow(self) -> str | None:
        return self.labels.get(LABEL_WORKFLOW)

    @property
    def pin_label(self) -> str | None:
        return self.labels.get(LABEL_PIN)

    @property
    def pin_digest_annotation(self) -> str | None:
        return self.annotations.get(ANNOTATION_PIN_DIGEST)


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


def slug_in_argv(argv: Sequence[str]) -> list[str]:
    """Every value given to --experiment_slug / --experiment-slug, in order."""
    tokens = _split_shell_words(argv)
    found: list[str] = []
    for position, token in enumerate(tokens):
        if "slug" not in token:  # the flag's own text; far cheaper than the regex
            continue
        match = _SLUG_FLAG.match(token)
        if match is None:
            continue
        if match.group(1) is not None:
            found.append(match.group(1))
        elif position + 1 < len(tokens):
            found.append(tokens[position + 1])
    return found


def _split_shell_words(argv: Sequence[str]) -> list[str]:
    """`sh -c "jetstream run --experiment_slug=x"` hides the flag inside one argument."""
    tokens: list[str] = []
    for arg in argv:
        if _SPACE.search(arg):
            try:
                tokens.extend(shlex.split(arg))
            except ValueError:
                tokens.extend(arg.split())
        else:
            tokens.append(arg)
    return tokens


def read_pod(pod: Any, repositories: Iterable[str], namespace: str) -> PodFacts:
    """The facts the resolver needs, or MalformedPod naming the first bad path."""
    if not isinstance(pod, dict):
        raise MalformedPod("request.object is not a JSON object")
    metadata = _optional_dict(pod, "metadata", "request.object.metadata")
    labels = _string_map(metadata, "labels")
    annotations = _string_map(metadata, "annotations")
    spec = _optional_dict(pod, "spec", "request.object.spec")
    wanted = _wanted(tuple(repositories))
    targets = tuple(_targets(spec, wanted))
    slug, origin = _slug(labels, spec, targets)
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


def _containers(spec: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    value = spec.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise MalformedPod(f"spec.{field} must be a list of objects")
    return value


def _targets(spec: Mapping[str, Any], wanted: Mapping[str, str]) -> Iterable[Target]:
    for field in CONTAINER_FIELDS:
        for index, container in enumerate(_containers(spec, field)):
            image = container.get("image")
            if image is None:
                continue
            if not isinstance(image, str):
                raise MalformedPod(f"spec.{field}[{index}].image must be a string")
            ref = parse_image(image)
            if ref is None or ref.key not in wanted:
                continue
            name = container.get("name")
            if not isinstance(name, str):
                raise MalformedPod(f"spec.{field}[{index}].name must be a string")
            for key in ("command", "args"):
                argv = container.get(key)
                if argv is not None and (
                    not isinstance(argv, list) or not all(isinstance(a, str) for a in argv)
                ):
                    raise MalformedPod(f"spec.{field}[{index}].{key} must be a list of strings")
            yield Target(field, index, name, image, ref, wanted[ref.key])


def _slug(
    labels: Mapping[str, str], spec: Mapping[str, Any], targets: Sequence[Target]
) -> tuple[str | None, str]:
    if LABEL_SLUG in labels:
        return labels[LABEL_SLUG], f"pod label {LABEL_SLUG}"
    seen: dict[str, str] = {}
    for target in targets:
        container = _containers(spec, target.field)[target.index]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        for value in slug_in_argv(argv):
            seen.setdefault(value, target.name)
    if len(seen) > 1:
        names = ", ".join(describe_value(s, 40) for s in list(seen)[:3])
        raise MalformedPod(f"the target containers name different experiment slugs: {names}")
    if seen:
        value, container_name = next(iter(seen.items()))
        return value, f"--experiment_slug in container {describe_value(container_name, 63)}"
    return None, ""
