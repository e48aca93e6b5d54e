"""An anonymous `dockerImages.list` stand-in with a configurable delay (bursts, bench)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from harness.builders import digest
from harness.standins.base import Reply, Request, StandInServer, json_reply

LIST_SUFFIX = "/dockerImages"


class ArtifactRegistryStandIn:
    """`releases` jetstream images 20 days apart from 2023-01-01; release 20 is `breaking`."""

    def __init__(self, releases: int = 30) -> None:
        start = datetime(2023, 1, 1, 13, tzinfo=UTC)
        self.delay = 0.0
        self.images: list[dict[str, Any]] = []
        for n in range(releases):
            tags = [f"v{n}"] + (["breaking"] if n == 20 else [])
            self.images.append(
                {
                    "name": "projects/moz-fx-data-experiments/locations/us/repositories/gcr.io/"
                    f"dockerImages/jetstream@{digest(f'release-{n}')}",
                    "tags": tags,
                    "uploadTime": (start + timedelta(days=20 * n)).strftime(
                        "%Y-%m-%dT%H:%M:%S.%fZ"
                    ),
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                }
            )

    def route(self, request: Request) -> Reply:
        if not request.path.endswith(LIST_SUFFIX):
            return json_reply({"error": {"code": 404, "status": "NOT_FOUND"}}, 404)
        reply = json_reply({"dockerImages": self.images})
        reply.delay = self.delay
        return reply

    def source(self, url: str) -> dict[str, Any]:
        """The `images[].history` config for this stand-in."""
        return {
            "type": "artifactregistry", "project": "moz-fx-data-experiments",
            "location": "us", "repository": "gcr.io", "image": "jetstream",
            "credentials": "anonymous", "endpoint": url, "dockerEndpoint": url,
            "timeoutSeconds": 5,
        }  # fmt: skip


def listings(stand_in: StandInServer) -> int:
    return sum(1 for r in stand_in.calls() if r.path.endswith(LIST_SUFFIX))
