"""Phones register over TLS when the site has a certificate; a bad one stops the start."""

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telportal.app import build_platform
from telportal.auth.credentials import Passwords
from telportal.config import Config, ConfigError, SipConfig, parse_listen
from telportal.demo import seed_demo
from telportal.net import Peer, SipTransportLayer, Transport, TransportConfig
from tests.integration.signaling.conftest import PASSWORD, free_port
from tests.integration.signaling.test_sip_service import Phone


def make_certificate(folder: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS tests need Debian's openssl command")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_config(tmp_path: Path, cert: Path, key: Path, tls_port: int) -> Config:
    return Config(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
        sip_listen=parse_listen(f"127.0.0.1:{free_port()}"),  # type: ignore[arg-type]
        sip=SipConfig(
            default_tenant="acme",
            tls_listen=parse_listen(f"127.0.0.1:{tls_port}"),  # type: ignore[arg-type]
            tls_cert=cert,
            tls_key=key,
        ),
    )


@pytest.fixture
async def tls_edge(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    cert, key = make_certificate(tmp_path)
    tls_port = free_port()
    platform = build_platform(
        tls_config(tmp_path, cert, key, tls_port), passwords=Passwords.fast_for_tests()
    )
    await platform.start()
    await seed_demo(platform, PASSWORD)
    assert platform.sip is not None
    await platform.sip.start()
    try:
        yield tls_port, cert
    finally:
        await platform.sip.stop()
        await platform.close()


async def test_register_over_tls(tls_edge: tuple[int, Path]) -> None:
    port, cert = tls_edge
    client = TransportConfig(tls_client_context=ssl.create_default_context(cafile=str(cert)))
    async with SipTransportLayer(client) as layer:
        listener = await layer.listen(Transport.UDP, "127.0.0.1", 0)
        phone = Phone(layer, Peer(Transport.TLS, "127.0.0.1", port), listener.port)
        ok = await phone.login("1001", PASSWORD)
    assert ok.status == 200
    assert "transport=tls" in ok.headers.get_all("Contact")[0]


def test_unloadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"sip\.tls_cert"):
        build_platform(tls_config(tmp_path, bad, bad, free_port()))
