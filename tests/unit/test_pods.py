"""Reading pods: image references, slug discovery (rule 1), target containers (rule 2)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.builders import ARGOEXEC, JETSTREAM, argo_pod, container, fixture_review
from webhook.core.pods import (
    ImageRef,
    MalformedPod,
    PodLimits,
    normalize_repository,
    parse_image,
    read_pod,
)

REPOS = [JETSTREAM]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{JETSTREAM}:latest", ImageRef(JETSTREAM, "latest", None)),
        (JETSTREAM, ImageRef(JETSTREAM, None, None)),
        (f"{JETSTREAM}@sha256:{'a' * 64}", ImageRef(JETSTREAM, None, f"sha256:{'a' * 64}")),
        (f"{JETSTREAM}:v1@sha256:{'a' * 64}", ImageRef(JETSTREAM, "v1", f"sha256:{'a' * 64}")),
        ("localhost:5000/jet/stream:v2", ImageRef("localhost:5000/jet/stream", "v2", None)),
        ("localhost:5000/jetstream", ImageRef("localhost:5000/jetstream", None, None)),
        ("busybox", ImageRef("busybox", None, None)),
        ("", None),
        ("has space:tag", None),
        ("repo:", None),
        ("repo@", None),
        ("/", None),
    ],
)
def test_parse_image(text: str, expected: ImageRef | None) -> None:
    assert parse_image(text) == expected


@pytest.mark.parametrize(
    ("repository", "normal"),
    [
        ("busybox", "docker.io/library/busybox"),
        ("mozilla/jetstream", "docker.io/mozilla/jetstream"),
        ("index.docker.io/mozilla/jetstream", "docker.io/mozilla/jetstream"),
        ("GCR.IO/moz-fx-data-experiments/jetstream", JETSTREAM),
        ("localhost/jetstream", "localhost/jetstream"),
        ("127.0.0.1:5000/jetstream", "127.0.0.1:5000/jetstream"),
    ],
)
def test_normalize_repository(repository: str, normal: str) -> None:
    assert normalize_repository(repository) == normal


def test_argo_v36_fixture() -> None:
    pod = fixture_review("01-create-emissary-v3.6.json")["request"]["object"]
    facts = read_pod(pod, REPOS, "argo")
    assert facts.slug == "firefox-desktop-private-browsing-redesign-rollout"
    assert facts.slug_origin == "--experiment_slug in container 'main'"
    assert [(t.field, t.index, t.name) for t in facts.targets] == [("containers", 1, "main")]
    assert facts.workflow == "jetstream-k9v2q"
    assert facts.namespace == "argo"


def test_argo_v35_fixture_takes_the_label_first() -> None:
    pod = fixture_review("02-create-label-slug-v3.5.json")["request"]["object"]
    facts = read_pod(pod, REPOS, "argo")
    assert facts.slug == "android-onboarding-notification-permission-v2"
    assert facts.slug_origin == "pod label jetstream/experiment-slug"
    assert [t.name for t in facts.targets] == ["main"]


def test_label_wins_over_arguments() -> None:
    pod = argo_pod("from-args", labels={"jetstream/experiment-slug": "from-label"})
    assert read_pod(pod, REPOS, "argo").slug == "from-label"


def test_slug_only_from_target_containers() -> None:
    pod = argo_pod(None)
    pod["spec"]["containers"][0]["command"] = ["argoexec", "wait", "--experiment_slug=sneaky"]
    facts = read_pod(pod, REPOS, "argo")
    assert facts.slug is None


def test_targets_found_by_image_not_index() -> None:
    pod = argo_pod("s")
    pod["spec"]["containers"].reverse()
    pod["spec"]["initContainers"].append(container("prep", f"{JETSTREAM}:v1", "jetstream", "x"))
    facts = read_pod(pod, REPOS, "argo")
    assert [(t.field, t.index, t.name) for t in facts.targets] == [
        ("initContainers", 1, "prep"),
        ("containers", 0, "main"),
    ]


def test_argoexec_and_other_images_are_never_targets() -> None:
    pod = argo_pod("s")
    pod["spec"]["containers"].append(container("side", "gcr.io/other/jetstream:latest"))
    pod["spec"]["containers"].append(container("prefix", f"{JETSTREAM}-extra:latest"))
    facts = read_pod(pod, REPOS, "argo")
    assert [t.name for t in facts.targets] == ["main"]
    assert all(ARGOEXEC not in t.image for t in facts.targets)


def test_digest_image_is_pinned() -> None:
    pod = argo_pod("s", image_ref=f"{JETSTREAM}@sha256:{'a' * 64}")
    (target,) = read_pod(pod, REPOS, "argo").targets
    assert target.pinned


def test_every_named_experiment_is_read_in_order() -> None:
    pod = argo_pod("one")
    pod["spec"]["containers"].append(
        container("two", JETSTREAM, "jetstream", "--experiment_slug=two", "--experiment_slug=one")
    )
    facts = read_pod(pod, REPOS, "argo")
    assert facts.slug == "one"
    assert [(e.slug, e.dataset) for e in facts.experiments] == [
        ("one", "mozanalysis"),
        ("two", None),
        ("one", None),
    ]


def test_namespace_falls_back_to_the_request() -> None:
    pod = argo_pod("s")
    del pod["metadata"]["namespace"]
    assert read_pod(pod, REPOS, "from-request").namespace == "from-request"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(metadata=[]), "metadata must be an object"),
        (
            lambda p: p["metadata"].update(labels={"a": 1}),
            r"metadata.labels\['a'\] must be a string",
        ),
        (lambda p: p["metadata"].update(annotations="x"), "metadata.annotations must be an object"),
        (lambda p: p.update(spec="x"), "spec must be an object"),
        (lambda p: p["spec"].update(containers={"a": 1}), "spec.containers must be a list"),
        (lambda p: p["spec"].update(initContainers=[1]), "spec.initContainers must be a list"),
        (lambda p: p["spec"]["containers"][1].update(image=5), r"containers\[1\].image"),
        (lambda p: p["spec"]["containers"][1].update(command="jetstream"), r"\[1\].command"),
        (lambda p: p["spec"]["containers"][1].update(args=[1]), r"\[1\].args"),
        (lambda p: p["spec"]["containers"][1].update(name=None), r"\[1\].name"),
    ],
)
def test_malformed_pods_name_the_path(mutate: Any, message: str) -> None:
    pod = argo_pod("s")
    mutate(pod)
    with pytest.raises(MalformedPod, match=message):
        read_pod(pod, REPOS, "argo")


def test_not_an_object() -> None:
    with pytest.raises(MalformedPod, match=r"request\.object is not a JSON object"):
        read_pod(None, REPOS, "argo")


def test_long_references_are_read_alike_but_not_remembered() -> None:
    long_repo = "registry.example/" + "a" * 600  # beyond the memo's 512 characters
    before = parse_image.cache_info().currsize  # type: ignore[attr-defined]
    assert parse_image(f"{long_repo}:v1") == ImageRef(long_repo, "v1", None)
    assert parse_image.cache_info().currsize == before  # type: ignore[attr-defined]
    assert normalize_repository(long_repo) == long_repo
    parse_image(f"{JETSTREAM}:remembered-{len(long_repo)}")
    assert parse_image.cache_info().currsize == before + 1  # type: ignore[attr-defined]


def test_the_workflow_uid_comes_from_the_owner_reference() -> None:
    pod = argo_pod("s")
    pod["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "not-this"},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "w", "uid": "wf-uid"},
    ]
    assert read_pod(pod, REPOS, "argo").workflow_uid == "wf-uid"
    pod["metadata"]["ownerReferences"] = "not a list"
    assert read_pod(pod, REPOS, "argo").workflow_uid is None


def test_the_dataset_travels_with_the_slug() -> None:
    pod = argo_pod("s")
    pod["spec"]["containers"][1]["command"] += ["--project-id", "other-project"]
    (experiment,) = read_pod(pod, REPOS, "argo").experiments
    assert (experiment.slug, experiment.project, experiment.dataset) == (
        "s",
        "other-project",
        "mozanalysis",
    )


def test_the_label_slug_takes_the_dataset_of_the_command_line() -> None:
    pod = argo_pod("from-args", labels={"jetstream/experiment-slug": "from-label"})
    (experiment,) = read_pod(pod, REPOS, "argo").experiments
    assert (experiment.slug, experiment.project, experiment.dataset) == (
        "from-label",
        None,
        "mozanalysis",
    )


LIMITS = PodLimits(containers=8, args=40, argv_chars=1000)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda p: p["spec"]["containers"].extend(
                container(f"c{n}", ARGOEXEC) for n in range(6)
            ),
            r"9 containers and initContainers; jetstream-pin reads at most 8 "
            r"\(its setting podLimits\.containers\)",
        ),
        (
            lambda p: p["spec"]["containers"][1]["command"].extend(["-x"] * 40),
            r"more than 40 command and args entries.*podLimits\.args",
        ),
        (
            lambda p: p["spec"]["containers"][1].update(args=["y" * 1000]),
            r"more than 1000 characters.*podLimits\.argvChars",
        ),
    ],
)
def test_pods_beyond_the_limits_are_refused_naming_the_limit(mutate: Any, message: str) -> None:
    pod = argo_pod("s")
    mutate(pod)
    with pytest.raises(MalformedPod, match=message):
        read_pod(pod, REPOS, "argo", LIMITS)


def test_containers_that_are_not_targets_cost_no_argument_reading() -> None:
    pod = argo_pod("s")
    pod["spec"]["containers"][0]["args"] = ["z" * 5000]  # argoexec's: never read
    assert read_pod(pod, REPOS, "argo", LIMITS).slug == "s"


def test_reading_is_linear_in_the_number_of_targets() -> None:
    """20,000 target containers were quadratic (each looked the list up again)."""
    pod = argo_pod("s")
    main = pod["spec"]["containers"][1]
    pod["spec"]["containers"] = [dict(main, name=f"m{n}") for n in range(20_000)]
    limits = PodLimits(containers=30_000, args=10**6, argv_chars=10**8)
    facts = read_pod(pod, REPOS, "argo", limits)
    assert len(facts.targets) == 20_000
    assert facts.slug == "s"
