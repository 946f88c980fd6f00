"""`splatlab compress <splat file> --out scene.sog [--scene DIR] [--sh-degree N]`."""
from __future__ import annotations

import argparse
import json
import sys

from ..cli import OneLineParser


def _parser() -> argparse.ArgumentParser:
    ap = OneLineParser(
        prog="splatlab compress",
        description="Self-organizing grid compression: PLAS-sort the splats on the SOG texture grid and "
                    "write PlayCanvas SOG v2, with a size report (and quality on a dataset's test views).")
    ap.add_argument("input", help="splat file (.ply, compressed .ply, .sog, .spz, .splat)")
    ap.add_argument("--out", required=True, help="output .sog (or a folder / meta.json for loose files)")
    ap.add_argument("--scene", help="dataset folder: its training views measure how much each splat shows "
                                    "(see --prune-fraction); its test views are rendered with the original and "
                                    "the compressed splats to report PSNR/SSIM. Without it, the scene named in a "
                                    "metrics.json beside the input (as `splatlab train` writes) gives the training views")
    ap.add_argument("--sh-degree", type=int, choices=[0, 1, 2, 3], help="keep SH bands up to this degree")
    ap.add_argument("--keep-sh", action="store_true", help="never drop SH bands automatically")
    ap.add_argument("--sh-threshold", type=float, default=1.0 / 255.0,
                    help="drop top SH bands whose opacity-weighted RMS colour change is below this (default 1/255)")
    ap.add_argument("--order", choices=["plas", "morton", "keep"], default="plas",
                    help="texel order (default plas; keep: the input's row order, e.g. a grid trained with "
                         "`splatlab train --method sog`)")
    ap.add_argument("--plas-budget", type=float, help="time budget for the PLAS sort in seconds")
    ap.add_argument("--plas-threshold", type=float, default=1e-4, help="stop a radius when a pass gains less (1e-4)")
    ap.add_argument("--plas-init", choices=["morton2d", "random"], default="morton2d", help="PLAS start layout")
    ap.add_argument("--means-bits", type=int,
                    help="significant bits of the 16-bit log-positions, 9..16 (default: 12-16, enough for a step "
                         "of 1/1024 in log-space over the scene's range)")
    ap.add_argument("--sh-palette", type=int, help="SH palette entries (default 2^floor(log2(N/64)), 256..65536)")
    ap.add_argument("--keep-invisible", action="store_true",
                    help="keep splats with opacity < 1/255 (default: drop them, no rasterizer draws them; "
                         "never dropped with --order keep)")
    ap.add_argument("--prune-fraction", type=float, default=1e-3,
                    help="with training views: drop the least-seen splats that together carry less than this share "
                         "of the views' total blending weight (default 0.001; 0 keeps them)")
    ap.add_argument("--uniform-codebooks", action="store_true",
                    help="fit the scale/colour codebooks and the SH palette with every splat weighted alike "
                         "(default: weighted by how much each splat shows in the training views)")
    ap.add_argument("--no-importance", action="store_true",
                    help="do not render the training views at all: no pruning by visibility, uniform codebooks")
    ap.add_argument("--plas-only", action="store_true",
                    help="always write the PLAS layout (default: also try Morton order and keep the smaller file)")
    ap.add_argument("--sog-iterations", type=int, default=10, help="SH palette k-means iterations (default 10)")
    ap.add_argument("--downscale", type=int, default=1, help="evaluate at this image downscale (default 1)")
    ap.add_argument("--max-views", type=int, help="evaluate on at most this many test views")
    ap.add_argument("--threads", type=int, help="numba threads for the sort")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", help="also write the report as JSON here (atomically)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="print PLAS progress")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return ap


def compress_main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    prog = "splatlab compress"
    if args.sh_threshold < 0 or (args.plas_budget is not None and args.plas_budget <= 0) or args.downscale < 1 \
            or (args.max_views is not None and args.max_views < 1) or not 1 <= args.sog_iterations <= 1000 \
            or (args.means_bits is not None and not 9 <= args.means_bits <= 16) or not 0 <= args.prune_fraction < 1:
        print(f"{prog}: error: --sh-threshold must be >= 0, --plas-budget > 0, --downscale/--max-views >= 1, "
              f"--sog-iterations 1..1000, --means-bits 9..16, --prune-fraction in [0, 1)", file=sys.stderr)
        return 2
    from splatlab.writable import OutputPathError, check_splat_output

    try:
        check_splat_output(args.out)  # before the (minutes-long) compression, not after
    except OutputPathError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    try:
        from splatlab.data import DatasetError
        from splatlab.io import SplatFormatError

        from .pipeline import CompressOptions, _jsonable, compress, format_report
        from .plas import set_threads

        set_threads(args.threads)
        opts = CompressOptions(order=args.order, sh_degree=args.sh_degree, auto_sh=not args.keep_sh,
                               sh_threshold=args.sh_threshold, plas_threshold=args.plas_threshold,
                               plas_time_budget=args.plas_budget, plas_init=args.plas_init,
                               sh_iterations=args.sog_iterations, means_bits=args.means_bits,
                               drop_invisible=not args.keep_invisible,
                               prune_fraction=0.0 if args.no_importance else args.prune_fraction,
                               weighted_codebooks=not (args.uniform_codebooks or args.no_importance),
                               sh_palette=args.sh_palette, morton_fallback=not args.plas_only, seed=args.seed, verbose=args.verbose)
        report = compress(args.input, args.out, opts, scene_dir=args.scene, downscale=args.downscale,
                          max_views=args.max_views, report_path=args.report, auto_scene=not args.no_importance,
                          progress=not (args.quiet or args.json))
    except (SplatFormatError, DatasetError, ValueError, KeyError, OSError) as e:  # one line, no traceback
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_jsonable(report), indent=2))
    elif not args.quiet:
        print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(compress_main())
