"""Certificate rotation on the running server: no restart, no dropped connection.

Both ways a certificate changes on disk are exercised: a rewrite of the files
in place, and the kubelet's way for Secret volumes (files are symlinks through
`..data`, which is swapped atomically to a new timestamped directory). While
the files change, a client keeps opening new connections (none may fail), a
keep-alive connection and a half-sent request opened before the change finish
on the old certificate, and every connection opened afterwards is served the
new one (compared by SHA-256 fingerprint of the peer certificate).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from harness.builders import argo_pod, review_of
from harness.servers import Server, example_config, running_server
from webhook import certs

Rotate = Callable[[Path, certs.Bundle], None]


def write_in_place(directory: Path, bundle: certs.Bundle) -> None:
    """Overwrite the same files (same inodes), the way an editor or `cp` would."""
    for name, data in (
        (certs.CA_FILE, bundle.ca_pem),
        (certs.CERT_FILE, bundle.cert_pem),
        (certs.KEY_FILE, bundle.key_pem),
    ):
        with (directory / name).open("r+b" if (directory / name).exists() else "wb") as handle:
            handle.truncate(0)
            handle.write(data)


def write_like_kubelet(directory: Path, bundle: certs.Bundle) -> None:
    """A Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>, swapped by rename."""
    directory.mkdir(parents=True, exist_ok=True)
    version = directory / f"..{os.urandom(6).hex()}"
    certs.write(bundle, version)
    staged = directory / "..data_tmp"
    staged.symlink_to(version.name)
    os.replace(staged, directory / "..data")
    for name in (certs.CA_FILE, certs.CERT_FILE, certs.KEY_FILE):
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


def fingerprint(der: bytes | None) -> str:
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def client_context(*cas: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata="".join(ca.decode() for ca in cas))
    context.check_hostname = True
    return context


def peer_of_new_connection(server: Server, context: ssl.SSLContext) -> str:
    host, port = server.url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return fingerprint(tls.getpeercert(binary_form=True))


@pytest.mark.parametrize(
    "rotate", [write_in_place, write_like_kubelet], ids=["in place", "kubelet"]
)
def test_rotation(tmp_path: Path, rotate: Rotate) -> None:
    old = certs.issue(["localhost"], ["127.0.0.1"])
    new = certs.issue(["localhost"], ["127.0.0.1"])
    old_print = fingerprint(ssl.PEM_cert_to_DER_cert(old.cert_pem.decode()))
    new_print = fingerprint(ssl.PEM_cert_to_DER_cert(new.cert_pem.decode()))
    cert_dir = tmp_path / "tls"
    cert_dir.mkdir()
    rotate(cert_dir, old)
    config = example_config(tmp_path)
    with running_server(tmp_path / "server", config | {"server": config["server"] | {
        "certFile": str(cert_dir / certs.CERT_FILE), "keyFile": str(cert_dir / certs.KEY_FILE),
    }}, certs_ready=True) as server:  # fmt: skip
        host, port = server.url.removeprefix("https://").split(":")
        assert peer_of_new_connection(server, client_context(old.ca_pem)) == old_print

        kept = http.client.HTTPSConnection(host, int(port), context=client_context(old.ca_pem))
        kept.request("GET", "/healthz")
        assert kept.getresponse().read() == b'{"status": "ok"}'
        kept_socket = kept.sock

        body = json.dumps(review_of(argo_pod("my-experiment"))).encode()
        pending = client_context(old.ca_pem).wrap_socket(
            socket.create_connection((host, int(port)), timeout=10), server_hostname=host
        )
        pending.sendall(
            f"POST /mutate HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body[: len(body) // 2]
        )

        failures: list[BaseException] = []
        answered = 0
        stop = threading.Event()

        def keep_asking() -> None:
            nonlocal answered
            both = client_context(old.ca_pem, new.ca_pem)
            for _ in range(2000):  # bounded; stops as soon as the test has seen enough
                if stop.is_set():
                    return
                try:
                    peer_of_new_connection(server, both)
                    answered += 1
                except (OSError, ssl.SSLError) as err:
                    failures.append(err)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        rotate(cert_dir, new)
        seen_after = {peer_of_new_connection(server, client_context(new.ca_pem)) for _ in range(8)}
        stop.set()
        asker.join(30)

        pending.sendall(body[len(body) // 2 :])
        reply = pending.makefile("rb").read()
        pending.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        answer = json.loads(reply.partition(b"\r\n\r\n")[2])
        assert answer["response"]["allowed"] is True

        kept.request("GET", "/healthz")
        assert kept.getresponse().read() == b'{"status": "ok"}'
        assert kept.sock is kept_socket, "the keep-alive connection was not dropped"
        assert fingerprint(kept.sock.getpeercert(binary_form=True)) == old_print
        kept.close()

        assert failures == []
        assert answered > 0
        assert seen_after == {new_print}
        with pytest.raises(ssl.SSLCertVerificationError):
            peer_of_new_connection(server, client_context(old.ca_pem))
        print(
            f"rotation ({rotate.__name__}): before {old_print[:16]}, after {new_print[:16]}; "
            f"{answered} new connections during and just after the swap, 0 failed; keep-alive and "
            "half-sent request finished on the old certificate"
        )


BROKEN = {
    "malformed tls.crt": lambda good: certs.Bundle(
        good.ca_pem,
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        good.key_pem,
    ),
    "key of another pair": lambda good: certs.Bundle(
        good.ca_pem, good.cert_pem, certs.issue(["localhost"]).key_pem
    ),
}


def scrape(server: Server) -> dict[str, float]:
    """The samples of /metrics on a new connection (any worker's), by name and labels."""
    with requests.Session() as fresh:
        fresh.trust_env = False
        text = fresh.get(f"{server.admin_url}/metrics", verify=str(server.ca_file), timeout=10).text
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


EXPIRY = 'jetstream_pin_certificate_expiry_timestamp_seconds{"certificate": "serving"}'
FAILED = 'jetstream_pin_certificate_reload_failures_total{"certificate": "serving"}'


def failure_lines(server: Server) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if "cannot load" in str(line.get("message"))]


@pytest.mark.parametrize("breakage", list(BROKEN), ids=list(BROKEN))
def test_a_broken_rotation_is_logged_once_counted_and_the_served_expiry_kept(
    tmp_path: Path, breakage: str
) -> None:
    """The old pair keeps serving; the failure is logged once per change of the files and
    counted; the expiry of the certificate served stays exported, across a worker restart."""
    good = certs.issue(["localhost"], ["127.0.0.1"], days=30)
    good_print = fingerprint(ssl.PEM_cert_to_DER_cert(good.cert_pem.decode()))
    not_after = x509.load_pem_x509_certificate(good.cert_pem).not_valid_after_utc.timestamp()
    cert_dir = tmp_path / "tls"
    write_like_kubelet(cert_dir, good)
    config = example_config(tmp_path)
    config["server"].update(
        workers=1, certFile=str(cert_dir / certs.CERT_FILE), keyFile=str(cert_dir / certs.KEY_FILE)
    )
    with running_server(tmp_path / "server", config, certs_ready=True) as server:
        trust = client_context(good.ca_pem)
        assert scrape(server)[EXPIRY] == not_after
        write_like_kubelet(cert_dir, BROKEN[breakage](good))
        served = {peer_of_new_connection(server, trust) for _ in range(20)}
        deadline = time.monotonic() + 10
        while not failure_lines(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # the master checks every second: room for a second line, if any
        served |= {peer_of_new_connection(server, trust) for _ in range(20)}
        before_restart = scrape(server)
        (worker,) = server.workers()
        os.kill(worker, signal.SIGKILL)
        while server.workers() in ([], [worker]):
            assert time.monotonic() < deadline + 20, "the worker was not replaced"
            time.sleep(0.1)
        served.add(peer_of_new_connection(server, trust))
        after_restart = scrape(server)
        lines = failure_lines(server)
    print(f"{breakage}: {lines}")
    assert served == {good_print}, "the old pair must keep serving"
    assert len(lines) == 1, f"logged {len(lines)} times: {lines}"
    assert str(cert_dir / certs.CERT_FILE) in str(lines[0]["message"])
    assert lines[0]["severity"] == "ERROR"
    for samples in (before_restart, after_restart):
        assert samples.get(EXPIRY) == not_after
        assert samples.get(FAILED) == 1
