"""WWW-Authenticate and Link parsing: the loose forms registries actually send."""

from __future__ import annotations

import pytest
import requests

from webhook.sources.headers import (
    Challenge,
    bearer_challenge,
    next_link,
    parse_challenges,
    wants_basic,
)

REALM = "https://auth.example.com/token"


@pytest.mark.parametrize(
    "header",
    [
        f'Bearer realm="{REALM}",service="registry.example.com",scope="repository:a/b:pull"',
        f'bearer realm="{REALM}", service="registry.example.com", scope="repository:a/b:pull"',
        f'BEARER  scope="repository:a/b:pull" ,service=registry.example.com,realm="{REALM}"',
        f'Bearer Realm = "{REALM}" , SERVICE = "registry.example.com",scope=repository:a/b:pull',
        f'Basic realm="basic", Bearer realm="{REALM}",service="registry.example.com",'
        'scope="repository:a/b:pull"',
    ],
)
def test_bearer_challenge_is_read_loosely(header: str) -> None:
    challenge = bearer_challenge(header)
    assert challenge == Challenge(
        "bearer",
        {"realm": REALM, "service": "registry.example.com", "scope": "repository:a/b:pull"},
    )


def test_quoted_values_keep_commas_and_escapes() -> None:
    (challenge,) = parse_challenges(
        r'Bearer realm="https://a/t",scope="repository:x:pull,push",error="say \"no\""'
    )
    assert challenge.params["scope"] == "repository:x:pull,push"
    assert challenge.params["error"] == 'say "no"'


def test_several_challenges_and_token68() -> None:
    challenges = parse_challenges('Negotiate abc==, Basic realm="r", Bearer realm="https://t"')
    assert [c.scheme for c in challenges] == ["negotiate", "basic", "bearer"]
    assert challenges[0].params == {}
    assert challenges[1].params == {"realm": "r"}


@pytest.mark.parametrize("header", [None, "", ",,,", '="x"', "Bearer", 'realm="x"'])
def test_unreadable_or_bare_headers_give_no_realm(header: str | None) -> None:
    challenge = bearer_challenge(header)
    assert challenge is None or "realm" not in challenge.params


def test_basic_only() -> None:
    assert wants_basic('Basic realm="Registry Realm"')
    assert bearer_challenge('Basic realm="Registry Realm"') is None
    assert not wants_basic(f'Bearer realm="{REALM}"')


BASE = "https://registry.example.com/v2/a/b/tags/list?n=2"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('</v2/a/b/tags/list?n=2&last=x>; rel="next"',
         "https://registry.example.com/v2/a/b/tags/list?n=2&last=x"),
        ("</v2/a/b/tags/list?n=2&last=x>;rel=next",
         "https://registry.example.com/v2/a/b/tags/list?n=2&last=x"),
        ('<https://cdn.example.com/p?last=y> ; REL="Next"', "https://cdn.example.com/p?last=y"),
        ('<?n=2&last=z>; rel="next"', "https://registry.example.com/v2/a/b/tags/list?n=2&last=z"),
        ('</first>; rel="prev", </second>; rel="next"', "https://registry.example.com/second"),
        ('</both>; rel="last next"', "https://registry.example.com/both"),
        ('</prev>; rel="prev"', None),
        ("garbage", None),
        ("", None),
        (None, None),
        ('<>; rel="next"', None),
    ],
)  # fmt: skip
def test_next_link(header: str | None, expected: str | None) -> None:
    response = requests.Response()
    response.url = BASE
    if header is not None:
        response.headers["Link"] = header
    assert next_link(response) == expected
