"""Check a host/port pair before a server thread is started on it: a bad port or an unresolvable
or foreign address must be a one-line error up front, not a server thread that dies (or retries
DNS a thousand times) while its caller waits forever."""
from __future__ import annotations

import socket


class ListenAddressError(ValueError):
    """The host or port cannot be listened on; the message is one line."""


def check_listen_address(host: str, port: int, what: str = "--host/--port") -> None:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ListenAddressError(f"port {port} is not a valid port (0-65535; 0 picks a free one)")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as err:
        raise ListenAddressError(f"cannot resolve host {host!r}: {getattr(err, 'strerror', None) or err}") from None
    family, _, _, _, addr = infos[0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((addr[0], 0))  # the address is one of this machine's (the port is viser's business)
    except OSError as err:
        raise ListenAddressError(f"cannot listen on {host}: {err.strerror or err}") from None
