"""The Workflow API's certificates (openfl_cli/pki/nodes.py): a director, an envoy and an experimenter in
three folders, what their certificates say, the refusals, and a real mutual-TLS gRPC call."""

from __future__ import annotations

import ipaddress
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openfl_cli.errors import UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.errors import CertificateError
from openfl_cli.pki.layout import authority_paths
from openfl_cli.pki.nodes import (
    certificate_common_name,
    certificate_role,
    certify_director,
    certify_node,
    create_director_authority,
    director_request,
    import_node_certificate,
    node_request,
    node_tls_material,
    node_tls_paths,
    request_package_path,
    signed_package_path,
)
from openfl_cli.pki.registry import ISSUED, read_records
from openfl_cli.pki.requests import collaborator_request
from openfl_cli.pki.verify import has_usage, verify_chain
from tests.pki.conftest import make_workspace

FQDN = "127.0.0.1"


@dataclass
class Nodes:
    director: Path
    envoy: Path
    experimenter: Path


def make_director(folder: Path, fqdn: str = FQDN) -> Path:
    create_director_authority(folder)
    director_request(folder, fqdn)
    certify_director(folder, fqdn)
    return folder


def enroll(director: Path, folder: Path, kind: str, name: str) -> Path:
    """The node's half of the flow: request, sign on the director (hash compared), import."""
    created = node_request(folder, kind, name)
    assert created.package is not None
    certify_node(director, created.package, kind, expected_hash=created.hash)
    import_node_certificate(folder, signed_package_path(director, kind, name), kind)
    return folder


@pytest.fixture
def nodes(tmp_path: Path) -> Nodes:
    director = make_director(tmp_path / "director")
    return Nodes(
        director,
        enroll(director, tmp_path / "envoy", "envoy", "env_one"),
        enroll(director, tmp_path / "experimenter", "experimenter", "alice"),
    )


def _certificate(folder: Path, kind: str, name: str) -> x509.Certificate:
    return keys.load_certificate(node_tls_paths(folder, kind, name).certificate)


def _private(path: Path) -> bool:
    return path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600


def _names(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as handle:
        return handle.namelist()


def _repack(source: Path, target: Path, rename: Callable[[str], str], extra: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for entry in old.namelist():
            new.writestr(rename(entry), old.read(entry))
        for entry, data in extra.items():
            new.writestr(entry, data)
    return target


# --- the sequence and the files --------------------------------------------------------------------


def test_every_file_is_where_the_layout_says(nodes: Nodes) -> None:
    director, envoy, experimenter = nodes.director, nodes.envoy, nodes.experimenter
    assert _private(authority_paths(director).root_key) and _private(authority_paths(director).signing_key)
    server = node_tls_paths(director, "director", FQDN)
    assert server.certificate == director / "cert" / "server" / "director_127.0.0.1.crt"
    assert (
        _private(server.private_key) and (director / "cert" / "server" / "director_127.0.0.1.csr").is_file()
    )
    for folder, kind, name in ((envoy, "envoy", "env_one"), (experimenter, "experimenter", "alice")):
        paths = node_tls_paths(folder, kind, name)
        assert paths.certificate == folder / "cert" / "client" / f"{kind}_{name}.crt"
        assert _private(paths.private_key) and paths.certificate.is_file()
        assert (folder / "cert" / "client" / f"{kind}_{name}.csr").is_file()
        assert paths.cert_chain.read_bytes() == (director / "cert" / "cert_chain.crt").read_bytes()
        assert not (folder / "cert" / "ca").exists()  # the authority never leaves the director
        request = request_package_path(folder, kind, name)
        assert request == folder / f"{kind}_{name}_to_director_cert_request.zip"
        assert _names(request) == [f"{kind}_{name}.csr"]
        signed = signed_package_path(director, kind, name)
        assert signed == director / f"director_to_{kind}_{name}_signed_cert.zip"
        assert sorted(_names(signed)) == ["cert_chain.crt", f"client/{kind}_{name}.crt"]
        for archive in (request, signed):
            with zipfile.ZipFile(archive) as handle:
                assert not any(b"PRIVATE KEY" in handle.read(entry) for entry in handle.namelist())
        assert (director / "cert" / "client" / f"{kind}_{name}.crt").read_bytes() == (
            paths.certificate.read_bytes()
        )


def test_the_authority_records_each_role(nodes: Nodes) -> None:
    records = read_records(authority_paths(nodes.director).index, ISSUED)
    assert [(record.name, record.role) for record in records] == [
        (FQDN, "director"),
        ("env_one", "envoy"),
        ("alice", "experimenter"),
    ]


# --- what the certificates say ---------------------------------------------------------------------


def test_director_certificate(nodes: Nodes) -> None:
    cert = _certificate(nodes.director, "director", FQDN)
    assert keys.common_name(cert.subject) == FQDN
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == [
        "director"
    ]
    assert has_usage(cert, ExtendedKeyUsageOID.SERVER_AUTH)
    assert not has_usage(cert, ExtendedKeyUsageOID.CLIENT_AUTH)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(FQDN)]
    verify_chain(
        cert,
        keys.load_chain(nodes.director / "cert" / "cert_chain.crt"),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )


def test_director_host_name_goes_in_as_dns_entry(tmp_path: Path) -> None:
    folder = make_director(tmp_path / "director", "director.example.org")
    cert = _certificate(folder, "director", "director.example.org")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["director.example.org"]
    assert certificate_common_name(keys.pem_bytes(cert)) == "director.example.org"


@pytest.mark.parametrize(("kind", "name"), [("envoy", "env_one"), ("experimenter", "alice")])
def test_client_certificates(nodes: Nodes, kind: str, name: str) -> None:
    folder = nodes.envoy if kind == "envoy" else nodes.experimenter
    cert = _certificate(folder, kind, name)
    assert has_usage(cert, ExtendedKeyUsageOID.CLIENT_AUTH)
    assert not has_usage(cert, ExtendedKeyUsageOID.SERVER_AUTH)
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    pem = keys.pem_bytes(cert)
    assert certificate_role(pem) == kind
    assert certificate_common_name(pem) == name
    verify_chain(
        cert, keys.load_chain(folder / "cert" / "cert_chain.crt"), usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )


def test_role_readers_without_a_role(nodes: Nodes) -> None:
    root = keys.load_certificate(authority_paths(nodes.director).root_cert)
    assert certificate_role(keys.pem_bytes(root)) is None  # an authority certificate has no role
    assert certificate_role(b"not a certificate") is None
    assert certificate_common_name(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") is None


def test_the_role_comes_from_the_authority_not_the_request(nodes: Nodes, tmp_path: Path) -> None:
    """A request that claims OU=envoy (or director) in an experimenter package gets OU=experimenter."""
    key = keys.new_private_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "envoy"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "director"),
            x509.NameAttribute(NameOID.COMMON_NAME, "mallory"),
        ]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, keys.SIGNATURE_HASH())
    package = tmp_path / "experimenter_mallory_to_director_cert_request.zip"
    with zipfile.ZipFile(package, "w") as handle:
        handle.writestr("experimenter_mallory.csr", keys.pem_bytes(request))
    signed = certify_node(nodes.director, package, "experimenter")
    cert = keys.load_certificate(signed.certificate)
    assert certificate_role(keys.pem_bytes(cert)) == "experimenter"
    assert cert.subject.rfc4514_string() == "CN=mallory,OU=experimenter"


# --- refusals ---------------------------------------------------------------------------------------


def test_wrong_hash_and_refused_confirmation(nodes: Nodes, tmp_path: Path) -> None:
    created = node_request(tmp_path / "two", "envoy", "env_two")
    assert created.package is not None
    with pytest.raises(CertificateError, match="does not match the expected"):
        certify_node(nodes.director, created.package, "envoy", expected_hash="ab" * 48)
    with pytest.raises(CertificateError, match="did not confirm"):
        certify_node(nodes.director, created.package, "envoy", confirm=lambda digest: False)
    assert not signed_package_path(nodes.director, "envoy", "env_two").exists()
    seen: list[str] = []
    certify_node(nodes.director, created.package, "envoy", confirm=lambda digest: not seen.append(digest))
    assert seen == [created.hash]
    with pytest.raises(CertificateError, match="does not match the expected"):
        certify_director(nodes.director, FQDN, expected_hash="00")


def test_a_package_of_another_kind_is_refused(nodes: Nodes, tmp_path: Path) -> None:
    envoy_request = request_package_path(nodes.envoy, "envoy", "env_one")
    with pytest.raises(UsageError, match=r"not an experimenter's package .*fx envoy certify --request-pkg"):
        certify_node(nodes.director, envoy_request, "experimenter")
    experimenter_request = request_package_path(nodes.experimenter, "experimenter", "alice")
    with pytest.raises(UsageError, match=r"not an envoy's package .*fx experimenter certify --request-pkg"):
        certify_node(nodes.director, experimenter_request, "envoy")
    collaborator = collaborator_request(make_workspace(tmp_path / "col"), "one").package
    assert collaborator is not None
    with pytest.raises(UsageError, match="fx collaborator certify --request-pkg"):
        certify_node(nodes.director, collaborator, "envoy")
    envoy_signed = signed_package_path(nodes.director, "envoy", "env_one")
    with pytest.raises(UsageError, match=r"not an experimenter's package .*fx envoy certify --import"):
        import_node_certificate(nodes.experimenter, envoy_signed, "experimenter")


def test_an_experimenter_certificate_never_passes_as_an_envoys(nodes: Nodes, tmp_path: Path) -> None:
    """Even renamed into an envoy's package, for a folder holding the matching key: the role decides."""
    folder = tmp_path / "forged"
    key = node_tls_paths(nodes.experimenter, "experimenter", "alice").private_key
    target = node_tls_paths(folder, "envoy", "alice").private_key
    target.parent.mkdir(parents=True)
    shutil.copy(key, target)
    forged = _repack(
        signed_package_path(nodes.director, "experimenter", "alice"),
        tmp_path / "director_to_envoy_alice_signed_cert.zip",
        lambda entry: entry.replace("experimenter_", "envoy_"),
        {},
    )
    with pytest.raises(
        CertificateError, match=r"role \(organizational unit\) is 'experimenter', not 'envoy'"
    ):
        import_node_certificate(folder, forged, "envoy")
    assert not node_tls_paths(folder, "envoy", "alice").certificate.exists()


def test_a_chain_from_another_authority_is_refused(nodes: Nodes, tmp_path: Path) -> None:
    other = make_director(tmp_path / "other_director")
    # the other authority signs this envoy's own request: the key matches, the chain does not
    certify_node(other, request_package_path(nodes.envoy, "envoy", "env_one"), "envoy")
    foreign = signed_package_path(other, "envoy", "env_one")
    with pytest.raises(CertificateError, match="differs from the one this folder already trusts"):
        import_node_certificate(nodes.envoy, foreign, "envoy")
    # a foreign certificate in a package that carries our chain does not chain to it
    mixed = tmp_path / "director_to_envoy_env_one_signed_cert.zip"
    with zipfile.ZipFile(foreign) as handle, zipfile.ZipFile(mixed, "w") as new:
        new.writestr("client/envoy_env_one.crt", handle.read("client/envoy_env_one.crt"))
        new.writestr("cert_chain.crt", (nodes.director / "cert" / "cert_chain.crt").read_bytes())
    with pytest.raises(CertificateError, match="not issued by this federation's authority"):
        import_node_certificate(nodes.envoy, mixed, "envoy")


def test_a_certificate_for_another_key_is_refused(nodes: Nodes, tmp_path: Path) -> None:
    """A second request under the same name (another folder, another key) signed by the director."""
    enroll(nodes.director, tmp_path / "impostor", "envoy", "env_one")
    before = node_tls_paths(nodes.envoy, "envoy", "env_one").certificate.read_bytes()
    with pytest.raises(CertificateError, match="not issued for this node's key"):
        import_node_certificate(nodes.envoy, signed_package_path(nodes.director, "envoy", "env_one"), "envoy")
    assert node_tls_paths(nodes.envoy, "envoy", "env_one").certificate.read_bytes() == before


def test_a_request_package_with_a_key_is_refused(nodes: Nodes, tmp_path: Path) -> None:
    created = node_request(tmp_path / "two", "envoy", "env_two")
    assert created.package is not None
    leaky = _repack(
        created.package,
        tmp_path / "envoy_env_two_to_director_cert_request.zip",
        lambda entry: entry,
        {"envoy_env_two.key": created.key_path.read_bytes()},
    )
    with pytest.raises(CertificateError, match="may be a private key"):
        certify_node(nodes.director, leaky, "envoy", expected_hash=created.hash)
    assert not signed_package_path(nodes.director, "envoy", "env_two").exists()


def test_import_needs_the_key_here(nodes: Nodes, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"has no key .*fx envoy generate-cert-request -n env_one"):
        import_node_certificate(
            tmp_path / "empty", signed_package_path(nodes.director, "envoy", "env_one"), "envoy"
        )


def test_missing_authority_and_missing_request(tmp_path: Path) -> None:
    created = node_request(tmp_path / "envoy", "envoy", "env_one")
    assert created.package is not None
    with pytest.raises(UsageError, match="fx director create-ca"):
        certify_node(tmp_path / "nothing", created.package, "envoy")
    with pytest.raises(UsageError, match="fx director generate-cert-request --fqdn localhost"):
        certify_director(tmp_path / "nothing", "localhost")
    director_request(tmp_path / "director", "localhost")
    with pytest.raises(UsageError, match="fx director create-ca"):
        certify_director(tmp_path / "director", "localhost")


def test_names_and_kinds_are_checked(tmp_path: Path) -> None:
    for name in ("../x", "a/b", "..", ""):
        with pytest.raises(UsageError, match="invalid envoy name"):
            node_request(tmp_path / "envoy", "envoy", name)
        with pytest.raises(UsageError, match="invalid experimenter name"):
            node_request(tmp_path / "exp", "experimenter", name)
    with pytest.raises(UsageError, match="invalid FQDN"):
        director_request(tmp_path / "director", "../x")
    with pytest.raises(UsageError, match="unknown node kind"):
        node_request(tmp_path / "x", "director", "x")
    assert not (tmp_path / "envoy").exists() and not (tmp_path / "exp").exists()


def test_a_new_request_replaces_the_key_only_with_force(tmp_path: Path) -> None:
    first = node_request(tmp_path / "envoy", "envoy", "env_one")
    with pytest.raises(UsageError, match="already exists; use --force"):
        node_request(tmp_path / "envoy", "envoy", "env_one")
    assert node_request(tmp_path / "envoy", "envoy", "env_one", force=True).hash != first.hash


# --- a real mutual-TLS call ---------------------------------------------------------------------------


def test_grpc_mutual_tls_tells_the_role_and_name(nodes: Nodes, tmp_path: Path) -> None:
    """The director serves; an envoy and an experimenter of the same name call it; the server reads the
    name and the role from the peer's verified certificate."""
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    from openfl_cli.transport.tls import PEM_CERT_PROPERTY, channel_credentials, server_credentials

    same_name = enroll(nodes.director, tmp_path / "exp_env_one", "experimenter", "env_one")

    def who(request: bytes, context: grpc.ServicerContext) -> bytes:
        pem = bytes((context.auth_context() or {})[PEM_CERT_PROPERTY][0])
        return f"{certificate_common_name(pem)}/{certificate_role(pem)}".encode()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(who)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Who", {"Am": handler})])
    port = server.add_secure_port(
        f"{FQDN}:0", server_credentials(node_tls_material(nodes.director, "director", FQDN))
    )
    server.start()
    try:

        def call(folder: Path, kind: str, name: str) -> bytes:
            credentials = channel_credentials(node_tls_material(folder, kind, name))
            with grpc.secure_channel(f"{FQDN}:{port}", credentials) as channel:
                return channel.unary_unary("/test.Who/Am")(b"", timeout=10)

        assert call(nodes.envoy, "envoy", "env_one") == b"env_one/envoy"
        assert call(same_name, "experimenter", "env_one") == b"env_one/experimenter"
        assert call(nodes.experimenter, "experimenter", "alice") == b"alice/experimenter"
    finally:
        server.stop(None)
