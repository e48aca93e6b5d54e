"""The shared HTTP client against a real local server: every fault becomes a SourceError."""

from __future__ import annotations

import time

import pytest

from harness.standins.base import Reply, Request, json_reply, serving
from webhook.sources import SourceError
from webhook.sources.google import GoogleCredentials
from webhook.sources.http import HttpClient, host_of


def route(request: Request) -> Reply:
    if request.path == "/ok":
        return json_reply({"fine": True})
    if request.path == "/redirect":
        return Reply(302, b"", {"Location": "http://127.0.0.2:1/elsewhere"})
    return json_reply({"error": "secret-token-in-body"}, int(request.path.strip("/") or 500))


def bearer() -> dict[str, str]:
    return {"Authorization": "Bearer s3cret"}


@pytest.mark.parametrize(
    ("path", "cause"),
    [
        ("/401", "HTTP 401 from .*: not authorized"),
        ("/429", "rate limited"),
        ("/redirect", "HTTP 302 .*unexpected redirect"),
    ],
)
def test_faults_are_source_errors(path: str, cause: str) -> None:
    with serving(route) as stand_in:
        client = HttpClient("test source", stand_in.url, 0.3, auth=bearer)
        with pytest.raises(SourceError, match=cause) as caught:
            client.get_json(path)
    assert caught.value.source == "test source"
    assert "s3cret" not in str(caught.value)
    assert "secret-token-in-body" not in str(caught.value)


def test_credentials_only_to_configured_hosts() -> None:
    with serving(route) as home, serving(route) as elsewhere:
        client = HttpClient("s", home.url, 2.0, auth=bearer)
        assert client.get_json("/ok") == {"fine": True}
        client.get_json(f"{elsewhere.url}/ok")
        assert home.calls()[0].headers["authorization"] == "Bearer s3cret"
        assert "authorization" not in elsewhere.calls()[0].headers
        trusting = HttpClient("s", home.url, 2.0, auth=bearer, credential_hosts=[elsewhere.url])
        trusting.get_json(f"{elsewhere.url}/ok")
        assert elsewhere.calls()[1].headers["authorization"] == "Bearer s3cret"


def test_host_of() -> None:
    assert host_of("HTTPS://Example.COM:443/v2/x?y") == "https://example.com:443"


def test_anonymous_google_credentials_send_nothing() -> None:
    assert GoogleCredentials("s", "anonymous").headers() == {}


def test_missing_default_credentials_is_a_clear_source_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(SourceError, match="no Google Application Default Credentials"):
        GoogleCredentials("bigquery enrollments", "default").token()


def test_a_dripping_answer_ends_at_the_timeout_in_all() -> None:
    """Each gap (0.1 s) is far under the timeout; the whole answer (4 s) is not."""
    drip = Reply(200, b" " * 398 + b"{}", {"Content-Type": "application/json"}, drip=0.1)
    with serving(lambda _: drip) as stand_in:
        client = HttpClient("test source", stand_in.url, 0.5)
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"timed out after 0.5s"):
            client.get_json("/drip")
        elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.5, f"took {elapsed:.2f}s"
