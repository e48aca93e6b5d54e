"""The serving certificate's reload: a broken rotation keeps the old pair, and says so once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client import REGISTRY

from webhook import certs
from webhook.serving import tls
from webhook.serving.tls import ReloadingContext

FAILURES = "jetstream_pin_certificate_reload_failures_total"


def failures() -> float:
    return REGISTRY.get_sample_value(FAILURES, {"certificate": "serving"}) or 0.0


def not_after(bundle: certs.Bundle) -> float:
    return x509.load_pem_x509_certificate(bundle.cert_pem).not_valid_after_utc.timestamp()


def counting_loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    loads: list[Path] = []
    real = tls.server_context

    def counted(cert_file: Path, key_file: Path) -> object:
        loads.append(cert_file)
        return real(cert_file, key_file)

    monkeypatch.setattr(tls, "server_context", counted)
    return loads


def test_a_broken_change_is_tried_once_reported_once_and_the_old_pair_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = certs.issue(["localhost"], days=30)
    certs.write(good, tmp_path)
    reloading = ReloadingContext(tmp_path / certs.CERT_FILE, tmp_path / certs.KEY_FILE)
    served = reloading.context()
    loads = counting_loads(monkeypatch)
    counted = failures()
    (tmp_path / certs.CERT_FILE).write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")
    with caplog.at_level(logging.INFO, logger="webhook.serving.tls"):
        contexts = {id(reloading.context()) for _ in range(50)}
    assert contexts == {id(served)}
    assert len(loads) == 1, "a file that failed is not loaded again until it changes"
    assert failures() == counted + 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert str(tmp_path / certs.CERT_FILE) in line
    assert "cannot load" in line
    assert reloading.expiry() == not_after(good)

    fixed = certs.issue(["localhost"], days=90)
    certs.write(fixed, tmp_path)
    assert reloading.context() is not served
    assert reloading.expiry() == not_after(fixed)
    assert failures() == counted + 1


def test_a_worker_context_does_not_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    certs.write(certs.issue(["localhost"]), tmp_path)
    reloading = ReloadingContext(
        tmp_path / certs.CERT_FILE, tmp_path / certs.KEY_FILE, reports=False
    )
    reloading.context()
    counted = failures()
    certs.write(certs.Bundle(b"", certs.issue(["localhost"]).cert_pem, b"bad key"), tmp_path)
    with caplog.at_level(logging.INFO, logger="webhook.serving.tls"):
        reloading.context()
    assert caplog.records == []
    assert failures() == counted


def test_missing_files_keep_the_old_pair_and_are_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = certs.issue(["localhost"])
    certs.write(good, tmp_path)
    reloading = ReloadingContext(tmp_path / certs.CERT_FILE, tmp_path / certs.KEY_FILE)
    served = reloading.context()
    (tmp_path / certs.KEY_FILE).unlink()
    with caplog.at_level(logging.INFO, logger="webhook.serving.tls"):
        assert all(reloading.context() is served for _ in range(10))
    assert len(caplog.records) == 1
    assert certs.KEY_FILE in caplog.records[0].getMessage()
    assert reloading.expiry() == not_after(good)


def test_without_any_loadable_pair_the_start_fails(tmp_path: Path) -> None:
    reloading = ReloadingContext(tmp_path / certs.CERT_FILE, tmp_path / certs.KEY_FILE)
    with pytest.raises(OSError, match=certs.CERT_FILE):
        reloading.context()
    assert reloading.expiry() is None
