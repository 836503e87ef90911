"""Kafka connection security from :class:`~services.settings.ExtractorSettings`, for FastStream and for aiokafka.

``CLINIE_KAFKA_SECURITY_PROTOCOL`` decides, and is never ignored:

- ``PLAINTEXT``: no TLS, no authentication;
- ``SSL``: TLS (CA from ``kafka_ssl_ca_file``, else the system CAs; a client certificate for mutual TLS);
- ``SASL_PLAINTEXT`` / ``SASL_SSL``: SASL ``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512`` (user and password) or
  ``OAUTHBEARER`` (token read from ``kafka_sasl_oauth_token_file`` at each connect), without / with TLS.

The settings validate the combination (e.g. a mechanism without a SASL protocol, or TLS files with PLAINTEXT, is an
error at start-up), so the functions here only translate.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.helpers import create_ssl_context
from faststream.security import (
    BaseSecurity,
    SASLOAuthBearer,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from services.settings import ExtractorSettings


class FileTokenProvider(AbstractTokenProvider):
    """OAUTHBEARER token from a file (e.g. a token that a sidecar or Kubernetes refreshes), re-read at each call."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    async def token(self) -> str:
        return (await asyncio.to_thread(self.path.read_text, encoding="utf-8")).strip()


def ssl_context(settings: ExtractorSettings) -> ssl.SSLContext | None:
    """The TLS context for ``SSL``/``SASL_SSL`` (``None`` for the plaintext protocols)."""
    s = settings
    if s.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    ctx = create_ssl_context(
        cafile=str(s.kafka_ssl_ca_file) if s.kafka_ssl_ca_file else None,
        certfile=str(s.kafka_ssl_cert_file) if s.kafka_ssl_cert_file else None,
        keyfile=str(s.kafka_ssl_key_file) if s.kafka_ssl_key_file else None,
        password=s.kafka_ssl_key_password.get_secret_value() if s.kafka_ssl_key_password else None,
    )
    ctx.check_hostname = s.kafka_ssl_check_hostname
    return ctx


def faststream_security(settings: ExtractorSettings) -> tuple[BaseSecurity | None, dict[str, Any]]:
    """``(security, extra KafkaBroker keyword arguments)`` for FastStream's ``KafkaBroker``."""
    s = settings
    proto, mech = s.kafka_security_protocol, s.kafka_sasl_mechanism
    if proto == "PLAINTEXT":
        return None, {}
    ctx = ssl_context(s)
    use_ssl = proto == "SASL_SSL"
    if mech is None:  # SSL
        return BaseSecurity(ssl_context=ctx, use_ssl=True), {}
    if mech == "OAUTHBEARER":
        assert s.kafka_sasl_oauth_token_file is not None  # validated
        return (SASLOAuthBearer(ssl_context=ctx, use_ssl=use_ssl),
                {"sasl_oauth_token_provider": FileTokenProvider(s.kafka_sasl_oauth_token_file)})
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[mech]
    password = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
    return cls(username=s.kafka_sasl_username or "", password=password, ssl_context=ctx, use_ssl=use_ssl), {}


def aiokafka_kwargs(settings: ExtractorSettings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer``/admin clients (``clinie publish``, demo)."""
    s = settings
    kw: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    ctx = ssl_context(s)
    if ctx is not None:
        kw["ssl_context"] = ctx
    mech = s.kafka_sasl_mechanism
    if mech is not None:
        kw["sasl_mechanism"] = mech
        if mech == "OAUTHBEARER":
            assert s.kafka_sasl_oauth_token_file is not None
            kw["sasl_oauth_token_provider"] = FileTokenProvider(s.kafka_sasl_oauth_token_file)
        else:
            kw["sasl_plain_username"] = s.kafka_sasl_username
            kw["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None
    return kw
