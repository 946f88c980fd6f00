"""`splatlab process <photos> <out>` (photos -> COLMAP scene folder) and `splatlab triangulate <scene>`
(known poses -> sparse points); both are wired into the main CLI in splatlab/cli.py."""
from __future__ import annotations

import argparse
import sys

from ..cli import OneLineParser
from .scene import DatasetError


def build_parser(prog: str = "splatlab process") -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    from splatlab.writable import OutputPathError, check_output_dir

    try:
        check_output_dir(args.out)  # before the (long) structure-from-motion, not after
        from .sfm import run_sfm
        run_sfm(args.photos, args.out, matcher=args.matcher, camera_model=args.camera_model,
                max_image_size=args.max_image_size, overwrite=args.overwrite, verbose=not args.quiet)
    except (DatasetError, OutputPathError) as exc:
        print(f"splatlab process: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"splatlab process: error: {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def build_triangulate_parser(prog: str = "splatlab triangulate") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog, description="Sparse 3D points for a scene whose camera poses are known (Blender synthetic or "
                               "nerfstudio transforms.json): SIFT matches between the training views, triangulated "
                               "with the given poses. Training then starts from these points instead of random ones.")
    parser.add_argument("scene", help="scene folder (transforms_train.json or transforms.json)")
    parser.add_argument("--out", help="output .ply (default <scene>/points3d.ply, which the loaders read)")
    parser.add_argument("--min-angle", type=float, default=1.0,
                        help="smallest triangulation angle kept, degrees (default 1.0)")
    parser.add_argument("--max-error", type=float, default=1.5,
                        help="largest reprojection error kept in any view, pixels (default 1.5)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true", help="do not print progress")
    return parser


def triangulate_main(argv=None) -> int:
    args = build_triangulate_parser().parse_args(argv)
    from pathlib import Path

    from . import load_scene
    from .triangulate import POINTS_FILE, to_data_coordinates, triangulate_scene, write_points_ply

    try:
        scene = load_scene(args.scene)
        if scene.format == "colmap":
            raise DatasetError(f"{args.scene}: a COLMAP scene already has its SfM points (sparse/0/points3D)")
        root = Path(args.scene) if Path(args.scene).is_dir() else Path(args.scene).parent
        out = Path(args.out) if args.out else root / POINTS_FILE
        if out.exists() and not args.overwrite:
            raise DatasetError(f"{out}: exists (pass --overwrite to replace it)")
        result = triangulate_scene(scene, min_angle_deg=args.min_angle, max_error_px=args.max_error,
                                   log=(lambda *a, **k: None) if args.quiet else print)
        if len(result.points) == 0:
            raise DatasetError(f"{args.scene}: no point survived triangulation (too little texture or overlap?)")
        write_points_ply(out, to_data_coordinates(scene, result.points), result.colors)
        if not args.quiet:
            print(f"wrote {len(result.points)} points to {out}")
    except DatasetError as exc:
        print(f"splatlab triangulate: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(process_main())
