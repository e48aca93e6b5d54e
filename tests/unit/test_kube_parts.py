"""The Kubernetes pieces that need no API server: cache, Event wording, reuse rules, wiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.builders import EXAMPLES
from harness.servers import example_config
from harness.standins.apiserver import write_kubeconfig
from webhook import certs
from webhook.config import ConfigError, parse_config
from webhook.core.decision import Decision
from webhook.core.pinning import Reason
from webhook.kube.events import event_reason, workflow_uid
from webhook.kube.overrides import KubeOverrides
from webhook.sources.cached import CachedOverrides
from webhook.sources.static import StaticOverrides
from webhook.wiring import SplitOverrides, Wiring


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (Reason.ENROLLMENT, "PinnedEnrollment"),
        (Reason.NOT_ENROLLED, "PinnedNotEnrolled"),
        (Reason.ALREADY_PINNED, "PinnedAlreadyPinned"),
    ],
)
def test_event_reasons_are_camel_case(reason: Reason, expected: str) -> None:
    decision = Decision("s", reason, None, False, {}, {})
    assert event_reason(decision) == expected


def test_workflow_uid_only_from_the_named_argo_owner() -> None:
    owners = [
        {"apiVersion": "v1", "kind": "Workflow", "name": "wf", "uid": "not-argo"},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "other", "uid": "u1"},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "wf", "uid": "u2"},
    ]
    assert workflow_uid({"metadata": {"ownerReferences": owners}}, "wf") == "u2"
    assert workflow_uid({"metadata": {"ownerReferences": owners[:2]}}, "wf") is None
    assert workflow_uid({"metadata": {"ownerReferences": "junk"}}, "wf") is None
    assert workflow_uid("junk", "wf") is None


NAMES = ["svc.ns.svc"]


def test_a_fresh_bundle_is_reusable() -> None:
    bundle = certs.issue(NAMES)
    # Taken after issuing: a time from import is older than a certificate issued
    # minutes into a long run (its validity starts 5 minutes before issue).
    now = datetime.now(UTC)
    assert certs.why_not_reusable(bundle, NAMES, now, timedelta(days=30)) is None


def test_reuse_refusals() -> None:
    bundle = certs.issue(NAMES, days=10)
    other = certs.issue(NAMES)
    now = datetime.now(UTC)  # after issuing, as above
    assert "within the renewal window" in str(
        certs.why_not_reusable(bundle, NAMES, now, timedelta(days=30))
    )
    assert (
        certs.why_not_reusable(
            certs.Bundle(bundle.ca_pem, bundle.cert_pem, other.key_pem), NAMES, now, timedelta(1)
        )
        == "the stored key does not belong to the certificate"
    )
    assert (
        certs.why_not_reusable(
            certs.Bundle(b"junk", bundle.cert_pem, bundle.key_pem), NAMES, now, timedelta(1)
        )
        == "the stored certificate, CA or key cannot be read"
    )
    assert "does not name other.ns.svc" in str(
        certs.why_not_reusable(bundle, ["other.ns.svc"], now, timedelta(1))
    )
    later = now + timedelta(days=20)
    assert "expires" in str(certs.why_not_reusable(bundle, NAMES, later, timedelta(0)))


def _config(tmp_path: Path, overrides_in_file: bool, config_map: bool) -> Any:
    kubeconfig = write_kubeconfig(tmp_path / "k.yaml", "https://127.0.0.1:9", b"")
    data = yaml.safe_load((EXAMPLES / "static-data.yaml").read_text())
    if not overrides_in_file:
        data.pop("overrides", None)
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(data))
    kube: dict[str, Any] = {"kubeconfig": str(kubeconfig)}
    if config_map:
        kube["overridesConfigMap"] = {"name": "o", "namespace": "jetstream-pin"}
    raw = example_config(tmp_path, static=str(tmp_path / "data.yaml"), kubernetes=kube)
    return parse_config(raw, tmp_path)


def test_without_kubernetes_the_data_file_answers(tmp_path: Path) -> None:
    raw = example_config(tmp_path)
    assert isinstance(Wiring(parse_config(raw, tmp_path)).overrides(), StaticOverrides)


def test_workflow_labels_from_the_api_and_slug_pins_from_the_file(tmp_path: Path) -> None:
    overrides = Wiring(_config(tmp_path, overrides_in_file=True, config_map=False)).overrides()
    assert isinstance(overrides, SplitOverrides)
    assert isinstance(overrides.workflows, CachedOverrides)
    assert isinstance(overrides.workflows.reader, KubeOverrides)
    assert overrides.slug_pin("long-running-study") == "latest"


def test_the_config_map_replaces_the_file(tmp_path: Path) -> None:
    overrides = Wiring(_config(tmp_path, overrides_in_file=False, config_map=True)).overrides()
    assert isinstance(overrides, CachedOverrides)
    assert isinstance(overrides.reader, KubeOverrides)
    assert overrides.reader.config_map is not None


def test_slug_pins_in_both_places_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keep slug pins in one place"):
        Wiring(_config(tmp_path, overrides_in_file=True, config_map=True)).overrides()


def test_events_hook_only_when_enabled_and_not_for_the_cli(tmp_path: Path) -> None:
    config = _config(tmp_path, overrides_in_file=False, config_map=True)
    assert len(Wiring(config).admitter.on_decision) == 1
    assert Wiring(config, record_events=False).admitter.on_decision == []


def test_a_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    raw = example_config(tmp_path, kubernetes={"kubeconfig": str(tmp_path / "absent.yaml")})
    with pytest.raises(ConfigError, match="kubernetes: cannot load kubeconfig"):
        Wiring(parse_config(raw, tmp_path)).admitter  # noqa: B018


def test_in_cluster_without_a_cluster_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    raw = example_config(tmp_path, kubernetes={})
    with pytest.raises(ConfigError, match=r"in-cluster service account.*give a kubeconfig"):
        Wiring(parse_config(raw, tmp_path)).admitter  # noqa: B018
