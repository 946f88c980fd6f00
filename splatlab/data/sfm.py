"""Photos -> poses with pycolmap (CPU): features, matching, incremental mapping, undistortion.

The result is a COLMAP scene folder (`<out>/images`, `<out>/sparse/0`) that `load_scene` reads.
Everything is written to a temporary folder next to `out_dir` and renamed into place at the end,
so an interrupted run never leaves a half-written output.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from .scene import DatasetError, _open_header, one_line

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}


def list_photos(photos_dir: Path) -> list[str]:
    return sorted(p.name for p in Path(photos_dir).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def _import_pycolmap():
    try:
        import pycolmap
    except ImportError:
        raise DatasetError("structure from motion needs pycolmap: pip install pycolmap") from None
    return pycolmap


def run_sfm(photos_dir, out_dir, matcher: str = "auto", camera_model: str = "SIMPLE_RADIAL",
            single_camera: bool = True, max_image_size: int = 3200, max_num_features: int = 8192,
            min_registered_fraction: float = 0.5, overwrite: bool = False, seed: int = 0,
            num_threads: int = -1, verbose: bool = True, colmap_log: bool = False, log=print) -> Path:
    """Reconstruct camera poses for the photos in `photos_dir`; write a COLMAP scene to `out_dir`.

    matcher: "exhaustive", "sequential" (ordered video frames) or "auto" (exhaustive up to 100
    images). The largest reconstruction is kept and undistorted into `out_dir/images` +
    `out_dir/sparse/0`. Raises DatasetError for fewer than 3 photos, mismatched photo sizes, or
    when fewer than `min_registered_fraction` of the photos register. Returns `out_dir`.
    COLMAP's own (verbose) log lines are only shown with `colmap_log`.
    """
    photos_dir, out_dir = Path(photos_dir), Path(out_dir)
    say = log if verbose else (lambda *a, **k: None)
    if not photos_dir.is_dir():
        raise DatasetError(f"{photos_dir}: not a folder of photos")
    names = list_photos(photos_dir)
    if len(names) < 3:
        raise DatasetError(f"{photos_dir}: found {len(names)} photos, structure from motion needs at least 3")
    if matcher not in ("auto", "exhaustive", "sequential"):
        raise DatasetError(f"unknown matcher {matcher!r} (use exhaustive, sequential or auto)")
    if matcher == "auto":
        matcher = "exhaustive" if len(names) <= 100 else "sequential"
    sizes = {n: _open_header(photos_dir / n) for n in names}
    first = names[0]
    for n in names:
        if single_camera and sizes[n] != sizes[first]:
            raise DatasetError(f"photos have different sizes: {photos_dir / n} is {sizes[n][0]}x{sizes[n][1]} "
                               f"but {photos_dir / first} is {sizes[first][0]}x{sizes[first][1]}")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise DatasetError(f"{out_dir}: output folder exists and is not empty (pass overwrite=True / --overwrite)")

    pycolmap = _import_pycolmap()
    pycolmap.set_random_seed(seed)
    old_level = pycolmap.logging.minloglevel
    if not colmap_log:
        pycolmap.logging.minloglevel = 1  # warnings and errors only
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.sfm-", dir=out_dir.parent))
    t_start = time.time()
    try:
        work, result = tmp / "work", tmp / "result"
        work.mkdir()
        database = work / "database.db"

        say(f"[sfm] 1/4 extracting SIFT features from {len(names)} photos (CPU)")
        t = time.time()
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = camera_model
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.use_gpu = False
        extraction.max_image_size = max_image_size
        extraction.num_threads = num_threads
        extraction.sift.max_num_features = max_num_features
        mode = pycolmap.CameraMode.SINGLE if single_camera else pycolmap.CameraMode.AUTO
        pycolmap.extract_features(database, photos_dir, image_names=names, camera_mode=mode,
                                  reader_options=reader, extraction_options=extraction,
                                  device=pycolmap.Device.cpu)
        say(f"[sfm]     done in {time.time() - t:.1f}s")

        say(f"[sfm] 2/4 {matcher} matching")
        t = time.time()
        matching = pycolmap.FeatureMatchingOptions()
        matching.use_gpu = False
        matching.num_threads = num_threads
        if matcher == "exhaustive":
            pycolmap.match_exhaustive(database, matching_options=matching, device=pycolmap.Device.cpu)
        else:
            pycolmap.match_sequential(database, matching_options=matching, device=pycolmap.Device.cpu)
        say(f"[sfm]     done in {time.time() - t:.1f}s")

        say("[sfm] 3/4 incremental mapping")
        t = time.time()
        options = pycolmap.IncrementalPipelineOptions()
        options.num_threads = num_threads
        options.random_seed = seed
        sparse_all = work / "sparse"
        sparse_all.mkdir()
        recs = pycolmap.incremental_mapping(database, photos_dir, sparse_all, options=options)
        if not recs:
            raise DatasetError(f"{photos_dir}: structure from motion failed: 0 of {len(names)} images registered "
                               f"(photos need overlap and texture)")
        best = max(recs.values(), key=lambda r: r.num_reg_images())
        registered = best.num_reg_images()
        say(f"[sfm]     {len(recs)} model(s); largest has {registered} of {len(names)} images, "
            f"{best.num_points3D()} points; done in {time.time() - t:.1f}s")
        if registered < 3 or registered < min_registered_fraction * len(names):
            raise DatasetError(f"{photos_dir}: only {registered} of {len(names)} images registered "
                               f"(need at least {min_registered_fraction:.0%}); photos need more overlap and texture")
        best_dir = work / "best"
        best_dir.mkdir()
        best.write(best_dir)

        say("[sfm] 4/4 undistorting images")
        t = time.time()
        undist = work / "undistorted"
        pycolmap.undistort_images(undist, best_dir, photos_dir, output_type="COLMAP")
        result.mkdir()
        shutil.move(str(undist / "images"), str(result / "images"))
        (result / "sparse").mkdir()
        sparse_src = undist / "sparse"
        if (sparse_src / "0").is_dir():
            sparse_src = sparse_src / "0"
        shutil.move(str(sparse_src), str(result / "sparse" / "0"))
        say(f"[sfm]     done in {time.time() - t:.1f}s")

        if out_dir.exists():
            trash = tmp / "old"
            out_dir.rename(trash)
        result.rename(out_dir)
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{photos_dir}: structure from motion failed: {one_line(exc)}") from exc
    finally:
        pycolmap.logging.minloglevel = old_level
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"[sfm] wrote {out_dir} ({registered} of {len(names)} images registered) in {time.time() - t_start:.1f}s")
    return out_dir


__all__ = ["run_sfm", "list_photos"]
