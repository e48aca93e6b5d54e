"""The operator CLI: certs, review and explain on the example config."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from harness.builders import (
    EXAMPLES,
    ROOT,
    argo_pod,
    example_config_file,
    fixture_review,
    review_of,
)
from tests.support.kube import decode_patch
from webhook.cli import main
from webhook.config import load_config
from webhook.core.review import parse_review
from webhook.wiring import Wiring

CONFIG = str(EXAMPLES / "config.yaml")


def test_certs_writes_ca_cert_and_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    assert main(["certs", "--out", str(out), "--dns", "svc.ns.svc", "--ip", "127.0.0.1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["svc.ns.svc"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert "tls.key" in capsys.readouterr().out


def test_certs_needs_a_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path)]) == 2
    assert "give at least one --dns" in capsys.readouterr().err


def test_review_prints_the_mutate_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = fixture_review("01-create-emissary-v3.6.json")
    path = tmp_path / "review.json"
    path.write_text(json.dumps(review))
    assert main(["review", "--config", CONFIG, str(path)]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["response"]["uid"] == review["request"]["uid"]
    ops = {op["path"]: op.get("value") for op in decode_patch(response)}
    assert str(ops["/spec/containers/1/image"]).endswith(
        "@sha256:4bba4eebe859c802badf55f8a2bc7015e7009d574a169febeeb92ac2fd622073"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("{oops", "is not valid JSON"), ("[]", "the body is not a JSON")],
)
def test_review_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "review.json"
    if content is not None:
        path.write_text(content)
    assert main(["review", "--config", CONFIG, str(path)]) == 2
    assert message in capsys.readouterr().err


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "explain",
                "--config",
                CONFIG,
                "--slug",
                "android-onboarding-notification-permission-v2",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["reason"] == "breaking"
    assert report["enrolledAt"] == "2023-12-01T02:00:00Z"
    assert report["images"][0]["tags"] == ["breaking", "v2024.2.0"]
    assert report["configRepos"][0]["sha"] == "6f1210910bc73f58eb0aaf165c61a41ae9ad1233"


def test_explain_text_and_pin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--config", CONFIG, "--slug", "my-experiment"]) == 0
    text = capsys.readouterr().out
    assert "pin reason   breaking" in text
    assert "moved up to it" in text
    assert "487a50e4259df919a05610786dd9fd7a1b106547" in text
    assert main(["explain", "--config", CONFIG, "--slug", "my-experiment", "--pin", "latest"]) == 0
    assert "pin reason   latest" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "--config", CONFIG, "--slug", "no good"], "is not valid"),
        (["explain", "--config", "/nonexistent.yaml", "--slug", "x"], "cannot read"),
        (["explain", "--config", CONFIG, "--slug", "x", "--pin", "nope"], "accepted"),
    ],
)
def test_operator_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_python_dash_m_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "serve" in done.stdout
    assert "explain" in done.stdout


# What examples/static-data.yaml implies (see tests/integration/test_https.py too).
EXAMPLE_GROUPS = {
    "e641342ebd29": ["long-running-study", "brand-new-experiment"],
    "4bba4eebe859": ["firefox-desktop-private-browsing-redesign-rollout"],
    "c71233c8ade3": ["my-experiment", "android-onboarding-notification-permission-v2"],
    "5411f0777d4b": [],
    "5649c013e64c": [],
    "cde5ded9283b": [],
}


def test_report_json_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--config", CONFIG, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (repo,) = document["repositories"]
    groups = {v["digest"][7:19]: [e["slug"] for e in v["experiments"]] for v in repo["versions"]}
    assert groups == EXAMPLE_GROUPS
    assert list(groups) == list(EXAMPLE_GROUPS), "newest first"
    breaking = repo["versions"][2]
    assert breaking["breaking"] is True
    assert breaking["configShas"]["metric-hub"] == {
        "first": "487a50e4259df919a05610786dd9fd7a1b106547",
        "last": "6f1210910bc73f58eb0aaf165c61a41ae9ad1233",
        "count": 2,
    }
    assert document["unresolved"] == []


def test_report_text_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--config", CONFIG]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        "5 experiments from static enrollments in moz-fx-data-experiments.mozanalysis, as of "
    )
    rows = [line.split() for line in lines if line[:12] in EXAMPLE_GROUPS]
    assert [(r[0], r[4]) for r in rows] == [(d, str(len(s))) for d, s in EXAMPLE_GROUPS.items()]
    assert rows[2][-3:] == ["487a50e425..6f1210910b", "(2", "commits)"]
    assert any(line.split()[:3] == ["brand-new-experiment", "not", "enrolled"] for line in lines)


def test_report_what_if_breaking(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--config", CONFIG, "--what-if-breaking", "4bba4eebe859", "--json"]) == 0
    moves = json.loads(capsys.readouterr().out)["moves"]
    assert [(m["slug"], m["from"]["digest"][7:19], m["to"]["digest"][7:19]) for m in moves] == [
        ("my-experiment", "c71233c8ade3", "4bba4eebe859"),
        ("android-onboarding-notification-permission-v2", "c71233c8ade3", "4bba4eebe859"),
    ]
    assert main(["report", "--config", CONFIG, "--what-if-breaking", "4bba4eebe859"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("A 'breaking' tag on 4bba4eebe859 (uploaded 2024-05-28 11:10Z) would")
    assert "my-experiment" in text


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("0123456789ab", "is not an image of any configured repository"),
        ("927c94594edd", "multi-arch index"),
        ("latest", "needs an image digest"),
    ],
)
def test_report_what_if_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], digest: str, message: str
) -> None:
    assert main(["report", "--config", CONFIG, "--what-if-breaking", digest]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jetstream-pin report: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_the_command_starts_where_no_temporary_folder_is_usable() -> None:
    """The chart's certificate Jobs and `helm test` run the CLI on a read-only root
    filesystem with no /tmp volume: importing it must not need a temporary folder."""
    code = (
        "import tempfile\n"
        "tempfile.tempdir = None\n"
        "tempfile._candidate_tempdir_list = lambda: []\n"
        "from webhook.cli import main\n"
        "raise SystemExit(main(['--help']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "certs" in done.stdout


STAGING = "moz-fx-data-experiments.mozanalysis_staging"


def datasets_config(tmp_path: Path) -> str:
    """The example, with a second allowed dataset and Jetstream's discrete-metrics rule."""
    rule = {
        "commands": ["run"],
        "enrolledAtOrBefore": "2026-03-31T00:00:00Z",
        "add": ["--no-discrete-metrics"],
        "unlessPresent": ["--discrete-metrics"],
    }
    enrollments = {
        "type": "static",
        "allowedDatasets": ["moz-fx-data-experiments.mozanalysis", STAGING],
    }
    return str(example_config_file(tmp_path, enrollments=enrollments, enrollmentArgs=[rule]))


def test_explain_shows_the_dataset_and_what_enrollment_adds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = datasets_config(tmp_path)
    assert main(["explain", "--config", config, "--slug", "my-experiment", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["dataset"] == "moz-fx-data-experiments.mozanalysis"
    assert default["table"] == "enrollments_my_experiment"
    assert default["enrollmentArgs"] == [
        {
            "command": "run",
            "adds": ["--no-discrete-metrics"],
            "why": "enrolled 2023-01-01, on or before 2026-03-31",
            "unlessPresent": ["--discrete-metrics", "--no-discrete-metrics"],
            "text": "run: adds --no-discrete-metrics (enrolled 2023-01-01, on or before "
            "2026-03-31; not when the line has --discrete-metrics, --no-discrete-metrics)",
        }
    ]
    argv = ["explain", "--config", config, "--slug", "my-experiment", "--dataset", STAGING]
    assert main(argv) == 0
    text = capsys.readouterr().out.splitlines()
    assert f"dataset      {STAGING} (table enrollments_my_experiment)" in text
    assert f"enrollment time of my-experiment in {STAGING}" in "\n".join(text)
    assert (
        "arguments    run: adds --no-discrete-metrics (enrolled 2023-01-01, on or before "
        "2026-03-31; not when the line has --discrete-metrics, --no-discrete-metrics)" in text
    )
    assert main(["explain", "--config", config, "--slug", "brand-new-experiment"]) == 0
    assert "arguments    run: adds nothing (not enrolled: enrolls now)" in capsys.readouterr().out


def test_explain_refuses_a_dataset_off_the_allow_list_as_the_webhook_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = datasets_config(tmp_path)
    typo = "moz-fx-data-experiments.mozanalysis_typo"
    argv = ["explain", "--config", config, "--slug", "my-experiment", "--dataset", typo]
    assert main(argv) == 2
    err = capsys.readouterr().err
    pod = argo_pod("my-experiment")
    pod["spec"]["containers"][1]["command"] += ["--dataset_id=mozanalysis_typo"]
    answer = Wiring(load_config(config), record_events=False).admitter.admit(
        parse_review(review_of(pod))
    )
    status = answer.response["response"]["status"]
    assert status["code"] == 400
    assert err == f"jetstream-pin explain: {status['message'].removeprefix('jetstream-pin: ')}\n"
    assert "enrollments.allowedDatasets" in err
    assert main([*argv[:-1], "nodot"]) == 2
    assert "--dataset: 'nodot' is not 'project.dataset'" in capsys.readouterr().err
