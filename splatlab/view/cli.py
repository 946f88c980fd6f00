"""`splatlab view`: browser viewer for splat files and training runs (viser), or a static WebGL page."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from ..cli import OneLineParser

if TYPE_CHECKING:
    from .source import ViewSource
    from .static_server import StaticViewerServer

DEFAULT_OUT = "splatlab_view"
DESCRIPTION = """Open a splat file (.ply, compressed .ply, .sog, .spz, .splat), a SOG or temporal splat folder, a checkpoint
(.pt) or a training run folder (newest point_cloud.ply or checkpoint) in the browser. Default: a viser
app with browser-side splats and server-side splatlab renders. It opens with the whole scene in view
(the same fitted camera as `splatlab render` and --static; stray splats are ignored). A run folder's
dataset cameras are frustums with a thumbnail of their image (hidden at first when there are more than
20: tick "Dataset cameras"); click one to look through that camera.
Several inputs (runs or files of different methods) open together: "Compare runs" in the GUI picks
the one shown, and "Side by side" renders two (or all) of them from the same camera, left to right.
Temporal scenes (--method temporal runs, temporal splat folders) get a time slider with play/pause
and frame stepping; hierarchical scenes a level-of-detail control (a fixed level or a per-view pixel
threshold). Both show the Gaussians drawn.
--static: serve the prebuilt WebGL page (viewer/dist) and exactly one file."""

EPILOG = """examples:
  splatlab view runs/garden                      newest result of a run, with its cameras
  splatlab view scene.sog --renderer server      splatlab's own renders instead of WebGL splats
  splatlab view runs/3dgs runs/mcmc out.spz      compare runs / files (dropdown + side by side)"""


def _error(msg: str) -> int:
    print(f"splatlab view: error: {msg}", file=sys.stderr)
    return 1


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="splatlab view", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", metavar="input",
                    help="splat file, SOG folder, checkpoint or run folder; give several to compare them")
    ap.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; use 0.0.0.0 only on a trusted network)")
    ap.add_argument("--static", action="store_true", help="serve the static WebGL viewer instead of viser")
    ap.add_argument("--renderer", choices=("browser", "server"), default="browser",
                    help="initial display: viser's WebGL splats or splatlab server renders")
    ap.add_argument("--max-res", type=int, default=640, help="long side of server renders in pixels")
    ap.add_argument("--out", default=DEFAULT_OUT, help="folder for screenshots and camera-path frames")
    ap.add_argument("--no-cameras", action="store_true", help="do not load a run's dataset cameras")
    ap.add_argument("--max-cameras", type=int, default=200,
                    help="most dataset-camera frustums (with thumbnails) drawn per run (default 200; 0: none)")
    return ap


def static_server_for(src: "ViewSource", path: str, host: str, port: int) -> "StaticViewerServer":
    """The `--static` server for an already-read file: opens on the fitted camera (`splatlab.framing`)."""
    from ..framing import fit_camera
    from .static_server import StaticViewerServer

    return StaticViewerServer(path, host, port, quiet=True, camera=fit_camera(src.gaussians))


def serve_static(path: str, host: str, port: int) -> int:
    from .source import ViewerInputError, read_splat_file

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
        srv = static_server_for(src, path, host, port)
    except (OSError, FileNotFoundError) as err:
        return _error(_one_line(err))
    try:  # from here on Ctrl+C must close the server, even if it lands while we are still printing
        print(f"splatlab view: {src.label}: {len(src.gaussians):,} Gaussians", flush=True)
        print(f"splatlab view: open {srv.url}", flush=True)
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.httpd.server_close()
    return 0


def view_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .listen import ListenAddressError, check_listen_address

    try:
        check_listen_address(args.host, args.port)
    except ListenAddressError as err:
        return _error(str(err))
    if not 16 <= args.max_res <= 4096:  # a render holds ~70 bytes a pixel: 4096 on the long side stays < 2 GB
        return _error(f"--max-res {args.max_res} must be in 16..4096 pixels")
    if args.max_cameras < 0:
        return _error(f"--max-cameras {args.max_cameras} must be 0 or more")
    if args.out != DEFAULT_OUT:  # an explicit screenshot folder must be writable before the viewer starts
        from ..writable import OutputPathError, check_output_dir

        try:
            check_output_dir(args.out)
        except OutputPathError as err:
            return _error(f"--out {err}")
    if args.static:
        if len(args.inputs) > 1:
            return _error(f"--static serves one file, got {len(args.inputs)} inputs ({', '.join(args.inputs)})")
        return serve_static(args.inputs[0], args.host, args.port)
    from .source import ViewerInputError, open_sources

    try:
        sources = open_sources(args.inputs, with_cameras=not args.no_cameras and args.max_cameras > 0)
    except ViewerInputError as err:
        return _error(str(err))
    from ..cameras import FramingError
    from ..framing import check_frameable, fit_orbit

    for source in sources:
        try:
            viewmats, _, box = fit_orbit(source.gaussians, 1, 64, 64)
            check_frameable(viewmats, box)
        except FramingError as err:
            source.notes.append(f"{err}; navigate from the initial view")
    try:
        import viser
    except ImportError:
        return _error("the viser package is not installed (pip install viser==1.1.1)")
    from .app import DISPLAY_BROWSER, DISPLAY_SERVER, ViewerApp

    from .origin import guarded_viser

    try:
        with guarded_viser(args.host):  # only pages served by this viewer may open its websocket
            server = viser.ViserServer(host=args.host, port=args.port, label="splatlab", verbose=False)
    except OSError as err:
        return _error(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
    app = None
    try:  # from here on Ctrl+C must stop the server threads, wherever it lands (else the process hangs)
        app = ViewerApp(server, sources, out_dir=args.out, max_resolution=args.max_res,
                        max_cameras=args.max_cameras,
                        display=DISPLAY_SERVER if args.renderer == "server" else DISPLAY_BROWSER)
        for label, source in zip(app.labels, sources):
            g = source.gaussians
            cams = f", {len(source.cameras)} dataset cameras" if source.cameras is not None else ""
            print(f"splatlab view: {label}: {len(g):,} Gaussians, SH degree {g.sh_degree}{cams}", flush=True)
            for note in source.notes:
                print(f"splatlab view: note: {label}: {note}" if len(sources) > 1 else f"splatlab view: note: {note}",
                      flush=True)
        print(f"splatlab view: open http://{args.host}:{server.get_port()}  (Ctrl+C to stop)", flush=True)
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        if app is not None:
            app.stop()
        server.stop()
    return 0
