"""A Registry v2 stand-in: what the real registry cannot be told to do.

The real `docker-registry` covers the formats; this route covers the rest of
the protocol: `Link` paging that honours `n`/`last`, the Bearer-token
challenge with a token endpoint that checks Basic credentials, Basic-only
registries, and Google's `tags/list` extension (`manifest` map with
`timeUploadedMs`). It serves the same documents `harness/dockerregistry.py`
builds.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.dockerregistry import Pushed, canonical, image_document, index_document, sha256
from harness.standins.base import Reply, Request, json_reply

Auth = Literal["none", "bearer", "basic"]


@dataclass
class RegistryStandIn:
    """One repository `name`; `auth` chooses the challenge, `realm` overrides the token URL."""

    name: str
    auth: Auth = "none"
    user: str = "robot"
    password: str = "pa55-w0rd-secret"
    anonymous_tokens: bool = False
    realm: str | None = None
    page_size: int | None = None
    google: bool = False
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    uploaded_ms: dict[str, Any] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)
    # Passwords accepted besides `password` (GCR: every Google access token issued).
    accepted_passwords: list[str] = field(default_factory=list)
    _serial: Any = field(default_factory=itertools.count)

    # -- content ---------------------------------------------------------------

    def add_image(
        self, label: str, created: str | None, tags: Sequence[str] = (), uploaded_ms: Any = None,
        **options: Any,
    ) -> Pushed:  # fmt: skip
        document, blobs = image_document(label, created, **options)
        for blob in blobs:
            self.blobs[sha256(blob)] = blob
        return self.add_manifest(document, tags, uploaded_ms)

    def add_index(
        self, children: Sequence[Pushed], tags: Sequence[str], uploaded_ms: Any = None,
        **options: Any,
    ) -> Pushed:  # fmt: skip
        return self.add_manifest(index_document(children, **options), tags, uploaded_ms)

    def add_manifest(
        self, document: Mapping[str, Any], tags: Sequence[str], uploaded_ms: Any = None
    ) -> Pushed:
        body = canonical(document)
        pushed = Pushed(sha256(body), str(document["mediaType"]), len(body))
        self.manifests[pushed.digest] = (pushed.media_type, body)
        for tag in tags:
            self.tags[tag] = pushed.digest
        if uploaded_ms is not None:
            self.uploaded_ms[pushed.digest] = uploaded_ms
        return pushed

    # -- the wire --------------------------------------------------------------

    def __call__(self, request: Request) -> Reply:
        if request.path == "/token":
            return self._token(request)
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        prefix = f"/v2/{self.name}/"
        if not request.path.startswith(prefix):
            return json_reply({"errors": [{"code": "NAME_UNKNOWN"}]}, 404)
        rest = request.path[len(prefix) :]
        if rest == "tags/list":
            return self._tags(request)
        kind, _, reference = rest.partition("/")
        if kind == "manifests":
            return self._manifest(reference, request)
        if kind == "blobs" and reference in self.blobs:
            return Reply(200, self.blobs[reference], {"Content-Type": "application/octet-stream"})
        return json_reply({"errors": [{"code": "NOT_FOUND"}]}, 404)

    def _tags(self, request: Request) -> Reply:
        names = sorted(self.tags)
        last = request.param("last")
        if last is not None:
            names = [n for n in names if n > last]
        headers: dict[str, str] = {}
        size = int(request.param("n") or 0) or self.page_size
        if self.page_size is not None and size is not None:
            size = min(size, self.page_size)
        if size is not None and len(names) > size:
            names = names[:size]
            headers["Link"] = f'</v2/{self.name}/tags/list?n={size}&last={names[-1]}>; rel="next"'
        body: dict[str, Any] = {"name": self.name, "tags": names}
        if self.google:
            body["child"] = []
            body["manifest"] = {
                digest: {
                    "imageSizeBytes": "1234",
                    "layerId": "",
                    "mediaType": media_type,
                    "tag": sorted(t for t, d in self.tags.items() if d == digest),
                    "timeCreatedMs": "0",
                    "timeUploadedMs": self.uploaded_ms.get(digest, "0"),
                }
                for digest, (media_type, _) in self.manifests.items()
            }
        reply = json_reply(body)
        reply.headers = {**reply.headers, **headers}
        return reply

    def _manifest(self, reference: str, request: Request) -> Reply:
        digest = self.tags.get(reference, reference)
        if digest not in self.manifests:
            return json_reply({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, 404)
        media_type, body = self.manifests[digest]
        accepted = request.headers.get("accept", "")
        if media_type not in accepted:
            return json_reply({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, 404)
        return Reply(200, body, {"Content-Type": media_type, "Docker-Content-Digest": digest})

    # -- authentication ----------------------------------------------------------

    def basic(self, password: str | None = None) -> str:
        login = f"{self.user}:{self.password if password is None else password}"
        return "Basic " + base64.b64encode(login.encode()).decode()

    def _basic_ok(self, given: str | None) -> bool:
        passwords = [self.password, *self.accepted_passwords]
        return given is not None and any(given == self.basic(p) for p in passwords)

    def _check_auth(self, request: Request) -> Reply | None:
        given = request.headers.get("authorization")
        if self.auth == "none":
            return None
        if self.auth == "basic":
            if self._basic_ok(given):
                return None
            return json_reply({"errors": [{"code": "UNAUTHORIZED"}]}, 401,
                              **{"WWW-Authenticate": 'Basic realm="standin"'})  # fmt: skip
        if given is not None and given.removeprefix("Bearer ") in self.issued:
            return None
        realm = self.realm or f"http://{request.headers['host']}/token"
        challenge = f'Bearer realm="{realm}",service="standin",scope="repository:{self.name}:pull"'
        return json_reply({"errors": [{"code": "UNAUTHORIZED"}]}, 401,
                          **{"WWW-Authenticate": challenge})  # fmt: skip

    def _token(self, request: Request) -> Reply:
        given = request.headers.get("authorization")
        if self._basic_ok(given) or (given is None and self.anonymous_tokens):
            token = f"registry-token-{next(self._serial)}"
            self.issued.append(token)
            return json_reply({"token": token, "expires_in": 300})
        return json_reply({"errors": [{"code": "UNAUTHORIZED"}]}, 401)
