"""The two HTTP headers the Registry v2 protocol leans on: `WWW-Authenticate` and `Link`.

Registries in the wild format both loosely (scheme in any case, parameters in
any order, quoted or not, extra spaces, several challenges in one header).
The `WWW-Authenticate` parser accepts everything RFC 9110 allows and ignores
what it cannot read instead of failing: an unreadable header means "no
challenge". `Link` is split into its links by `requests` (`Response.links`),
which reads the forms registries send (relative or absolute targets, several
links, `rel` quoted or bare); an unreadable one means "no next page". Either
way the caller reports what that leads to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SPACE = re.compile(r"[ \t]*")
# `Basic abc==`: a credential blob after the scheme, not parameters.
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*(?=[ \t]*(?:,|$))")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: `scheme` lowercased, parameter names lowercased."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


def parse_challenges(header: str | None) -> list[Challenge]:
    """Every challenge in a `WWW-Authenticate` value, in order."""
    if not header:
        return []
    challenges: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while pos < len(header):
        if header[pos] in ", \t":
            pos += 1
            continue
        match = _TOKEN.match(header, pos)
        if match is None:
            pos = _skip_item(header, pos)
            continue
        name = match.group()
        after = _SPACE.match(header, match.end())
        assert after is not None
        if after.end() < len(header) and header[after.end()] == "=" and challenges:
            value, pos = _value(header, after.end() + 1)
            challenges[-1][1].setdefault(name.lower(), value)
        elif after.end() < len(header) and header[after.end()] == "=":
            pos = _skip_item(header, after.end())  # a parameter before any scheme
        else:
            challenges.append((name.lower(), {}))
            blob = _TOKEN68.match(header, after.end())
            pos = blob.end() if blob else after.end()
    return [Challenge(scheme, params) for scheme, params in challenges]


def _value(header: str, pos: int) -> tuple[str, int]:
    space = _SPACE.match(header, pos)
    assert space is not None
    pos = space.end()
    if pos < len(header) and header[pos] == '"':
        chars: list[str] = []
        pos += 1
        while pos < len(header) and header[pos] != '"':
            if header[pos] == "\\" and pos + 1 < len(header):
                pos += 1
            chars.append(header[pos])
            pos += 1
        return "".join(chars), pos + 1
    end = pos
    while end < len(header) and header[end] not in ", \t":
        end += 1
    return header[pos:end], end


def _skip_item(header: str, pos: int) -> int:
    """Past the next comma (outside quotes): recovers from text we cannot read."""
    quoted = False
    while pos < len(header):
        char = header[pos]
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            return pos + 1
        pos += 1
    return pos


def bearer_challenge(header: str | None) -> Challenge | None:
    return next((c for c in parse_challenges(header) if c.scheme == "bearer"), None)


def wants_basic(header: str | None) -> bool:
    return any(c.scheme == "basic" for c in parse_challenges(header))


def next_link(response: requests.Response) -> str | None:
    """The `rel="next"` target of the response's `Link` header, resolved against its URL.

    `requests` splits the header into its links (`Response.links`); a `rel`
    may be spelt in capitals or list several relations (`rel="last next"`).
    """
    for link in response.links.values():
        params = {name.lower(): value for name, value in link.items()}
        if "next" in params.get("rel", "").lower().split():
            target = params.get("url", "")
            return urljoin(response.url, target) if target else None
    return None
