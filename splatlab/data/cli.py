"""`splatlab process <photos> <out>`: photos -> COLMAP scene folder (wired into the main CLI elsewhere)."""
from __future__ import annotations

import argparse
import sys

from .scene import DatasetError


def build_parser(prog: str = "splatlab process") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Estimate camera poses for a folder of photos with COLMAP (pycolmap, CPU) "
                               "and write a scene folder (images/ + sparse/0/) that splatlab can train on.")
    parser.add_argument("photos", help="folder of photos (all the same size)")
    parser.add_argument("out", help="output scene folder (created; must not exist unless --overwrite)")
    parser.add_argument("--matcher", choices=("auto", "exhaustive", "sequential"), default="auto",
                        help="exhaustive: all pairs (best for <= 100 photos); sequential: ordered video frames; "
                             "auto: exhaustive up to 100 photos (default)")
    parser.add_argument("--camera-model", default="SIMPLE_RADIAL",
                        choices=("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV"),
                        help="camera model to estimate (default SIMPLE_RADIAL)")
    parser.add_argument("--max-image-size", type=int, default=3200,
                        help="photos larger than this are downscaled for feature extraction (default 3200)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--quiet", action="store_true", help="do not print progress")
    return parser


def process_main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from .sfm import run_sfm
        run_sfm(args.photos, args.out, matcher=args.matcher, camera_model=args.camera_model,
                max_image_size=args.max_image_size, overwrite=args.overwrite, verbose=not args.quiet)
    except DatasetError as exc:
        print(f"splatlab process: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(process_main())
