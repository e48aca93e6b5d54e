"""A private CA and a serving certificate for the webhook's HTTPS endpoint.

The API server only talks TLS to webhooks and checks the serving certificate
against the `caBundle`, so the CA certificate is what gets published; the CA
key is never written to disk. Keys are ECDSA P-256: small, fast, and accepted
by every supported Kubernetes version.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.crt"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"


@dataclass(frozen=True)
class Bundle:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jetstream-pin"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def key_usage(signs_certificates: bool) -> x509.KeyUsage:
    """Signatures only; a CA's also sign certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue(dns_names: Sequence[str], ip_addresses: Sequence[str] = (), days: int = 365) -> Bundle:
    """A fresh CA (valid 10 years) and a serving certificate signed by it."""
    if not dns_names and not ip_addresses:
        raise ValueError("a serving certificate needs at least one DNS name or IP address")
    now = datetime.now(UTC)
    start = now - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("jetstream-pin CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_names[0] if dns_names else ip_addresses[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Bundle(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def write(bundle: Bundle, out: Path) -> list[Path]:
    """Write ca.crt, tls.crt and tls.key (mode 0600) into `out`, replacing each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data, mode in (
        (CA_FILE, bundle.ca_pem, 0o644),
        (CERT_FILE, bundle.cert_pem, 0o644),
        (KEY_FILE, bundle.key_pem, 0o600),
    ):
        target = out / name
        temporary = out / f".{name}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
        written.append(target)
    return written


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the first certificate in `cert_pem`, as hex (as `openssl x509 -fingerprint`)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex()


def why_not_reusable(
    bundle: Bundle, dns_names: Sequence[str], now: datetime, renew_before: timedelta
) -> str | None:
    """None when `bundle` can keep serving `dns_names` past `now + renew_before`; else why not.

    Reused only when the three parts belong together: the certificate is signed
    by the CA, the key is the certificate's, every name asked for is covered.
    """
    try:
        ca = x509.load_pem_x509_certificate(bundle.ca_pem)
        cert = x509.load_pem_x509_certificate(bundle.cert_pem)
        key = serialization.load_pem_private_key(bundle.key_pem, password=None)
    except ValueError:
        return "the stored certificate, CA or key cannot be read"
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return "the stored key does not belong to the certificate"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "the stored certificate is not signed by the stored CA"
    try:
        names = set(
            cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        names = set()
    missing = [name for name in dns_names if name not in names]
    if missing:
        return f"the stored certificate does not name {', '.join(missing)}"
    deadline = now + renew_before
    for what, item in (("certificate", cert), ("CA", ca)):
        if item.not_valid_before_utc > now:
            return f"the stored {what} is not valid yet"
        if item.not_valid_after_utc <= deadline:
            expiry = f"{item.not_valid_after_utc:%Y-%m-%d}"
            return f"the stored {what} expires {expiry}, within the renewal window"
    return None


def unexpired_certificates(pem: bytes, now: datetime) -> list[bytes]:
    """Each certificate in a PEM bundle that is still valid at `now`, as PEM."""
    kept = []
    for cert in x509.load_pem_x509_certificates(pem) if pem.strip() else []:
        if cert.not_valid_after_utc > now:
            kept.append(cert.public_bytes(serialization.Encoding.PEM))
    return kept
