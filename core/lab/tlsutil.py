"""Run-time PKI of the lab: a throw-away CA and a server certificate made with ``cryptography``.

Keys live only in memory and in a private temporary directory that ``LabPki.cleanup`` removes
(``ssl`` can only load PEM from files). Nothing here is ever written to the output directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONNECTOR_NAME = "connector.lab.upscope.invalid"  # RFC 6761 .invalid: never resolves for real
REST_NAME = "phoneapp.unify.com"  # the connector's provisioning API name (the lab CA only)


@dataclass(frozen=True, slots=True)
class LabPki:
    directory: Path
    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_pem, self.key_pem)
        return ctx

    def client_context(self, keylog: Path | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        if keylog is not None:
            ctx.keylog_filename = str(keylog)
        return ctx

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "upscope lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def sweep_stale_pki() -> list[Path]:
    """Remove key directories of labs that died without clean-up (SIGKILL); returns them."""
    gone = []
    for path in Path(tempfile.gettempdir()).glob("upscope-lab-pki-*-*"):
        pid = path.name.split("-")[3]
        if pid.isascii() and pid.isdigit() and not Path(f"/proc/{pid}").exists() and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    return gone


#: Validity of the connector's certificate: as long as a public CA's (90 days), so a healthy lab is
#: not "certificate expires within 14 days" to the alert rules.
LEAF_DAYS = 90


def make_pki(hosts: tuple[str, ...] = ("127.0.0.1",)) -> LabPki:
    """A CA and one server certificate valid for ``CONNECTOR_NAME``, localhost and ``hosts``."""
    sweep_stale_pki()
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("upscope lab CA")).issuer_name(_name("upscope lab CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=LEAF_DAYS + 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san: list[x509.GeneralName] = [x509.DNSName(CONNECTOR_NAME), x509.DNSName("localhost"),
                                   x509.DNSName(REST_NAME)]
    san += [x509.IPAddress(ipaddress.ip_address(h)) for h in hosts]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CONNECTOR_NAME)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix=f"upscope-lab-pki-{os.getpid()}-"))
    directory.chmod(0o700)
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    key_pem.chmod(0o600)
    return LabPki(directory, ca_pem, cert_pem, key_pem)
