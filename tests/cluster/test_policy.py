"""The chart's ValidatingAdmissionPolicy, judged by the real kube-apiserver.

Where no webhook is registered (it was skipped, deleted, or down with
`Ignore`), the policy alone stands between an experiment pod and unpinned
tooling; where the webhook is registered, its mutation runs first and the
policy sees the pinned pod. Every assertion is what a client sees: status,
message, `Warning:` lines, the stored pod, kubectl's output.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from harness.builders import ARGOEXEC, JETSTREAM, argo_pod, container, digest, jetstream_argv, sha
from harness.controlplane import policy, release
from harness.controlplane.client import Answer, create_in, read_pod
from harness.controlplane.plane import ControlPlane
from tests.cluster.conftest import Deploy, Deployment

PINNED = f"{JETSTREAM}@{digest('pinned')}"
COMMIT = {"name": "METRIC_HUB_SHA", "value": sha("pinned")}
HINT = (
    ". The webhook pins such pods (is it running in namespace jetstream-pin?);"
    " for the newest tooling label the pod or its Workflow jetstream/pin=latest,"
    " or pin it by hand: image@sha256:<digest> and METRIC_HUB_SHA=<commit>"
)


@dataclass
class Guarded:
    """A namespace that only the policy of `release` guards: no webhook is registered."""

    plane: ControlPlane
    namespace: str
    release: str

    @property
    def policy(self) -> str:
        return release.fullname(self.release)

    def create(self, pod: dict[str, Any], named: bool = False) -> Answer:
        return create_in(self.plane, self.namespace, pod, named=named)

    def refusal(self, text: str) -> str:
        """The message a client gets when the policy refuses."""
        return (
            f"ValidatingAdmissionPolicy '{self.policy}' with binding '{self.policy}' "
            f"denied request: {text}"
        )


def guard(plane: ControlPlane, name: str, **chart: Any) -> Guarded:
    namespace = plane.namespace(name)
    policy.install(plane, name, namespace, release.chart_values([namespace], **chart))
    return Guarded(plane, namespace, name)


@pytest.fixture(scope="module")
def guarded(control_plane: ControlPlane) -> Guarded:
    return guard(control_plane, "policy-only")


def _pinned_by_hand(**extra: Any) -> dict[str, Any]:
    return argo_pod("my-experiment", image_ref=PINNED, env=[COMMIT], **extra)


def test_unpinned_experiment_pod_is_refused_with_the_policy_message(guarded: Guarded) -> None:
    answer = guarded.create(argo_pod("my-experiment"))
    assert (answer.status, answer.reason) == (403, "Forbidden")
    assert answer.message.endswith(
        guarded.refusal(
            f"experiment 'my-experiment' is not pinned by jetstream-pin: container 'main' runs "
            f"{JETSTREAM}:latest, not a digest; container 'main' has no "
            f"METRIC_HUB_SHA=<40-hex commit>{HINT}"
        )
    ), answer.message


@pytest.mark.parametrize(
    ("pod", "admitted"),
    [
        pytest.param(_pinned_by_hand(), True, id="pinned by hand"),
        pytest.param(argo_pod(None), True, id="no slug"),
        pytest.param(argo_pod("my-experiment", image_ref="busybox:1.36"), True, id="other image"),
        pytest.param(argo_pod("my-experiment", image_ref=PINNED), False, id="digest, no commit"),
        pytest.param(
            argo_pod("my-experiment", image_ref=PINNED, env=[{**COMMIT, "value": "main"}]),
            False,
            id="commit not 40 hex",
        ),
    ],
)
def test_only_unpinned_experiment_pods_are_refused(
    guarded: Guarded, pod: dict[str, Any], admitted: bool
) -> None:
    answer = guarded.create(pod)
    if admitted:
        assert answer.status == 201, answer.message
    else:
        assert answer.status == 403
        assert "container 'main' has no METRIC_HUB_SHA=<40-hex commit>" in answer.message
        assert "not a digest" not in answer.message


@pytest.mark.parametrize(
    ("argv", "analysis"),
    [
        (["jetstream", "rerun", "--experiment_slug=orchestrated"], False),
        (["sh", "-c", "jetstream --log_to_bigquery rerun-skip --experiment_slug=s"], False),
        (["/usr/local/bin/jetstream", "run-argo", "--experiment-slug", "s"], False),
        (["jetstream", "--log_project_id", "p", "run", "--experiment_slug=s"], True),
        (
            ["jetstream", "--log-source", "x", "export-statistics-to-json", "--experiment_slug=s"],
            True,
        ),
        (["jetstream", "--debug", "--experiment-slug=s"], True),  # none: pinned, to be safe
        (["python", "analyse.py", "--experiment_slug=s"], True),
    ],
    ids=["rerun", "sh -c rerun-skip", "run-argo", "group option run", "export", "none", "other"],
)
def test_only_analysis_commands_must_be_pinned(
    guarded: Guarded, argv: list[str], analysis: bool
) -> None:
    """Jetstream's orchestration commands run unpinned by design; the policy reads the
    subcommand as the webhook does (webhook/core/commands.py)."""
    answer = guarded.create(_flag_pod(argv))
    assert answer.status == (403 if analysis else 201), answer.message


def test_no_command_runs_the_entrypoint_jetstream(guarded: Guarded) -> None:
    pod = argo_pod(None)
    del pod["spec"]["containers"][1]["command"]
    pod["spec"]["containers"][1]["args"] = ["rerun", "--experiment_slug=s"]
    assert guarded.create(copy.deepcopy(pod)).status == 201
    pod["spec"]["containers"][1]["args"] = ["run", "--experiment_slug=s"]
    assert guarded.create(copy.deepcopy(pod)).status == 403


def _flag_pod(argv: list[str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    pod = argo_pod(None, labels=labels)
    pod["spec"]["containers"][1]["command"] = argv
    return pod


def _init_target_pod() -> dict[str, Any]:
    """The target is an initContainer; the main container is not Jetstream's."""
    pod = argo_pod(None, image_ref="busybox:1.36")
    pod["spec"]["initContainers"].append(
        container(
            "prepare",
            f"{JETSTREAM}:v1",
            "jetstream",
            "ensure-enrollments",
            "--experiment-slug",
            "init-slug",
        )
    )
    return pod


@pytest.mark.parametrize(
    ("pod", "slug", "name"),
    [
        (_flag_pod(jetstream_argv("eq-underscore")), "eq-underscore", "main"),
        (_flag_pod(jetstream_argv("sp-underscore", "--experiment_slug")), "sp-underscore", "main"),
        (_flag_pod(jetstream_argv("eq-hyphen", "--experiment-slug=")), "eq-hyphen", "main"),
        (_flag_pod(jetstream_argv("sp-hyphen", "--experiment-slug")), "sp-hyphen", "main"),
        (_flag_pod(["sh", "-c", "jetstream run --experiment_slug=in-sh"]), "in-sh", "main"),
        (_flag_pod(["jetstream", "run"], {"jetstream/experiment-slug": "lab"}), "lab", "main"),
        (_init_target_pod(), "init-slug", "prepare"),
    ],
    ids=["=_", "space_", "=-", "space-", "sh -c", "label", "initContainer"],
)
def test_the_slug_is_read_as_the_webhook_reads_it(
    guarded: Guarded, pod: dict[str, Any], slug: str, name: str
) -> None:
    answer = guarded.create(pod)
    assert answer.status == 403, answer.body
    assert f"experiment '{slug}' is not pinned by jetstream-pin: container '{name}' runs" in (
        answer.message
    )


def test_flags_of_containers_that_are_not_targets_are_ignored(guarded: Guarded) -> None:
    pod = argo_pod(None)
    pod["spec"]["containers"][0]["command"] = ["argoexec", "wait", "--experiment_slug=x"]
    assert pod["spec"]["containers"][0]["image"] == ARGOEXEC
    assert guarded.create(pod).status == 201


def _set_image(plane: ControlPlane, namespace: str, pod: str, image: str) -> tuple[int, str]:
    done = plane.kubectl(
        "-n", namespace, "set", "image", f"pod/{pod}", f"main={image}", check=False
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_an_image_may_change_only_back_to_the_recorded_digest(guarded: Guarded) -> None:
    """A pod whose image differs from its record (pinned by hand): only the record is allowed."""
    plane, namespace = guarded.plane, guarded.namespace
    pod = _pinned_by_hand(annotations={"jetstream/pinned-image": f"{JETSTREAM}@{digest('rec')}"})
    pod["metadata"]["name"] = "recorded-elsewhere"
    assert guarded.create(pod, named=True).status == 201
    for image in (f"{JETSTREAM}@{digest('other')}", f"{JETSTREAM}:latest", "busybox:1.36"):
        code, output = _set_image(plane, namespace, "recorded-elsewhere", image)
        assert code == 1
        assert f"container 'main' may not change its image to {image} " in output, output
    code, output = _set_image(
        plane, namespace, "recorded-elsewhere", f"{JETSTREAM}@{digest('rec')}"
    )
    assert (code, output.strip()) == (0, "pod/recorded-elsewhere image updated")
    stored = read_pod(plane, namespace, "recorded-elsewhere")
    assert stored is not None
    assert stored["spec"]["containers"][1]["image"] == f"{JETSTREAM}@{digest('rec')}"


def test_the_record_itself_may_not_change(guarded: Guarded) -> None:
    pod = _pinned_by_hand(annotations={"jetstream/pinned-image": PINNED})
    pod["metadata"]["name"] = "record-kept"
    assert guarded.create(pod, named=True).status == 201
    done = guarded.plane.kubectl(
        "-n", guarded.namespace, "annotate", "pod/record-kept", "--overwrite",
        f"jetstream/pinned-image={JETSTREAM}@{digest('other')}", check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "jetstream/pinned-image records what jetstream-pin pinned" in done.stderr


def test_image_changes_of_pods_without_a_slug_are_allowed(guarded: Guarded) -> None:
    pod = argo_pod(None)
    pod["metadata"]["name"] = "not-an-experiment"
    assert guarded.create(pod, named=True).status == 201
    code, output = _set_image(guarded.plane, guarded.namespace, "not-an-experiment", "busybox:1")
    assert code == 0, output


@pytest.fixture(scope="module")
def pinning(control_plane: ControlPlane, deploy: Deploy) -> Deployment:
    """The webhook and the policy for one namespace; the policy is enforced before the
    webhook is registered, so the probe sees the policy alone."""
    guard(control_plane, "policy-webhook")
    return deploy("policy-webhook")


def test_pods_the_webhook_pinned_pass_the_policy(pinning: Deployment) -> None:
    answer = pinning.create(argo_pod("my-experiment"))
    assert answer.status == 201, answer.message
    assert answer.container("main")["image"].startswith(f"{JETSTREAM}@sha256:")
    assert answer.warnings == []


def test_set_image_of_a_pinned_pod_to_a_tag_is_refused(pinning: Deployment) -> None:
    pod = argo_pod("my-experiment")
    pod["metadata"]["name"] = "set-image"
    assert pinning.create(pod, named=True).status == 201
    stored = read_pod(pinning.plane, pinning.namespace, "set-image")
    assert stored is not None
    recorded = stored["metadata"]["annotations"]["jetstream/pinned-image"]
    policy_name = release.fullname(pinning.release)
    code, output = _set_image(pinning.plane, pinning.namespace, "set-image", f"{JETSTREAM}:latest")
    assert code == 1
    assert output.strip() == (
        'error: failed to patch image update to pod template: pods "set-image" is forbidden: '
        f"ValidatingAdmissionPolicy '{policy_name}' with binding '{policy_name}' denied request: "
        "experiment 'my-experiment' is pinned by jetstream-pin: container 'main' may not change "
        f"its image to {JETSTREAM}:latest (pinned: {recorded}). To move it, create a new pod: "
        "label it jetstream/pin=latest or a digest pin"
    )
    code, output = _set_image(pinning.plane, pinning.namespace, "set-image", recorded)
    assert code == 0, output


@pytest.mark.parametrize(
    ("name", "chart"),
    [
        ("policy-audit", {"mode": "audit"}),
        ("policy-allow", {"onError": "allow"}),
        ("policy-forced-warn", {"validatingPolicy": {"actions": "warn"}}),
    ],
)
def test_warn_modes_store_the_pod_and_warn(
    control_plane: ControlPlane, name: str, chart: dict[str, Any]
) -> None:
    guarded = guard(control_plane, name, **chart)
    pod = argo_pod("my-experiment")
    pod["metadata"]["name"] = "warned"
    answer = guarded.create(pod, named=True)
    assert answer.status == 201, answer.message
    assert answer.container("main")["image"] == f"{JETSTREAM}:latest"
    assert answer.warnings == [
        f"Validation failed for ValidatingAdmissionPolicy '{guarded.policy}' with binding "
        f"'{guarded.policy}': experiment 'my-experiment' is not pinned by jetstream-pin: "
        f"container 'main' runs {JETSTREAM}:latest, not a digest; container 'main' has no "
        f"METRIC_HUB_SHA=<40-hex commit>{HINT}"
    ]
    assert _audited(control_plane, guarded.namespace, "warned")


def _audited(plane: ControlPlane, namespace: str, pod: str) -> bool:
    """The API server's audit event for the creation carries the policy's failure."""

    def failure() -> str | None:
        for event in plane.audit_events():
            target = event.get("objectRef", {})
            if (
                event["verb"] == "create"
                and event["stage"] == "ResponseComplete"
                and (target.get("namespace"), target.get("name")) == (namespace, pod)
            ):
                notes = event.get("annotations", {})
                found: str | None = notes.get(
                    "validation.policy.admission.k8s.io/validation_failure"
                )
                return found
        return None

    return policy.MARK in plane.wait_for(failure, what=f"the audit event of {pod}")


def test_forced_deny_refuses_even_in_audit_mode(control_plane: ControlPlane) -> None:
    guarded = guard(
        control_plane, "policy-forced-deny", mode="audit", validatingPolicy={"actions": "deny"}
    )
    answer = guarded.create(argo_pod("my-experiment"))
    assert answer.status == 403
    assert policy.MARK in answer.message
