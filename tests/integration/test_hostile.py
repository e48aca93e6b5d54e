"""Random and hostile input thrown at /mutate over HTTPS: never a 500, never a stray patch.

2,000 generated requests per run (1,200 reviews, 500 JSON documents, 300 byte
strings) plus explicit extremes: deep nesting, huge strings, unicode labels,
thousands of containers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness.builders import ARGOEXEC, JETSTREAM, argo_pod, jetstream_argv, review_of
from harness.servers import Server
from tests.support.kube import apply_response


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


ALLOWED_PATCH = re.compile(
    r"^/metadata/annotations(/.*)?$|^/spec/(initContainers|containers)/(\d+)/"
)

texts = st.text(max_size=40) | st.sampled_from(
    ["", "<script>alert(1)</script>", "../../etc", "a" * 300, "\u202e\u0000", "latest",
     "my-experiment", "sha256:" + "a" * 64, "0123456789ab", "; rm -rf /", "%00", "\n"]
)  # fmt: skip
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=25,
)
images = st.sampled_from(
    [f"{JETSTREAM}:latest", f"{JETSTREAM}", f"{JETSTREAM}@sha256:{'b' * 64}", ARGOEXEC,
     "busybox", "", "gcr.io/moz-fx-data-experiments/jetstream-evil:1", f"{JETSTREAM}:"]
) | texts  # fmt: skip
argvs = st.one_of(
    st.lists(texts, max_size=6),
    st.builds(jetstream_argv, texts),
    st.builds(lambda s: ["sh", "-c", f"jetstream run --experiment-slug {s}"], texts),
)
containers = st.fixed_dictionaries(
    {"name": texts, "image": images},
    optional={
        "command": argvs | json_values,
        "args": argvs,
        "env": st.lists(
            st.fixed_dictionaries({"name": texts}, optional={"value": texts}), max_size=3
        )
        | json_values,
    },
)
label_maps = st.dictionaries(
    st.sampled_from(
        ["jetstream/experiment-slug", "jetstream/pin", "workflows.argoproj.io/workflow"]
    )
    | texts,
    texts | json_values,
    max_size=4,
)


def _argo_like(slug: str, labels: dict[str, Any], extra: list[Any], env: Any, first: bool) -> Any:
    pod = argo_pod(slug)
    if all(isinstance(v, str) for v in labels.values()):
        pod["metadata"]["labels"].update(labels)
    if env is not None:
        pod["spec"]["containers"][1]["env"] = env
    if first:
        pod["spec"]["containers"] = extra + pod["spec"]["containers"]
    else:
        pod["spec"]["containers"] += extra
    return pod


slugs = st.sampled_from(
    ["my-experiment", "brand-new-experiment", "unknown-x", "long-running-study"]
)
argo_like = st.builds(
    _argo_like,
    slugs | texts,
    st.dictionaries(
        st.sampled_from(["jetstream/pin", "jetstream/experiment-slug", "x"]),
        st.sampled_from(["latest", "5649c013e64c", "bad"]) | slugs,
        max_size=2,
    ),
    st.lists(containers, max_size=3),
    st.none()
    | st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["METRIC_HUB_SHA", "A"])}, optional={"value": texts}
        ),
        max_size=3,
    ),
    st.booleans(),
)
pods = (
    argo_like
    | argo_like
    | argo_like
    | st.fixed_dictionaries(
        {
            "apiVersion": st.just("v1"),
            "kind": st.just("Pod"),
            "metadata": st.fixed_dictionaries(
                {"name": texts},
                optional={
                    "labels": label_maps,
                    "annotations": st.dictionaries(texts, texts, max_size=3) | json_values,
                },
            ),
            "spec": st.fixed_dictionaries(
                {"containers": st.lists(containers, max_size=4)},
                optional={"initContainers": st.lists(containers, max_size=2)},
            ),
        }
    )
    | json_values
)
reviews = st.fixed_dictionaries(
    {
        "apiVersion": st.just("admission.k8s.io/v1"),
        "kind": st.just("AdmissionReview"),
        "request": st.fixed_dictionaries(
            {
                "uid": st.uuids().map(str),
                "kind": st.just({"group": "", "version": "v1", "kind": "Pod"}),
                "operation": st.sampled_from(["CREATE"] * 6 + ["UPDATE", "CONNECT"]),
                "namespace": st.sampled_from(["argo", ""]),
                "object": pods,
            },
            optional={"dryRun": st.booleans(), "name": texts},
        ),
    }
)


def is_target(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("image"), str)
        and (
            body["image"] in (f"{JETSTREAM}:latest", JETSTREAM)
            or body["image"].startswith(f"{JETSTREAM}@")
            or body["image"].startswith(f"{JETSTREAM}:")
        )
    )


@examples(1200)
@given(reviews)
def test_hostile_reviews_never_500_and_never_touch_other_containers(
    server: Server, review: dict[str, Any]
) -> None:
    reply = server.post_review(review)
    assert reply.status_code in (200, 400), reply.text
    body = reply.json()
    if reply.status_code == 400:
        assert body["error"]
        return
    response = body["response"]
    assert response["uid"] == review["request"]["uid"]
    assert isinstance(response["allowed"], bool)
    event(f"allowed={response['allowed']} patched={'patch' in response}")
    if "patch" not in response:
        return
    pod = review["request"]["object"]
    after = apply_response(pod, body)
    for op in json.loads(json.dumps(_ops(body))):
        match = ALLOWED_PATCH.match(op["path"])
        assert match, f"unexpected patch path {op['path']}"
        if match.group(2):
            field, index = match.group(2), int(match.group(3))
            assert is_target(pod["spec"][field][index]), f"patched non-target {op['path']}"
    for field in ("initContainers", "containers"):
        for old, new in zip(pod["spec"].get(field, []), after["spec"].get(field, []), strict=True):
            if not is_target(old):
                assert old == new


def _ops(body: dict[str, Any]) -> list[dict[str, Any]]:
    from tests.support.kube import decode_patch

    return decode_patch(body)


@examples(500)
@given(json_values)
def test_arbitrary_json_bodies_get_400_or_a_review(server: Server, document: Any) -> None:
    reply = server.session.post(
        f"{server.url}/mutate",
        data=json.dumps(document),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json()["code"] == 400


@examples(300)
@given(st.binary(max_size=200), st.sampled_from(["application/json", "text/plain", "x/y"]))
def test_arbitrary_bytes(server: Server, data: bytes, content_type: str) -> None:
    reply = server.session.post(
        f"{server.url}/mutate", data=data, headers={"Content-Type": content_type}, timeout=10
    )
    assert reply.status_code == 400


def _check_review_answer(server: Server, review: dict[str, Any]) -> dict[str, Any]:
    reply = server.post_review(review)
    assert reply.status_code == 200, reply.text[:300]
    body: dict[str, Any] = reply.json()
    assert body["response"]["uid"] == review["request"]["uid"]
    return body


def test_thousands_of_containers(server: Server) -> None:
    """Beyond podLimits.containers a pod is refused at once; within it, pinned as ever."""
    pod = argo_pod("my-experiment")
    sidecars = [{"name": f"side-{i}", "image": "busybox"} for i in range(3000)]
    pod["spec"]["containers"] = sidecars + pod["spec"]["containers"]
    body = _check_review_answer(server, review_of(pod))
    assert body["response"]["allowed"] is False
    status = body["response"]["status"]
    assert status["code"] == 400
    assert "3003 containers and initContainers" in status["message"]
    assert "podLimits.containers" in status["message"]
    pod["spec"]["containers"] = sidecars[:250] + pod["spec"]["containers"][3000:]
    after = apply_response(pod, _check_review_answer(server, review_of(pod)))
    assert after["spec"]["containers"][:250] == sidecars[:250]
    assert after["spec"]["containers"][251]["image"].startswith(f"{JETSTREAM}@sha256:")


def test_huge_strings_and_unicode_labels(server: Server) -> None:
    pod = argo_pod("my-experiment", labels={"ünïcødé/ключ": "値" * 5000, "x": "\u202e" * 100})
    pod["metadata"]["annotations"] = {"big": "A" * 1_000_000}
    body = _check_review_answer(server, review_of(pod))
    assert body["response"]["allowed"] is True
    hostile = argo_pod(None, labels={"jetstream/experiment-slug": "☃" * 10_000})
    body = _check_review_answer(server, review_of(hostile))
    assert body["response"]["allowed"] is False
    assert len(body["response"]["status"]["message"]) < 400


def test_deep_nesting_is_a_400(server: Server) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    reply = server.session.post(
        f"{server.url}/mutate", data=deep, timeout=10, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 400
    assert "nested too deeply" in reply.json()["error"]
    nested: Any = {}
    for _ in range(400):
        nested = {"a": nested}
    pod = argo_pod("my-experiment", annotations={"n": "x"})
    pod["spec"]["extra"] = nested
    assert _check_review_answer(server, review_of(pod))["response"]["allowed"] is True


def test_over_the_size_limit_is_a_400_and_the_server_keeps_serving(server: Server) -> None:
    pod = argo_pod("my-experiment", annotations={"big": "B" * (7 * 1024 * 1024)})
    reply = server.post_review(review_of(pod))
    assert reply.status_code == 400
    assert "larger than the limit" in reply.json()["error"]
    _check_review_answer(server, review_of(argo_pod("my-experiment")))
