"""Cold and warm `images()` of the oci source against the real docker-registry.

Run: .venv/bin/python -m bench.oci_history [TAGS]
Pushes TAGS images (default 50, one tag each) to a fresh registry on
loopback, then times one cold call (every manifest and config blob fetched)
and one warm call (tag list and manifests only; the digests' facts are
remembered). A measurement, not a test: nothing here asserts a duration.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from harness.dockerregistry import Pusher, running_registry
from webhook.config import OciSource
from webhook.sources.oci import OciImages


def main(tags: int) -> None:
    with tempfile.TemporaryDirectory() as workdir, running_registry(Path(workdir)) as registry:
        pusher = Pusher(registry.url, "bench/jetstream")
        for n in range(tags):
            pusher.image(f"image {n}", f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}Z", [f"v{n}"])
        source = OciImages("127.0.0.1/bench/jetstream", OciSource("oci", endpoint=registry.url))
        for label in ("cold", "warm", "warm"):
            start = time.perf_counter()
            images = source.images()
            elapsed = time.perf_counter() - start
            print(f"{label}: {len(images)} images in {elapsed * 1000:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
