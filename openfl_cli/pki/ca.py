"""The federation's certificate authority: a root CA that signs one signing CA, which signs every node."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openfl_cli.errors import UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.layout import AuthorityPaths, authority_paths, chain_path
from openfl_cli.pki.registry import ISSUED, CertificateRecord, append_record, timestamp
from openfl_cli.pki.verify import now

CA_DAYS = 3650
NODE_DAYS = 365
CLOCK_SKEW = dt.timedelta(minutes=5)  # back-date so that a node whose clock is a little behind accepts it
ORGANIZATION = "fx federation"
AGGREGATOR_AUTHORITY_HINT = "run `fx workspace certify` on the aggregator node first"
ROLE_ATTRIBUTE = NameOID.ORGANIZATIONAL_UNIT_NAME  # where `issue(unit=...)` writes a node's role


@dataclass(frozen=True)
class Authority:
    """What is needed to sign: the signing CA's key and certificate, and the chain (signing CA, root)."""

    paths: AuthorityPaths
    signing_key: keys.PrivateKey
    signing_cert: x509.Certificate
    chain: list[x509.Certificate]


@dataclass(frozen=True)
class AuthorityCreated:
    paths: AuthorityPaths
    chain_path: Path
    root_fingerprint: str


def create_authority(workspace: str | Path, *, force: bool = False, days: int = CA_DAYS) -> AuthorityCreated:
    """Create `cert/ca/` (root and signing CA, keys 0600 in `private/` folders) and `cert/cert_chain.crt`."""
    workspace = Path(workspace)
    check_days(days)
    paths = authority_paths(workspace)
    if paths.folder.exists():
        if not force:
            raise UsageError(
                f"{paths.folder} already holds a certificate authority; use --force to replace it "
                "(every certificate it issued stops being trusted)"
            )
        shutil.rmtree(paths.folder)
    label = secrets.token_hex(4)  # tells one federation's authority from another's at a glance
    root_key, signing_key = keys.new_private_key(), keys.new_private_key()
    root_name = _name(f"fx root CA {label}")
    root = _ca_certificate(root_name, root_key, root_name, root_key, days, path_length=1)
    signing = _ca_certificate(
        _name(f"fx signing CA {label}"),
        signing_key,
        root_name,
        root_key,
        days,
        path_length=0,
        issuer_cert=root,
    )
    keys.write_key(paths.root_key, root_key)
    keys.write_key(paths.signing_key, signing_key)
    keys.write_pem(paths.root_cert, root)
    keys.write_pem(paths.signing_cert, signing)
    keys.write_pem(chain_path(workspace), signing, root)
    return AuthorityCreated(paths, chain_path(workspace), keys.fingerprint(root))


def load_authority(workspace: str | Path, *, hint: str = AGGREGATOR_AUTHORITY_HINT) -> Authority:
    """The authority of `workspace` (any folder holding `cert/ca/`); `hint` says how to make a missing one."""
    paths = authority_paths(workspace)
    if not paths.signing_key.is_file():
        raise UsageError(f"{Path(workspace).absolute()} has no certificate authority; {hint}")
    return Authority(
        paths=paths,
        signing_key=keys.load_private_key(paths.signing_key),
        signing_cert=keys.load_certificate(paths.signing_cert),
        chain=[keys.load_certificate(paths.signing_cert), keys.load_certificate(paths.root_cert)],
    )


def issue(
    authority: Authority,
    request: x509.CertificateSigningRequest,
    *,
    name: str,
    role: str,
    days: int = NODE_DAYS,
    server: bool | None = None,
    unit: str | None = None,
) -> x509.Certificate:
    """Sign a node certificate for `name` (its common name), recorded in the index under `role`.

    A server certificate (by default: the aggregator's) carries serverAuth and a SAN for `name`, any
    other clientAuth. With `unit`, the subject also holds it as organizational unit: the node's role,
    which a peer can then read from the certificate itself (the Workflow API's nodes use it).
    Nothing but the public key is taken from the request: the subject, usages and names are ours.
    """
    check_days(days)
    if server is None:
        server = role == "aggregator"
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if unit is not None:
        subject.insert(0, x509.NameAttribute(ROLE_ATTRIBUTE, unit))
    public_key = request.public_key()
    start = now() - CLOCK_SKEW
    end = min(start + CLOCK_SKEW + dt.timedelta(days=days), authority.signing_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(authority.signing_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_node_usage(rsa_key=isinstance(public_key, rsa.RSAPublicKey)), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(authority.signing_cert), critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([host_name(name)]), critical=False)
    cert = builder.sign(authority.signing_key, keys.SIGNATURE_HASH())
    record = CertificateRecord(
        name=name,
        role=role,
        serial=keys.serial_hex(cert),
        fingerprint=keys.fingerprint(cert),
        not_after=timestamp(cert.not_valid_after_utc),
        when=timestamp(),
    )
    append_record(authority.paths.index, ISSUED, record)
    return cert


def role_of(subject: x509.Name) -> str | None:
    """The role `issue(unit=...)` wrote into a subject, or None without exactly one."""
    values = subject.get_attributes_for_oid(ROLE_ATTRIBUTE)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def host_name(fqdn: str) -> x509.GeneralName:
    """A subject alternative name: an IP entry for an IP address, else a DNS entry."""
    try:
        return x509.IPAddress(ipaddress.ip_address(fqdn))
    except ValueError:
        return x509.DNSName(fqdn)


def check_days(days: int) -> None:
    if not isinstance(days, int) or days < 1 or days > 36500:
        raise UsageError(f"invalid validity of {days!r} days: expected 1 to 36500")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_certificate(
    subject: x509.Name,
    key: keys.PrivateKey,
    issuer: x509.Name,
    issuer_key: keys.PrivateKey,
    days: int,
    *,
    path_length: int,
    issuer_cert: x509.Certificate | None = None,
) -> x509.Certificate:
    start = now() - CLOCK_SKEW
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CLOCK_SKEW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(_authority_key_id(issuer_cert), critical=False)
    return builder.sign(issuer_key, keys.SIGNATURE_HASH())


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _node_usage(*, rsa_key: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=rsa_key,  # TLS 1.2 RSA key exchange
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
