"""Serving a campaign's watch page from this process (``ogc-upscaler watch``)."""

from __future__ import annotations

import secrets
import socketserver
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ogc_upscaler.errors import UpscalerError
from ogc_upscaler.watch.app import WatchApp, check_built
from ogc_upscaler.watch.view import StoreView


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a page left open never keeps the command from ending


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the page polls: one line a second is noise
        pass


class PortInUse(UpscalerError):
    """The port asked for is taken."""


def watch_server(store: Path, host: str = "127.0.0.1", port: int = 8765) -> tuple[_Server, str]:
    """A server of the watch page of ``store`` (not yet serving: call ``serve_forever``), and its URL."""
    check_built()
    view = StoreView(store)
    view.summary()  # a store that cannot be read is refused here, not on the page
    app = WatchApp(view, secrets.token_urlsafe(24))
    try:
        server = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    except OSError as err:
        raise PortInUse(
            f"cannot listen on {host}:{port}: {err.strerror}", hint="choose another port with --port"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    if host in LOOPBACK:
        port = server.server_port
        app.hosts = frozenset(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", shown.lower()))
    return server, f"http://{shown}:{server.server_port}/"


#: Addresses only this machine reaches: there, the page answers only to its own names.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
