"""ExtractorSettings: the Triton transport and TLS settings, and the in-flight window."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.settings import ExtractorSettings


def test_defaults() -> None:
    s = ExtractorSettings()
    assert (s.triton_protocol, s.triton_ssl, s.max_in_flight) == ("http", False, 4)


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text("x")
    monkeypatch.setenv("CLINIE_TRITON_PROTOCOL", "GRPC")
    monkeypatch.setenv("CLINIE_TRITON_SSL", "true")
    monkeypatch.setenv("CLINIE_TRITON_SSL_CA_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("CLINIE_TRITON_SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("CLINIE_TRITON_SSL_KEY_FILE", str(tmp_path / "key.pem"))
    monkeypatch.setenv("CLINIE_MAX_IN_FLIGHT", "8")
    s = ExtractorSettings()
    assert s.triton_protocol == "grpc" and s.triton_ssl and s.max_in_flight == 8
    assert s.triton_ssl_key_file == tmp_path / "key.pem"


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="triton_protocol"):
        ExtractorSettings(triton_protocol="websocket")  # type: ignore[arg-type]


def test_tls_files_need_tls_and_must_exist(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ValueError, match="triton_ssl is false"):
        ExtractorSettings(triton_ssl_ca_file=ca)
    with pytest.raises(ValueError, match="no such file"):
        ExtractorSettings(triton_ssl=True, triton_ssl_ca_file=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="go together"):
        ExtractorSettings(triton_ssl=True, triton_ssl_cert_file=ca)
    assert ExtractorSettings(triton_ssl=True, triton_ssl_ca_file=ca).triton_ssl_ca_file == ca
