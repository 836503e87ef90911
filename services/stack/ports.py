"""Loopback port helpers: pick a free port, wait until something listens on one."""

from __future__ import annotations

import socket
import time

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now (the OS picks it).

    There is an unavoidable window between this call and the server binding the port;
    on a developer machine that is good enough.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_tcp(host: str, port: int, timeout: float, interval: float = 0.05) -> None:
    """Block until ``host:port`` accepts TCP connections; raise :class:`TimeoutError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if port_open(host, port, timeout=max(0.05, min(1.0, deadline - time.monotonic()))):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.1f}s")
        time.sleep(interval)
