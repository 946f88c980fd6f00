"""Origin/Host checks for viser's HTTP + websocket server, without forking viser.

Any web page the user visits can open a websocket to http://127.0.0.1:8080 and drive the viewer
(browsers do not apply the same-origin policy to websockets), and DNS rebinding lets a page reach it
under its own host name. So every request must carry a Host header naming this server (a localhost
name or the bound address) and websocket handshakes an Origin of the same kind; others get 403.

viser builds its server with `websockets.asyncio.server.serve(..., process_request=...)` on its own
thread while `ViserServer.__init__` waits; `guarded_viser(host)` wraps that call for the duration of
the construction so our check runs before viser's handler.
"""
from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from typing import Iterator
from urllib.parse import urlsplit

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}
WILDCARDS = {"0.0.0.0", "::", ""}
_patch_lock = threading.Lock()


def _host_of(host_header: str) -> str:
    try:
        return (urlsplit(f"//{host_header}").hostname or "").lower()
    except ValueError:
        return ""


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def host_allowed(name: str, bound: str) -> bool:
    """A localhost name, the bound address, or (bound to all interfaces) an IP or this machine's name."""
    name = name.lower()
    if name in LOCAL_NAMES or name.endswith(".localhost") or name == bound.lower():
        return True
    if bound in WILDCARDS:
        return _is_ip(name) or name in {socket.gethostname().lower(), socket.getfqdn().lower()}
    return False


def rejection(headers, bound: str) -> str | None:
    """Why a request must be refused (None: allowed)."""
    if not host_allowed(_host_of(headers.get("Host", "")), bound):
        return "Host header"
    origin = headers.get("Origin")
    if origin is not None and origin != "null" and not host_allowed((urlsplit(origin).hostname or ""), bound):
        return "Origin"
    if origin == "null":
        return "Origin"
    return None


def _install_guard() -> None:
    """Wrap `websockets.asyncio.server.serve` once: every server it starts (viser's) refuses requests
    whose Origin/Host do not match the host the server is bound to (its `host` argument).

    Installed for good rather than around each viser construction: a construction that hangs (a
    server thread that dies while starting) must not hold a lock that every later viewer waits on."""
    import websockets.asyncio.server as wss
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    with _patch_lock:
        if getattr(wss.serve, "_splatlab_guard", False):
            return
        original = wss.serve

        def serve(handler, host=None, *args, process_request=None, **kwargs):
            bound_host = host if host is not None else kwargs.get("host", "")

            def check(connection, request):
                why = rejection(request.headers, bound_host or "")
                if why is not None:
                    return Response(403, "Forbidden", Headers({"Content-Type": "text/plain"}),
                                    f"splatlab viewer: request refused ({why} not allowed)\n".encode())
                return process_request(connection, request) if process_request is not None else None
            return original(handler, host, *args, process_request=check, **kwargs)

        serve._splatlab_guard = True
        wss.serve = serve


@contextlib.contextmanager
def guarded_viser(bound_host: str) -> Iterator[None]:
    """Construct a `viser.ViserServer` inside this block to get the Origin/Host check (for the host
    viser binds, which is `bound_host`)."""
    _install_guard()
    yield
