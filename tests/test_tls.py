"""TLS against a real HTTPS server with a self-signed certificate: verification is on by
default, ``ca_bundle`` is honoured, and ``verify = false`` works only with its warning."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookclient.config import Endpoint
from hookclient.delivery import Sender
from hookclient.envelope import dumps
from hookclient.urls import transport_warnings
from tests.test_delivery import envelope


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if not shutil.which("openssl"):
        pytest.skip("no openssl command to make a self-signed certificate with")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/hooks", cert
    finally:
        server.shutdown()
        server.server_close()


def endpoint(url: str, *, verify: bool = True, ca_bundle: Path | None = None) -> Endpoint:
    return Endpoint(
        url=url,
        token_env="HOOKCLIENT_TOKEN",
        token_file=None,
        timeout=5.0,
        verify=verify,
        ca_bundle=None if ca_bundle is None else str(ca_bundle),
        signing_secret_env=None,
        token="tls-test-token",
        token_source="test",
        signing_secret=None,
    )


def post(ep: Endpoint) -> str:
    sender = Sender(ep)
    env = envelope()
    try:
        outcome = sender.post(env, dumps(env), attempt=1, timeout=5.0)
    finally:
        sender.close()
    return outcome.kind if outcome.kind == "delivered" else f"{outcome.kind}/{outcome.error}"


def test_an_unknown_certificate_is_refused_by_default(https: tuple[str, Path]) -> None:
    url, _cert = https
    assert post(endpoint(url)) == "retryable/tls"
    assert transport_warnings(endpoint(url)) == []


def test_ca_bundle_is_honoured(https: tuple[str, Path]) -> None:
    url, cert = https
    assert post(endpoint(url, ca_bundle=cert)) == "delivered"


def test_verify_false_delivers_but_is_warned_about(https: tuple[str, Path]) -> None:
    url, _cert = https
    assert post(endpoint(url, verify=False)) == "delivered"
    [warning] = transport_warnings(endpoint(url, verify=False))
    assert "verify = false" in warning
