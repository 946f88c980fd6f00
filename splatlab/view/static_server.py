"""`splatlab view --static FILE`: serve viewer/dist plus exactly one splat file, on loopback.

The page opens on `url`, which carries the initial camera (`pos`, `target`, `fov` URL parameters of
viewer/src/main.js) fitted by `splatlab.framing.fit_camera`, the same camera `splatlab view` opens with.

A tiny `http.server`: the only paths answered are the files of the built viewer (an allow-list made
at start-up, never a filesystem lookup of the request path) and `/scene/<name>` for the one splat
file. Anything else is 404, so no request can reach another file (no directory traversal).
"""
from __future__ import annotations

import math
import mimetypes
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..framing import FitCamera

SCENE_PREFIX = "/scene/"
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html; charset=utf-8",
         ".wasm": "application/wasm", ".json": "application/json", ".svg": "image/svg+xml", ".ply": "application/octet-stream",
         ".sog": "application/octet-stream", ".spz": "application/octet-stream", ".splat": "application/octet-stream"}


def find_dist() -> Path | None:
    """viewer/dist next to the package (source checkout), or $SPLATLAB_VIEWER_DIST."""
    env = os.environ.get("SPLATLAB_VIEWER_DIST")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "viewer" / "dist")
    for c in candidates:
        if (c / "index.html").is_file():
            return c
    return None


def _allow_list(dist: Path) -> dict[str, Path]:
    files = {}
    for f in dist.rglob("*"):
        if f.is_file() and not f.is_symlink():
            files["/" + f.relative_to(dist).as_posix()] = f
    files["/"] = dist / "index.html"
    return files


def camera_query(camera: FitCamera) -> str:
    """`pos=x,y,z&target=x,y,z&fov=DEG` (vertical degrees) for viewer/src/main.js."""
    vec = lambda v: ",".join(f"{float(x):.9g}" for x in v)  # noqa: E731  (9 digits: far-off scenes keep mm)
    return f"pos={vec(camera.eye)}&target={vec(camera.target)}&fov={math.degrees(camera.fov_y):.9g}"


def parse_camera_query(url: str) -> dict[str, tuple[float, ...]]:
    """The camera the page receives from `url` ({"pos": (x,y,z), "target": ..., "fov": (deg,)}), as
    main.js reads it; only the parameters present."""
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return {k: tuple(float(x) for x in params[k][0].split(",")) for k in ("pos", "target", "fov") if k in params}


class StaticViewerServer:
    """Serves the static viewer and one file. `url` opens the viewer on that file, from `camera` when
    given (else the page frames the file's raw bounds itself)."""

    def __init__(self, splat_file: str | os.PathLike, host: str = "127.0.0.1", port: int = 0,
                 dist: str | os.PathLike | None = None, quiet: bool = True, camera: FitCamera | None = None) -> None:
        self.camera = camera
        dist_path = Path(dist) if dist else find_dist()
        if dist_path is None or not (dist_path / "index.html").is_file():
            raise FileNotFoundError("viewer/dist/index.html not found (build it: cd viewer && npm ci && npm run build)")
        self.file = Path(splat_file).resolve()
        if not self.file.is_file():
            raise FileNotFoundError(f"{splat_file}: no such file")
        self.routes = _allow_list(dist_path)
        self.scene_path = SCENE_PREFIX + urllib.parse.quote(self.file.name)
        self.routes[self.scene_path] = self.file
        routes, quiet_ = self.routes, quiet

        class Handler(BaseHTTPRequestHandler):
            server_version = "splatlab-static"

            def log_message(self, fmt, *args):  # noqa: N802
                if not quiet_:
                    super().log_message(fmt, *args)

            def _serve(self, body: bool) -> None:
                path = urllib.parse.urlsplit(self.path).path
                f = routes.get(path)
                if f is None:
                    self.send_error(404, "Not found")
                    return
                try:
                    data = f.read_bytes()
                except OSError:
                    self.send_error(404, "Not found")
                    return
                ctype = TYPES.get(f.suffix.lower()) or mimetypes.guess_type(f.name)[0] or "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._serve(True)

            def do_HEAD(self):  # noqa: N802
                self._serve(False)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        query = f"url={urllib.parse.quote(self.scene_path)}"
        if self.camera is not None:
            query += "&" + camera_query(self.camera)
        return f"http://{self.host}:{self.port}/?{query}"

    def start(self) -> "StaticViewerServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="splatlab-static", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
