"""`splatlab view`: browser viewer for splat files and training runs (viser), or a static WebGL page."""
from __future__ import annotations

import argparse
import os
import sys
import time

DESCRIPTION = """Open a splat file (.ply, compressed .ply, .sog, .spz, .splat), a SOG folder, a checkpoint
(.pt) or a training run folder (newest point_cloud.ply or checkpoint, dataset cameras as frustums) in
the browser. Default: a viser app with browser-side splats and server-side splatlab renders.
--static: serve the prebuilt WebGL page (viewer/dist) and exactly that one file."""


def _error(msg: str) -> int:
    print(f"splatlab view: error: {msg}", file=sys.stderr)
    return 1


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="splatlab view", description=DESCRIPTION)
    ap.add_argument("input", help="splat file, SOG folder, checkpoint or run folder")
    ap.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; use 0.0.0.0 only on a trusted network)")
    ap.add_argument("--static", action="store_true", help="serve the static WebGL viewer instead of viser")
    ap.add_argument("--renderer", choices=("browser", "server"), default="browser",
                    help="initial display: viser's WebGL splats or splatlab server renders")
    ap.add_argument("--max-res", type=int, default=640, help="long side of server renders in pixels")
    ap.add_argument("--out", default="splatlab_view", help="folder for screenshots and camera-path frames")
    ap.add_argument("--no-cameras", action="store_true", help="do not load a run's dataset cameras")
    return ap


def serve_static(path: str, host: str, port: int) -> int:
    from .source import ViewerInputError, read_splat_file
    from .static_server import StaticViewerServer

    if os.path.isdir(path):
        return _error(f"{path}: --static serves one file (.ply, compressed .ply, .sog, .spz); pass the file")
    try:
        src = read_splat_file(path)  # same checks as the viser viewer: bad files never reach the page
    except ViewerInputError as err:
        return _error(str(err))
    if src.format == "spz":
        from ..io.spz import read_spz_header
        try:
            if read_spz_header(path)["version"] > 3:
                print("splatlab view: warning: SPZ v4 is not readable by the static viewer (Spark reads v2/v3); "
                      "convert with `splatlab export`", file=sys.stderr)
        except Exception:
            pass
    try:
        srv = StaticViewerServer(path, host, port, quiet=True)
    except (OSError, FileNotFoundError) as err:
        return _error(_one_line(err))
    print(f"splatlab view: {src.label}: {len(src.gaussians):,} Gaussians", flush=True)
    print(f"splatlab view: open {srv.url}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.httpd.server_close()
    return 0


def view_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        return _error(f"--port {args.port} is not a valid port")
    if args.static:
        return serve_static(args.input, args.host, args.port)
    from .source import ViewerInputError, open_source

    try:
        source = open_source(args.input, with_cameras=not args.no_cameras)
    except ViewerInputError as err:
        return _error(str(err))
    except Exception as err:  # anything else a broken input can raise: still one line, no traceback
        return _error(f"{args.input}: {_one_line(err)}")
    try:
        import viser
    except ImportError:
        return _error("the viser package is not installed (pip install viser==1.1.1)")
    from .app import DISPLAY_BROWSER, DISPLAY_SERVER, ViewerApp

    try:
        server = viser.ViserServer(host=args.host, port=args.port, label="splatlab", verbose=False)
    except OSError as err:
        return _error(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
    app = ViewerApp(server, source, out_dir=args.out, max_resolution=args.max_res,
                    display=DISPLAY_SERVER if args.renderer == "server" else DISPLAY_BROWSER)
    g = source.gaussians
    print(f"splatlab view: {source.label}: {len(g):,} Gaussians, SH degree {g.sh_degree}", flush=True)
    for note in source.notes:
        print(f"splatlab view: note: {note}", flush=True)
    print(f"splatlab view: open http://{args.host}:{server.get_port()}  (Ctrl+C to stop)", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
        server.stop()
    return 0
