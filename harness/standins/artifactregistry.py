"""A stand-in of Artifact Registry's REST `dockerImages.list`, for the source tests and bench.

One repository (`projects/P/locations/L/repositories/R`) and its `images`
(the API's `DockerImage` objects, built by `docker_image`). It pages as Google
does (`pageSize`, `pageToken`, `nextPageToken`), omits `dockerImages` when
there is none, and, given the `google` token stand-in, accepts only the access
tokens it issued (401 with Google's body otherwise); without it, anonymous
clients are served. `delay` slows every answer (bursts, bench).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from harness.builders import digest
from harness.standins.base import Reply, Request, StandInServer, json_reply
from harness.standins.google import GoogleStandIn

PROJECT, LOCATION, REPOSITORY, IMAGE = "moz-fx-data-experiments", "us", "gcr.io", "jetstream"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}/repositories/{REPOSITORY}"
LIST_PATH = f"/v1/{PARENT}/dockerImages"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def docker_image(
    image: str, image_digest: str, uploaded: str, *tags: str, media_type: str = DOCKER_MANIFEST
) -> dict[str, Any]:
    """One `DockerImage` of the repository as the API lists it (image name URL-encoded)."""
    item: dict[str, Any] = {
        "name": f"{PARENT}/dockerImages/{quote(image, safe='')}@{image_digest}",
        "uri": f"http://127.0.0.1:9/{PROJECT}/{REPOSITORY}/{image}@{image_digest}",
        "imageSizeBytes": "123456",
        "uploadTime": uploaded,
        "mediaType": media_type,
        "buildTime": "2020-01-01T00:00:00Z",
        "updateTime": uploaded,
    }
    if tags:
        item["tags"] = list(tags)
    return item


def releases(count: int) -> list[dict[str, Any]]:
    """`count` jetstream images 20 days apart from 2023-01-01; release 20 is `breaking`."""
    start = datetime(2023, 1, 1, 13, tzinfo=UTC)
    return [
        docker_image(
            IMAGE,
            digest(f"release-{n}"),
            (start + timedelta(days=20 * n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            f"v{n}",
            *(["breaking"] if n == 20 else []),
        )
        for n in range(count)
    ]


class ArtifactRegistryStandIn:
    """`dockerImages.list` of one repository: `images` (default: 30 `releases`), in pages
    of at most `page_size` (the client's `pageSize` caps it too)."""

    def __init__(
        self,
        images: list[dict[str, Any]] | None = None,
        google: GoogleStandIn | None = None,
        page_size: int = 1000,
    ) -> None:
        self.images = releases(30) if images is None else images
        self.google = google
        self.page_size = page_size
        self.delay = 0.0

    def __call__(self, request: Request) -> Reply:
        reply = self._answer(request)
        reply.delay = self.delay
        return reply

    def _answer(self, request: Request) -> Reply:
        if self.google is not None:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.google.issued:
                return json_reply(
                    {"error": {"code": 401, "message": "Request had invalid authentication "
                               "credentials.", "status": "UNAUTHENTICATED"}}, 401,
                )  # fmt: skip
        if request.path != LIST_PATH:
            return json_reply({"error": {"code": 404, "status": "NOT_FOUND"}}, 404)
        size = min(int(request.param("pageSize") or 50), self.page_size)
        start = int(request.param("pageToken") or 0)
        body: dict[str, Any] = {}
        if self.images[start : start + size]:
            body["dockerImages"] = self.images[start : start + size]
        if start + size < len(self.images):
            body["nextPageToken"] = str(start + size)
        return json_reply(body)

    def source(self, url: str) -> dict[str, Any]:
        """The `images[].history` config for this stand-in (anonymous)."""
        return {
            "type": "artifactregistry", "project": PROJECT, "location": LOCATION,
            "repository": REPOSITORY, "image": IMAGE, "credentials": "anonymous",
            "endpoint": url, "dockerEndpoint": url, "timeoutSeconds": 5,
        }  # fmt: skip


def listings(stand_in: StandInServer) -> int:
    """How many `dockerImages.list` pages the stand-in served."""
    return sum(1 for r in stand_in.calls() if r.path == LIST_PATH)
