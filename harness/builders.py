"""Small builders for pods, reviews and histories, so each test row stays one line."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from webhook.core.pinning import Commit, Image

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "argo"
EXAMPLES = ROOT / "examples"


def example_config_file(directory: Path, **keys: Any) -> Path:
    """`directory`/config.yaml: the example config on its static data, top-level `keys` replaced."""
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["static"] = str(EXAMPLES / "static-data.yaml")
    config.update(keys)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


JETSTREAM = "gcr.io/moz-fx-data-experiments/jetstream"
ARGOEXEC = "quay.io/argoproj/argoexec:v3.6.19"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()  # noqa: S324 - a fake commit id


def image(name: str, uploaded: str, *tags: str, child: bool = False) -> Image:
    return Image(digest(name), utc(uploaded), frozenset(tags), child)


def commit(name: str, committed: str) -> Commit:
    return Commit(sha(name), utc(committed))


def fixture_review(name: str) -> dict[str, Any]:
    with (FIXTURES / name).open() as handle:
        review: dict[str, Any] = json.load(handle)
    return review


def container(name: str, image_ref: str, *argv: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "image": image_ref}
    if argv:
        body["command"] = list(argv)
    body.update(extra)
    return body


def jetstream_argv(slug: str, flag: str = "--experiment_slug=") -> list[str]:
    """Argo's emissary wrapper around a jetstream run, as in the v3.6 fixture."""
    slug_args = [f"{flag}{slug}"] if flag.endswith("=") else [flag, slug]
    return [
        "/var/run/argo/argoexec", "emissary", "--loglevel", "info", "--",
        "jetstream", "--log_to_bigquery", "run", "--date=2024-06-03", *slug_args,
        "--dataset_id=mozanalysis",
    ]  # fmt: skip


def argo_pod(
    slug: str | None = "my-experiment",
    image_ref: str = f"{JETSTREAM}:latest",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    env: list[dict[str, Any]] | None = None,
    workflow: str | None = "jetstream-abcde",
    workflow_uid: str | None = None,
) -> dict[str, Any]:
    """An Argo pod: init and wait (argoexec) around `main` at index 1.

    `workflow_uid`: the owner reference Argo sets to its Workflow (None: none).
    """
    main = container("main", image_ref, *(jetstream_argv(slug) if slug else ["jetstream", "run"]))
    if env is not None:
        main["env"] = env
    all_labels = {"workflows.argoproj.io/completed": "false"}
    if workflow:
        all_labels["workflows.argoproj.io/workflow"] = workflow
    all_labels.update(labels or {})
    metadata: dict[str, Any] = {
        "name": "jetstream-abcde-1",
        "namespace": "argo",
        "labels": all_labels,
    }
    if annotations is not None:
        metadata["annotations"] = annotations
    if workflow and workflow_uid:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Workflow",
                "name": workflow,
                "uid": workflow_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "initContainers": [container("init", ARGOEXEC, "argoexec", "init")],
            "containers": [container("wait", ARGOEXEC, "argoexec", "wait"), main],
            "restartPolicy": "Never",
        },
    }


def review_of(
    pod: Any, operation: str = "CREATE", dry_run: bool = False, kind: str = "Pod"
) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "argo",
            "name": "jetstream-abcde-1",
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:argo:argo"},
            "object": copy.deepcopy(pod),
            "oldObject": None,
            "dryRun": dry_run,
        },
    }


HOSTILE_SLUG = "<script>alert(1)</script>"
HOSTILE_PENDING_SLUG = '"><img src=x onerror=alert(2)>'


def hostile_static_data(directory: Path) -> Path:
    """The example data plus two listed slugs that are markup (a listing is not trusted)."""
    data = yaml.safe_load((EXAMPLES / "static-data.yaml").read_text())
    data["enrollments"][HOSTILE_SLUG] = "2024-01-10T00:00:00Z"
    data["enrollments"][HOSTILE_PENDING_SLUG] = None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "static-data.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
