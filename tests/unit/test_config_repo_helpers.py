"""The pure helpers of the config-repo sources: redaction, mirror names, GitHub times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from harness.builders import utc
from webhook.sources.git import (
    GitConfigHistory,
    git_environment,
    mirror_name,
    redact,
    url_secrets,
)
from webhook.sources.github import rfc3339


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://tok@github.com/m/h", "https://***@github.com/m/h"),
        ("fatal: 'https://u:p%40ss@h/x' failed", "fatal: 'https://***@h/x' failed"),
        ("ssh://git@github.com/m/h.git", "ssh://***@github.com/m/h.git"),
        ("git@github.com:m/h.git", "git@github.com:m/h.git"),  # a user name, never a secret
        ("/srv/git/metric-hub", "/srv/git/metric-hub"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_url_secrets_cover_raw_and_decoded_forms() -> None:
    secrets = url_secrets("https://robot:p%40ss@h/x")
    assert set(secrets) == {"robot:p%40ss", "robot:p@ss", "p%40ss", "p@ss", "robot"}
    assert secrets[0] == "robot:p%40ss"  # longest first, so no part is left half-replaced
    assert url_secrets("/srv/git/x") == []
    assert url_secrets("git@github.com:m/h") == []


def test_mirror_names_are_readable_unique_and_secret_free() -> None:
    name = mirror_name("https://tok3n@github.com/mozilla/metric-hub.git", "main")
    assert name.startswith("metric-hub-")
    assert name.endswith(".git")
    assert "tok3n" not in name
    assert name != mirror_name("https://github.com/mozilla/metric-hub.git", "release")
    assert name != mirror_name("https://github.com/someone/metric-hub.git", "main")
    assert mirror_name("https://other@github.com/mozilla/metric-hub.git", "main") == name
    assert mirror_name("/", "main").startswith("repo-")


def test_git_runs_without_user_config_or_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    monkeypatch.setenv("GIT_ASKPASS", "/bin/echo")
    monkeypatch.setenv("https_proxy", "http://proxy:3128")
    env = git_environment()
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert "GIT_DIR" not in env
    assert "GIT_ASKPASS" not in env
    assert env["https_proxy"] == "http://proxy:3128"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (utc("2023-02-01T00:00:00Z"), "2023-02-01T00:00:00Z"),
        (utc("2023-02-01T00:00:00.999Z"), "2023-02-01T00:00:00Z"),
        (datetime(2023, 2, 1, 2, tzinfo=timezone(timedelta(hours=2))), "2023-02-01T00:00:00Z"),
        (utc("1960-01-01T00:00:00Z"), "1970-01-01T00:00:00Z"),
        (utc("2150-01-01T00:00:00Z"), "2099-12-31T23:59:59Z"),
    ],
)
def test_github_times(when: datetime, expected: str) -> None:
    assert rfc3339(when) == expected


def test_github_times_need_a_zone() -> None:
    with pytest.raises(ValueError, match="without a zone"):
        rfc3339(datetime(2023, 1, 1))


def test_git_messages_keep_the_cause_and_drop_advice_and_secrets() -> None:
    source = GitConfigHistory("https://robot:p%40ss@example.com/m/h.git")
    stderr = (
        "ssh: connect to host example.com port 22: Connection refused\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\nand the repository exists.\n"
    )
    assert source._last_error_line(stderr) == (
        "ssh: connect to host example.com port 22: Connection refused"
    )
    leaky = "fatal: unable to access 'https://robot:p@ss@example.com/m/h.git/': 403\nhint: x\n"
    assert (
        source._last_error_line(leaky) == "unable to access 'https://***@example.com/m/h.git/': 403"
    )
    assert source._last_error_line("") == "no error message"
