"""`splatlab render`: a splat file (any format splatlab reads) to PNG images from orbit cameras that
keep the whole object in frame (stray splats ignored; `splatlab.framing`)."""
from __future__ import annotations

import math
import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

from ..cameras import Cameras, FramingError
from ..cli import OneLineParser
from ..framing import ELEVATION_DEG, FOV_Y_DEG, check_frameable, fit_orbit
from ..gaussians import Gaussians
from .path import method_of, render


#: per-image bound: a render holds ~70 bytes per pixel at its peak (colour, alpha, the rasterizer's
#: per-pixel state, the 8-bit copy), so 4096x4096 stays near 1.5 GB
MAX_PIXELS = 4096 * 4096
MAX_SIDE = 16384
MAX_VIEWS = 10000


def auto_orbit(gaussians: Gaussians, n_views: int, width: int, height: int, fov_deg: float = FOV_Y_DEG,
               elevation_deg: float = ELEVATION_DEG) -> tuple[torch.Tensor, torch.Tensor]:
    """Cameras circling the scene (z up) with the whole object in frame (`splatlab.framing`: stray
    splats ignored, one distance for all views); `fov_deg` is the vertical field of view.
    Raises `FramingError` (one line) for a scene no camera in the renderer's range can frame."""
    viewmats, Ks, box = fit_orbit(gaussians, n_views, width, height, math.radians(fov_deg), elevation_deg)
    check_frameable(viewmats, box)
    return viewmats, Ks


def with_detail_options(gaussians: Gaussians, lod: float | None, level: int | None) -> str | None:
    """Set a hierarchical scene's `lod` / `level` render options (through its method spec, so the one
    render path draws the cut); returns an error message for other scenes or bad values."""
    from ..gaussians import MethodSpec

    spec = gaussians.method
    if spec is None or spec.name != "hierarchical":
        return f"--lod/--level need a hierarchical scene, this one is {spec.name if spec else 'plain 3DGS'}"
    if lod is not None and lod < 0:
        return f"--lod must be >= 0 pixels, got {lod}"
    options = dict(spec.options)
    if lod is not None:
        options["lod"] = float(lod)
    if level is not None:
        options["level"] = int(level)
    gaussians.method = MethodSpec(spec.name, options)
    return None


def render_views(gaussians: Gaussians, viewmats, Ks, width: int, height: int, background=(0.0, 0.0, 0.0),
                 time: float | None = None):
    """(C, H, W, 3) evaluation renders through the one render path (the scene's own method);
    `time` (seconds) is the moment every camera sees (dynamic methods such as `temporal`)."""
    times = None if time is None else torch.full((len(viewmats),), float(time))
    with torch.no_grad():
        out = render(gaussians, Cameras(viewmats, Ks, width, height, times=times),
                     background=torch.tensor(background, dtype=torch.float32))
    return out.images.clamp(0, 1)


def save_png(image: torch.Tensor, path: str) -> None:
    """Atomic PNG write (temp file + rename); OS errors name `path`, never the temp file."""
    from ..io._common import naming_target

    array = (image.cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        os.close(fd)
        Image.fromarray(array).save(tmp, format="PNG")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a rendered image is an ordinary file
        os.replace(tmp, path)
    except OSError as err:
        raise naming_target(err, path, tmp if tmp is not None else err.filename) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def render_main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="splatlab render", description=__doc__)
    ap.add_argument("input", help="splat file: .ply, compressed .ply, .sog, .spz, .splat")
    ap.add_argument("--out", default="render.png",
                    help="output PNG; with --views > 1, files are named <stem>_000.png, ...")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--views", type=int, default=1, help="number of orbit views")
    ap.add_argument("--elevation", type=float, default=ELEVATION_DEG, help="orbit elevation in degrees")
    ap.add_argument("--background", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("R", "G", "B"))
    ap.add_argument("--lod", type=float, metavar="PIXELS",
                    help="hierarchical scenes: per-view level-of-detail cut (subtrees stop refining below "
                         "this projected size in pixels)")
    ap.add_argument("--level", type=int, metavar="L", help="hierarchical scenes: render level L (0 = coarsest)")
    ap.add_argument("--time", type=float, default=None,
                    help="moment to render in seconds (dynamic scenes, e.g. --method temporal runs)")
    ap.add_argument("--time-range", type=float, nargs=2, metavar=("T0", "T1"),
                    help="dynamic scenes: render --frames moments from T0 to T1 seconds; PNG frames "
                         "<stem>_f000.png ..., or one MP4 when --out ends in .mp4 (one view)")
    ap.add_argument("--frames", type=int, default=30, help="moments in --time-range (default 30)")
    ap.add_argument("--fps", type=float, default=30.0, help="MP4 frame rate for --time-range (default 30)")
    args = ap.parse_args(argv)
    if args.width < 1 or args.height < 1 or args.views < 1:
        ap.error("--width, --height and --views must be positive")
    if max(args.width, args.height) > MAX_SIDE or args.width * args.height > MAX_PIXELS:
        ap.error(f"--width {args.width} --height {args.height} is too large: at most {MAX_SIDE} pixels a side and "
                 f"{MAX_PIXELS / 1e6:.1f} megapixels ({math.isqrt(MAX_PIXELS)}x{math.isqrt(MAX_PIXELS)}) per image")
    if args.views > MAX_VIEWS:
        ap.error(f"--views {args.views} is too many (at most {MAX_VIEWS})")
    if not (math.isfinite(args.elevation) and all(math.isfinite(v) for v in args.background)):
        ap.error("--elevation and --background must be finite numbers")
    if args.time is not None and not math.isfinite(args.time):
        ap.error("--time must be a finite number")
    if args.time_range is not None:
        if args.time is not None:
            ap.error("give --time or --time-range, not both")
        if args.frames < 1 or not args.fps > 0 or not all(math.isfinite(t) for t in args.time_range):
            ap.error("--frames and --fps must be positive, --time-range finite")
        if args.out.lower().endswith(".mp4") and args.views != 1:
            ap.error("an MP4 holds one view: use --views 1 (or PNG frames)")
    from ..io import read_splats
    from ..writable import OutputPathError, check_output_file

    paths = [args.out] if args.views == 1 else view_paths(args.out, args.views)
    try:
        for path in dict.fromkeys(paths[:1] + paths[-1:]):
            check_output_file(path)  # before the (slow) read and render, not after
    except OutputPathError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        gaussians = read_splats(args.input)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        method_of(gaussians)  # the method the file names, with its options (validated)
    except ValueError as err:
        print(f"error: {args.input}: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    if args.lod is not None or args.level is not None:
        err = with_detail_options(gaussians, args.lod, args.level)
        if err:
            print(f"error: {args.input}: {err}", file=sys.stderr)
            return 1
    try:
        viewmats, Ks = auto_orbit(gaussians, args.views, args.width, args.height, elevation_deg=args.elevation)
    except FramingError as err:
        print(f"error: {args.input}: {err}", file=sys.stderr)
        return 1
    if args.time_range is not None:
        return render_time_range(gaussians, viewmats, Ks, args)
    for i, path in enumerate(paths):  # one view at a time: each is written as soon as it is rendered
        image = render_views(gaussians, viewmats[i:i + 1], Ks[i:i + 1], args.width, args.height,
                             tuple(args.background), args.time)[0]
        try:
            save_png(image, path)
        except OSError as err:
            print(f"error: {path}: cannot write: {err.strerror or err}", file=sys.stderr)
            return 1
        print(f"wrote {path}", flush=True)
    return 0


def render_time_range(gaussians: Gaussians, viewmats, Ks, args) -> int:
    """`--time-range T0 T1`: every view at `--frames` moments, as PNG frames or one MP4."""
    duration = float((gaussians.method.options.get("duration", 0.0) if gaussians.method else 0.0) or 0.0)
    if gaussians.method is None or gaussians.method.name != "temporal" or duration <= 0:
        print(f"error: {args.input}: --time-range needs a temporal scene with a clip duration", file=sys.stderr)
        return 1
    t0, t1 = args.time_range
    if not (0.0 <= t0 <= duration and 0.0 <= t1 <= duration):
        print(f"error: {args.input}: --time-range {t0:g} {t1:g} is outside the clip (0..{duration:g} s)",
              file=sys.stderr)
        return 1
    times = np.linspace(t0, t1, args.frames) if args.frames > 1 else np.array([t0])
    stem, ext = os.path.splitext(args.out)
    if ext.lower() == ".mp4":
        from .video import write_mp4

        directory = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(directory, exist_ok=True)
        frames = tempfile.mkdtemp(prefix=".frames_", dir=directory)
        try:
            for i, t in enumerate(times):
                image = render_views(gaussians, viewmats, Ks, args.width, args.height, tuple(args.background), float(t))[0]
                save_png(image, os.path.join(frames, f"frame_{i:05d}.png"))
            write_mp4(frames, len(times), args.fps, args.out)
        finally:
            import shutil

            shutil.rmtree(frames, ignore_errors=True)
        print(f"wrote {args.out} ({len(times)} frames, t = {t0:g}..{t1:g} s)")
        return 0
    for i, t in enumerate(times):
        images = render_views(gaussians, viewmats, Ks, args.width, args.height, tuple(args.background), float(t))
        for v, image in enumerate(images):
            view = "" if len(images) == 1 else f"_v{v:03d}"
            path = f"{stem}{view}_f{i:03d}{ext or '.png'}"
            save_png(image, path)
            print(f"wrote {path} (t = {t:.4g} s)")
    return 0


def view_paths(out: str, n: int) -> list[str]:
    """`<stem>_000.png`, ... for `n` views (more digits when there are more than 1000)."""
    stem, ext = os.path.splitext(out)
    digits = max(3, len(str(n - 1)))
    return [f"{stem}_{i:0{digits}d}{ext or '.png'}" for i in range(n)]
