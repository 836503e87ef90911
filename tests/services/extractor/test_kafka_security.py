"""Kafka security settings -> FastStream / aiokafka security objects (no broker needed)."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLOAuthBearer, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from services.extractor.kafka_security import FileTokenProvider, aiokafka_kwargs, faststream_security
from services.settings import ExtractorSettings


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA, and a client certificate + key signed by it (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey,
             ca: bool) -> x509.Certificate:
        return (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(signer, hashes.SHA256()))

    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    files = {"ca": d / "ca.pem", "cert": d / "client.pem", "key": d / "client.key", "token": d / "token"}
    files["ca"].write_bytes(cert("test-ca", ca_key, "test-ca", ca_key, True).public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert("client", client_key, "test-ca", ca_key, False)
                              .public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(client_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    files["token"].write_text("eyJ.test.token\n")
    return files


def settings(**kw: object) -> ExtractorSettings:
    return ExtractorSettings(_env_file=None, **kw)  # type: ignore[call-arg]


def test_plaintext_is_the_default() -> None:
    s = settings()
    assert faststream_security(s) == (None, {})
    assert aiokafka_kwargs(s) == {"security_protocol": "PLAINTEXT"}


def test_ssl_without_sasl_uses_tls_with_the_configured_ca(pki: dict[str, Path]) -> None:
    s = settings(kafka_security_protocol="ssl", kafka_ssl_ca_file=pki["ca"], kafka_ssl_cert_file=pki["cert"],
                 kafka_ssl_key_file=pki["key"])
    security, extra = faststream_security(s)
    assert type(security) is BaseSecurity and security.use_ssl and extra == {}
    parsed = parse_security(security)
    assert parsed["security_protocol"] == "SSL"  # not silently PLAINTEXT
    ctx = parsed["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert any(c["subject"] == ((("commonName", "test-ca"),),) for c in ctx.get_ca_certs())
    kw = aiokafka_kwargs(s)
    assert kw["security_protocol"] == "SSL" and isinstance(kw["ssl_context"], ssl.SSLContext)


def test_ssl_with_system_cas_when_no_ca_file() -> None:
    security, _ = faststream_security(settings(kafka_security_protocol="SSL"))
    assert security is not None and parse_security(security)["security_protocol"] == "SSL"


@pytest.mark.parametrize(("mechanism", "cls"), [("PLAIN", SASLPlaintext), ("scram-sha-256", SASLScram256),
                                                 ("SCRAM_SHA_512", SASLScram512)])
def test_sasl_ssl_with_user_and_password(mechanism: str, cls: type, pki: dict[str, Path]) -> None:
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=mechanism, kafka_sasl_username="u",
                 kafka_sasl_password="s3cr3t-pw", kafka_ssl_ca_file=pki["ca"])
    security, _ = faststream_security(s)
    assert type(security) is cls
    parsed = parse_security(security)
    assert parsed["security_protocol"] == "SASL_SSL"
    assert parsed["sasl_mechanism"] == s.kafka_sasl_mechanism
    assert (parsed["sasl_plain_username"], parsed["sasl_plain_password"]) == ("u", "s3cr3t-pw")
    assert isinstance(parsed["ssl_context"], ssl.SSLContext)
    kw = aiokafka_kwargs(s)
    assert kw["sasl_mechanism"] == s.kafka_sasl_mechanism and kw["sasl_plain_password"] == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(s)  # the password is a secret in logs and reprs


def test_sasl_plaintext() -> None:
    s = settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u",
                 kafka_sasl_password="p")
    security, _ = faststream_security(s)
    assert parse_security(security)["security_protocol"] == "SASL_PLAINTEXT"


async def test_oauthbearer_reads_the_token_file(pki: dict[str, Path]) -> None:
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER",
                 kafka_sasl_oauth_token_file=pki["token"])
    security, extra = faststream_security(s)
    assert type(security) is SASLOAuthBearer
    assert parse_security(security)["sasl_mechanism"] == "OAUTHBEARER"
    provider = extra["sasl_oauth_token_provider"]
    assert isinstance(provider, FileTokenProvider)
    assert await provider.token() == "eyJ.test.token"
    assert isinstance(aiokafka_kwargs(s)["sasl_oauth_token_provider"], FileTokenProvider)


def test_broker_accepts_the_security(pki: dict[str, Path]) -> None:
    from faststream.kafka import KafkaBroker

    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER",
                 kafka_sasl_oauth_token_file=pki["token"])
    security, extra = faststream_security(s)
    KafkaBroker("127.0.0.1:9", security=security, **extra)  # builds without connecting


@pytest.mark.parametrize(("kw", "message"), [
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI-X"}, "kafka_sasl_mechanism"),
    ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
    ({"kafka_security_protocol": "SASL_SSL"}, "needs kafka_sasl_mechanism"),
    ({"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u", "kafka_sasl_password": "p"},
     "needs kafka_security_protocol SASL_SSL"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256", "kafka_sasl_username": "u"},
     "needs kafka_sasl_username and kafka_sasl_password"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "OAUTHBEARER"}, "kafka_sasl_oauth_token_file"),
    ({"kafka_ssl_ca_file": "/etc/hostname"}, "use SSL or SASL_SSL"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_ca_file": "/nonexistent/ca.pem"}, "no such file"),
])
def test_bad_combinations_are_validation_errors(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**kw)


def test_unknown_mechanism_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CLINIE_KAFKA_SASL_MECHANISM", "KERBEROS")
    with pytest.raises(ValidationError, match="kafka_sasl_mechanism"):
        ExtractorSettings(_env_file=None)  # type: ignore[call-arg]
