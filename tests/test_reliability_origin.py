"""Issue 13, group 7: viser's websocket refuses foreign Origins and Host headers (DNS rebinding)."""
from __future__ import annotations

import http.client

import pytest

viser = pytest.importorskip("viser")


def handshake(port, host_header, origin=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host_header, "Connection": "Upgrade", "Upgrade": "websocket",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    if origin is not None:
        headers["Origin"] = origin
    c.putrequest("GET", "/", skip_host=True)
    for k, v in headers.items():
        c.putheader(k, v)
    c.endheaders()
    status = c.getresponse().status
    c.close()
    return status


def test_foreign_origin_and_host_refused():
    from splatlab.view.origin import guarded_viser

    with guarded_viser("127.0.0.1"):
        server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        port = server.get_port()
        assert handshake(port, f"127.0.0.1:{port}", "https://evil.example") == 403
        assert handshake(port, f"evil.example:{port}", f"http://evil.example:{port}") == 403  # DNS rebinding
        assert handshake(port, f"localhost:{port}", f"http://localhost:{port}") == 101
        assert handshake(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") == 101
    finally:
        server.stop()
