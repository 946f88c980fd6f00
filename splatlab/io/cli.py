"""`export` and `info` subcommands; wired into the main `splatlab` CLI elsewhere.

    export_main(["in.ply", "out.sog"])   -> exit code
    info_main(["scene.spz", "--json"])   -> exit code
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ..cli import OneLineParser
from . import detect_format, formats, get_format, read_splats, write_splats
from ._common import SceneArrays, SplatFormatError


def _export_parser() -> argparse.ArgumentParser:
    names = [f.name for f in formats()]
    ap = OneLineParser(
        prog="splatlab export",
        description="Convert a splat file to another format (chosen by the output extension: "
                    ".ply .compressed.ply .sog meta.json .spz .splat).")
    ap.add_argument("input", help="input splat file (.ply, compressed .ply, .sog/meta.json/folder, .spz, .splat)")
    ap.add_argument("output", help="output path; its extension picks the format")
    ap.add_argument("--format", choices=names, help="force the output format instead of using the extension")
    ap.add_argument("--sh-degree", type=int, choices=[0, 1, 2, 3], help="drop SH bands above this degree")
    ap.add_argument("--spz-version", type=int, choices=[2, 3], default=3, help="SPZ version to write (default 3)")
    ap.add_argument("--sog-iterations", type=int, default=10, help="SOG SH k-means iterations (default 10)")
    ap.add_argument("--level", type=int, metavar="L",
                    help="hierarchical scenes: write the flat level-L picture (0 = coarsest; -1 = finest)")
    ap.add_argument("--lod", type=float, metavar="PIXELS",
                    help="hierarchical scenes: write the level-of-detail cut at this pixel threshold, fine "
                         "enough for every training camera of the run (input must be a run folder)")
    ap.add_argument("--time", type=float, metavar="T",
                    help="temporal scenes (run folder, .ply or temporal splat folder): write the plain 3D "
                         "Gaussians active at T seconds (sliced, the cut ones dropped)")
    ap.add_argument("--segments", action="store_true",
                    help="temporal scenes: write a temporal splat folder (OUTPUT: index.json and one file per "
                         "segment of the hierarchy) that view, render and export --time page in a moment at a time")
    ap.add_argument("--sh-min", dest="sh_min", type=float, default=0.0, metavar="X",
                    help="with --segments: rows whose SH bands above 0 change no colour by X or more keep their "
                         "colour only (default 0: lossless)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return ap


def read_input(path: str, time: float | None = None):
    """The scene an export reads: a run folder's point_cloud.ply, a temporal splat folder (only the
    segments active at `time` are read), or any splat file / SOG folder."""
    import os

    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "index.json")):
        from splatlab.methods.temporal_store import SegmentStore

        try:
            store = SegmentStore(path)
        except ValueError as e:
            raise SplatFormatError(path, str(e).split(": ", 1)[-1]) from None
        if time is None:
            raise SplatFormatError(path, "a temporal splat folder holds a clip; give --time T to export one moment")
        check_time(path, time, store.method.config.duration)
        return store.load_active(time)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "point_cloud.ply")):
        return read_splats(os.path.join(path, "point_cloud.ply"))
    return read_splats(path)


def check_time(path: str, time: float, duration: float) -> None:
    import math

    if not math.isfinite(time) or not 0.0 <= time <= duration:
        raise SplatFormatError(path, f"--time {time} is outside the clip (0..{duration:g} s)")


def temporal_method(g, input_path: str, flag: str):
    """The temporal method of a scene with a clip duration, or a one-line error naming `flag`."""
    if g.method is None or g.method.name != "temporal":
        raise SplatFormatError(input_path, f"{flag} needs a temporal scene (trained with --method temporal), this "
                                           f"one is {g.method.name if g.method else 'plain 3DGS'}")
    from splatlab.render.path import method_of

    try:
        method = method_of(g)
    except ValueError as e:
        raise SplatFormatError(input_path, " ".join(str(e).split())) from None
    if method.config.duration <= 0:
        raise SplatFormatError(input_path, f"the temporal scene has no clip duration (static); export it without {flag}")
    return method


def moment(g, input_path: str, time: float):
    """The plain 3D Gaussians of a temporal scene at `time` seconds (`TemporalHierarchy.gaussians_at`)."""
    method = temporal_method(g, input_path, "--time")
    check_time(input_path, time, method.config.duration)
    return method.gaussians_at(g, time)


def export_segments(args) -> None:
    """`export --segments`: a temporal scene as a segment folder, written beside the target and
    renamed into place, so a failure leaves nothing behind (errors raise; `export_main` reports them)."""
    import math
    import os
    import shutil
    from pathlib import Path

    from splatlab.methods.temporal_store import SegmentStore

    out = Path(args.output)
    if not math.isfinite(args.sh_min) or args.sh_min < 0:
        raise SplatFormatError(args.output, f"--sh-min must be a number >= 0, got {args.sh_min}")
    if args.time is not None or args.level is not None or args.lod is not None:
        raise SplatFormatError(args.output, "--segments writes the whole clip; drop --time/--level/--lod")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise SplatFormatError(args.output, "exists and is not an empty folder")
    if not out.parent.is_dir():
        raise SplatFormatError(args.output, f"its folder {out.parent} does not exist")
    t0 = time.perf_counter()
    g = read_input(args.input)
    method = temporal_method(g, args.input, "--segments")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        store = SegmentStore.create(tmp, method)
        store.write_all(g, sh_min=args.sh_min)
        summary = f"{store.total_count()} splats in {len(store.index['segments'])} segments, {store.nbytes() / 1e6:.2f} MB"
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.quiet:
        print(f"wrote {out} (temporal splat folder): {summary}, {time.perf_counter() - t0:.1f} s")


def _run_cameras(run: str):
    """The training cameras of a finished run folder (its metrics.json names the scene)."""
    import os

    from splatlab.data import load_scene

    path = os.path.join(run, "metrics.json")
    try:
        with open(path) as f:
            cfg = json.load(f)["config"]
    except (OSError, ValueError, KeyError) as e:
        raise SplatFormatError(run, f"--lod needs a finished run folder (no readable metrics.json: {e})") from None
    return load_scene(cfg["scene"], downscale=cfg.get("downscale", 1), cache_images=False).train.cameras


def hierarchy_cut(g, input_path: str, level: int | None, lod: float | None):
    """A flat plain-3DGS cut of a hierarchical scene (`--level` / `--lod`)."""
    import os

    if g.method is None or g.method.name != "hierarchical":
        raise SplatFormatError(input_path, "--level/--lod need a hierarchical scene (trained with --method "
                                           f"hierarchical), this one is {g.method.name if g.method else 'plain 3DGS'}")
    from splatlab.methods import hierarchical as hier

    level_idx, parent = hier.tree_of(g)
    if lod is not None:
        if lod <= 0:
            raise SplatFormatError(input_path, f"--lod must be > 0 pixels, got {lod}")
        if not os.path.isdir(input_path):
            raise SplatFormatError(input_path, "--lod needs the run folder as input (its training cameras decide the cut)")
        rows = hier.cut_for_cameras(g, _run_cameras(input_path), lod)
    else:
        finest = int(level_idx.max())
        if level < -1 or level > finest:
            raise SplatFormatError(input_path, f"--level must be in -1..{finest}, got {level}")
        rows = hier.level_cut(level_idx, parent, finest if level < 0 else level)
    return hier.bake(g, rows)


MAX_SOG_ITERATIONS = 1000  # k-means rounds for the SH palette; 10 is the default, 1000 is already hours


def export_main(argv: list[str] | None = None) -> int:
    ap = _export_parser()
    args = ap.parse_args(argv)
    if not 1 <= args.sog_iterations <= MAX_SOG_ITERATIONS:
        ap.error(f"--sog-iterations must be in 1..{MAX_SOG_ITERATIONS}, got {args.sog_iterations}")
    from splatlab.writable import OutputPathError, check_splat_output

    try:
        if not args.segments:  # a segment folder is checked by export_segments
            check_splat_output(args.output)  # before reading (and converting) the input
    except OutputPathError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        if args.segments:
            export_segments(args)
            return 0
        t0 = time.perf_counter()
        import os

        g = read_input(args.input, args.time)
        if args.time is not None:
            if args.level is not None or args.lod is not None:
                raise SplatFormatError(args.input, "give --time or --level/--lod, not both")
            g = moment(g, args.input, args.time)
        if args.level is not None or args.lod is not None:
            if args.level is not None and args.lod is not None:
                raise SplatFormatError(args.input, "give --level or --lod, not both")
            g = hierarchy_cut(g, args.input, args.level, args.lod)
        fmt = get_format(args.format) if args.format else detect_format(args.output, for_write=True)
        scene = SceneArrays.from_gaussians(g)
        notes = []
        deg_in = scene.sh_degree
        if args.sh_degree is not None and args.sh_degree < scene.sh_degree:
            scene = scene.truncate_sh(args.sh_degree)
        if scene.sh_degree > fmt.max_sh_degree:
            notes.append(f"{fmt.name} holds SH degree <= {fmt.max_sh_degree}; dropped degree {scene.sh_degree} bands")
            scene = scene.truncate_sh(fmt.max_sh_degree)
        if scene.extras and fmt.name != "ply":
            notes.append(f"{fmt.name} has no room for extra fields {', '.join(scene.extras)}; dropped")
        opts = {}
        if fmt.name == "spz":
            opts["version"] = args.spz_version
        if fmt.name == "sog":
            opts["sh_iterations"] = args.sog_iterations
        write_splats(args.output, scene.to_gaussians(), format=fmt.name, **opts)
        if not args.quiet:
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
            print(f"wrote {args.output} ({fmt.name}): {len(scene)} splats, SH degree {deg_in} -> {scene.sh_degree}, "
                  f"{time.perf_counter() - t0:.1f} s")
        return 0
    except SplatFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or args.output}: {e.strerror or e}", file=sys.stderr)
        return 1


def _fmt_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def info_main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="splatlab info", description="Describe a splat file.")
    ap.add_argument("input", help="splat file (.ply, compressed .ply, .sog/meta.json/folder, .spz, .splat)")
    ap.add_argument("--json", action="store_true", help="print the description as JSON")
    args = ap.parse_args(argv)
    from .info import describe
    try:
        d = describe(args.input)
    except SplatFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    lo, hi = d["bounds"]["min"], d["bounds"]["max"]
    rows = [("format", f"{d['format']} ({d['description']})"),
            ("size", f"{_fmt_size(d['file_size'])} ({d['bytes_per_splat']:.1f} bytes/splat)"),
            ("splats", d["count"]), ("SH degree", d["sh_degree"]),
            ("bounds", f"min ({lo[0]:.4g}, {lo[1]:.4g}, {lo[2]:.4g})  max ({hi[0]:.4g}, {hi[1]:.4g}, {hi[2]:.4g})")]
    if d["extras"]:
        rows.append(("extras", ", ".join(d["extras"])))
    rows += list(d["details"].items())
    print(d["path"])
    for label, value in rows:
        print(f"  {label:<16}{value}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(export_main())
