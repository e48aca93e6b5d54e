"""The status page served by the real webhook (gunicorn, TLS, two ports), seen by a real browser.

Decisions are posted to the admission port, each on a new connection so the
kernel spreads them over the worker processes; the page, served by whichever
worker accepts it, must show every one of them. Headless Chromium (Debian's
`chromium`) then loads the page over HTTPS, trusting only this test's serving
key, takes screenshots at 1280 px and at phone width, and dumps the DOM.

Set JETSTREAM_PIN_SCREENSHOTS=DIR to keep the screenshots (`scripts/screenshot`
writes docs/status-page.png this way).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.builders import (
    HOSTILE_PENDING_SLUG,
    HOSTILE_SLUG,
    argo_pod,
    hostile_static_data,
    review_of,
)
from harness.servers import Server, example_config, running_server
from tests.support.dom import parse
from webhook import certs

SCREENSHOTS_ENV = "JETSTREAM_PIN_SCREENSHOTS"
IMAGES = 6  # candidate images of the example data
EXPERIMENTS = 7  # 4 enrolled, 1 not enrolled, 2 listed slugs that are markup
DESKTOP = (1280, 2040)
PHONE = (390, 3960)
POSTED = [
    "my-experiment",
    "firefox-desktop-private-browsing-redesign-rollout",
    "brand-new-experiment",
    "android-onboarding-notification-permission-v2",
    "long-running-study",
    "never-heard-of-it",
]
DRY_RUN_ONLY = "dry-run-only-experiment"


@pytest.fixture(scope="module")
def status_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = Path(tmp_path_factory.mktemp("status"))
    config = example_config(workdir, static=str(hostile_static_data(workdir / "data")))
    with running_server(workdir, config) as server:
        _post_decisions(server)
        yield server


def _post(server: Server, pod: dict[str, object], dry_run: bool = False) -> None:
    with requests.Session() as fresh:  # a new connection: any worker may take it
        fresh.trust_env = False
        reply = fresh.post(
            f"{server.url}/mutate",
            json=review_of(pod, dry_run=dry_run),
            verify=str(server.ca_file),
            timeout=10,
        )
        assert reply.status_code == 200


def _post_decisions(server: Server) -> None:
    _post(server, argo_pod(DRY_RUN_ONLY), dry_run=True)
    for slug in POSTED:
        _post(server, argo_pod(slug))
    _post(server, argo_pod("x", labels={"jetstream/experiment-slug": HOSTILE_SLUG}))


def test_decisions_directory_is_private_and_removed_at_exit(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with running_server(tmp_path / "server", env={"TMPDIR": str(scratch)}) as server:
        _post(server, argo_pod("my-experiment"))
        (runtime,) = scratch.glob("jetstream-pin-*")
        directory = runtime / "decisions"
        assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        deadline = time.monotonic() + 10  # written in the background, off the request path
        while not list(directory.glob("decisions-*.jsonl")):
            assert time.monotonic() < deadline, "no decisions file appeared"
            time.sleep(0.05)
        (file,) = directory.glob("decisions-*.jsonl")
        assert "my-experiment" in file.read_text()
    assert not runtime.exists(), "the master removes it when it exits"


def test_a_full_decisions_directory_leaves_the_page_up_and_says_why(tmp_path: Path) -> None:
    """Writes to the directory fail with ENOSPC (the worker's file is /dev/full): the page
    and its JSON still render, saying recent decisions are unavailable and why."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    config = example_config(tmp_path / "server")
    config["server"].update(workers=1)
    with running_server(tmp_path / "server", config, env={"TMPDIR": str(scratch)}) as server:
        (runtime,) = scratch.glob("jetstream-pin-*")
        (worker,) = server.workers()
        (runtime / "decisions" / f".decisions-{worker}.jsonl.tmp").symlink_to("/dev/full")
        _post(server, argo_pod("my-experiment"))  # a decision that cannot be written
        page = server.session.get(f"{server.admin_url}/status", timeout=10)
        body = server.session.get(f"{server.admin_url}/status.json", timeout=10)
        admitted = server.post_review(review_of(argo_pod("long-running-study")))
    assert page.status_code == 200, page.text[:300]
    assert "Recent decisions are unavailable" in page.text
    assert "No space left on device" in page.text
    assert body.status_code == 200
    assert "No space left on device" in body.json()["recentDecisionsError"]
    assert body.json()["recentDecisions"] == []
    assert body.json()["report"] is not None, body.json()["error"]
    assert admitted.status_code == 200
    assert "patch" in admitted.json()["response"]


def test_admin_pages_only_on_the_admin_port(status_server: Server) -> None:
    session = status_server.session
    page = session.get(f"{status_server.admin_url}/status", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert session.get(f"{status_server.url}/status", timeout=10).status_code == 404
    mutate = session.post(
        f"{status_server.admin_url}/mutate", json=review_of(argo_pod()), timeout=10
    )
    assert mutate.status_code == 404
    with pytest.raises(requests.ConnectionError):
        requests.get(status_server.admin_url.replace("https:", "http:") + "/status", timeout=5)


def test_recent_decisions_from_every_worker(status_server: Server) -> None:
    expected = sorted([*POSTED, HOSTILE_SLUG])
    deadline = time.monotonic() + 10  # each worker writes its file within a quarter second
    while True:
        url = f"{status_server.admin_url}/status.json"
        body = status_server.session.get(url, timeout=10).json()
        slugs = [d["slug"] for d in body["recentDecisions"]]
        if sorted(slugs) == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(slugs) == sorted([*POSTED, HOSTILE_SLUG])
    assert DRY_RUN_ONLY not in slugs
    outcomes = {d["slug"]: (d["outcome"], d["reason"]) for d in body["recentDecisions"]}
    assert outcomes["my-experiment"] == ("patched", "breaking")
    assert outcomes["never-heard-of-it"] == ("patched", "not-enrolled")
    assert outcomes[HOSTILE_SLUG] == ("refused", "")


# --- the browser ---------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "the status page test needs Debian's chromium: apt-get install -y chromium "
            "(scripts/test installs it)"
        )
    return found


def spki_pin(cert_file: Path) -> str:
    """What --ignore-certificate-errors-spki-list takes: base64(sha256(SubjectPublicKeyInfo))."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@dataclass
class Browser:
    binary: str
    pin: str
    scratch: Path

    def run(self, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
        profile = self._profile()
        done = subprocess.run(
            [
                self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--ignore-certificate-errors-spki-list={self.pin}",
                *extra, url,
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    def _profile(self) -> Path:
        count = len(list(self.scratch.glob("profile-*")))
        profile = self.scratch / f"profile-{count}"
        profile.mkdir()
        return profile


@pytest.fixture(scope="module")
def browser(status_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Browser:
    pin = spki_pin(status_server.cert_dir / certs.CERT_FILE)
    return Browser(chromium(), pin, Path(tmp_path_factory.mktemp("chromium")))


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_chromium_sees_the_timeline_and_escaped_slugs(
    status_server: Server, browser: Browser
) -> None:
    done = browser.run(f"{status_server.admin_url}/status", "--dump-dom")
    document = parse(done.stdout)
    assert "jetstream-pin status" in document.text, f"not the status page: {done.stdout[:500]}"
    assert len(document.find("g", "release")) == IMAGES
    points = document.find("circle", "experiment")
    assert len(points) == EXPERIMENTS
    assert {p.attrs["data-slug"] for p in points} >= {HOSTILE_SLUG, HOSTILE_PENDING_SLUG}
    assert document.find("script") == [], "a slug became a script element"
    assert document.find("img") == [], "a slug became an img element"
    assert HOSTILE_SLUG in document.text
    assert HOSTILE_PENDING_SLUG in document.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in done.stdout
    for slug in POSTED:
        assert slug in document.text


@pytest.mark.parametrize(("size", "name"), [(DESKTOP, "status-page.png"),
                                            (PHONE, "status-page-phone.png")])  # fmt: skip
def test_chromium_screenshots(
    status_server: Server, browser: Browser, tmp_path: Path, size: tuple[int, int], name: str
) -> None:
    shot = tmp_path / name
    browser.run(
        f"{status_server.admin_url}/status",
        f"--screenshot={shot}",
        f"--window-size={size[0]},{size[1]}",
    )
    assert png_size(shot) == size
    assert shot.stat().st_size > 40_000, "the screenshot looks empty"
    keep = os.environ.get(SCREENSHOTS_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / name)
