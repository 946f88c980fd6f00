"""Known poses -> sparse 3D points: SIFT matches (pycolmap) triangulated with the given cameras.

Blender-synthetic and nerfstudio captures come with poses but usually without points, and a
random initialisation cannot place what lies far away (sky, distant ground). This recovers the
sparse point cloud structure from motion would have produced, without re-estimating any pose:

1. every training view, as the loader sees it (undistorted, composited), goes to a temporary
   folder; pycolmap extracts SIFT features and matches image pairs with geometric verification;
2. verified matches are joined into tracks (connected components of (image, keypoint) nodes);
3. each track is triangulated as the point closest to all its viewing rays (midpoint method),
   then kept only if it lies in front of every camera, reprojects within `max_error_px` in every
   view and is seen under a large enough angle (`min_angle_deg`) across its rays;
4. its colour is the mean of the pixels it projects to.
"""
from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .scene import DatasetError, SceneData, Views

_PAIR_ID_BASE = 2147483647  # COLMAP: pair_id = image_id1 * base + image_id2


@dataclass
class TriangulationResult:
    points: np.ndarray  # (P, 3) float32, scene coordinates
    colors: np.ndarray  # (P, 3) uint8
    track_lengths: np.ndarray  # (P,) int32
    mean_error_px: float
    seconds: float


def pair_from_id(pair_id: int) -> tuple[int, int]:
    return pair_id // _PAIR_ID_BASE, pair_id % _PAIR_ID_BASE


def tracks_from_matches(n_keypoints: list[int], matches: list[tuple[int, int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join pairwise matches (view a, view b, (M,2) keypoint indices) into tracks.

    Returns (track id, view, keypoint) per observation, for tracks with at least two views and at
    most one keypoint per view (a track that claims two keypoints of one view is ambiguous and dropped)."""
    offsets = np.concatenate([[0], np.cumsum(n_keypoints)]).astype(np.int64)
    rows, cols = [], []
    for a, b, m in matches:
        rows.append(offsets[a] + m[:, 0])
        cols.append(offsets[b] + m[:, 1])
    total = int(offsets[-1])
    if not rows or total == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(total, total))
    _, label = connected_components(graph, directed=False)
    used = np.zeros(total, bool)
    used[r] = used[c] = True
    nodes = np.nonzero(used)[0]
    track = label[nodes]
    view = np.searchsorted(offsets, nodes, side="right") - 1
    kp = nodes - offsets[view]
    # drop tracks with two keypoints in one view, and (after that) tracks of one view
    order = np.lexsort((view, track))
    track, view, kp = track[order], view[order], kp[order]
    dup = np.zeros(len(track), bool)
    same = (track[1:] == track[:-1]) & (view[1:] == view[:-1])
    dup[1:] |= same
    dup[:-1] |= same
    bad_tracks = np.unique(track[dup])
    keep = ~np.isin(track, bad_tracks)
    track, view, kp = track[keep], view[keep], kp[keep]
    uniq, inverse, counts = np.unique(track, return_inverse=True, return_counts=True)
    keep = counts[inverse] >= 2
    _, track = np.unique(inverse[keep], return_inverse=True)
    return track.astype(np.int64), view[keep].astype(np.int64), kp[keep].astype(np.int64)


def triangulate_tracks(track: np.ndarray, xy: np.ndarray, viewmats: np.ndarray, Ks: np.ndarray,
                       view: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Midpoint triangulation of every track from its observations.

    track (O,) ids 0..T-1, xy (O,2) pixel coordinates (0 = the image's top-left corner), view (O,)
    indices into viewmats (V,4,4 world->camera, OpenCV axes) and Ks (V,3,3).
    Returns points (T,3), max reprojection error (T,), min depth (T,) and the largest angle in
    degrees between a track's rays and their mean direction x 2 (T,)."""
    T = int(track.max()) + 1 if len(track) else 0
    R, t = viewmats[view, :3, :3], viewmats[view, :3, 3]
    origin = -np.einsum("oji,oj->oi", R, t)  # camera centres
    K = Ks[view]
    cam_dir = np.stack([(xy[:, 0] - K[:, 0, 2]) / K[:, 0, 0], (xy[:, 1] - K[:, 1, 2]) / K[:, 1, 1],
                        np.ones(len(xy))], axis=1)
    d = np.einsum("oji,oj->oi", R, cam_dir)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    proj = np.eye(3)[None] - d[:, :, None] * d[:, None, :]
    A = np.zeros((T, 3, 3))
    b = np.zeros((T, 3))
    np.add.at(A, track, proj)
    np.add.at(b, track, np.einsum("oij,oj->oi", proj, origin))
    det = np.linalg.det(A)
    ok = np.abs(det) > 1e-12
    pts = np.full((T, 3), np.nan)
    pts[ok] = np.linalg.solve(A[ok], b[ok][:, :, None])[:, :, 0]
    cam = np.einsum("oij,oj->oi", R, pts[track]) + t
    z = cam[:, 2]
    u = K[:, 0, 0] * cam[:, 0] / z + K[:, 0, 2]
    v = K[:, 1, 1] * cam[:, 1] / z + K[:, 1, 2]
    err = np.hypot(u - xy[:, 0], v - xy[:, 1])
    err = np.where(np.isfinite(err), err, np.inf)
    max_err = np.zeros(T)
    np.maximum.at(max_err, track, err)
    min_depth = np.full(T, np.inf)
    np.minimum.at(min_depth, track, np.where(np.isfinite(z), z, -np.inf))
    mean_dir = np.zeros((T, 3))
    np.add.at(mean_dir, track, d)
    mean_dir /= np.maximum(np.linalg.norm(mean_dir, axis=1, keepdims=True), 1e-12)
    cos = np.clip(np.einsum("oi,oi->o", d, mean_dir[track]), -1.0, 1.0)
    spread = np.zeros(T)
    np.maximum.at(spread, track, np.degrees(np.arccos(cos)) * 2.0)
    max_err[~ok] = np.inf
    return pts, max_err, min_depth, spread


def _write_views(views: Views, folder: Path) -> list[str]:
    names = []
    for i in range(len(views)):
        img = views.load_image(i).clamp(0, 1).mul(255).round().to(dtype=torch.uint8).numpy()
        name = f"{i:05d}.png"
        Image.fromarray(img).save(folder / name)
        names.append(name)
    return names


def triangulate_scene(scene: SceneData, min_angle_deg: float = 1.0, max_error_px: float = 1.5,
                      max_num_features: int = 4096, max_images_exhaustive: int = 150,
                      seed: int = 0, log=print) -> TriangulationResult:
    """Sparse points for `scene` from its training views and their known poses (see module doc)."""
    from .sfm import _import_pycolmap

    pycolmap = _import_pycolmap()
    views = scene.train
    if len(views) < 2:
        raise DatasetError(f"{scene.source}: triangulation needs at least 2 training views, got {len(views)}")
    t0 = time.time()
    pycolmap.set_random_seed(seed)
    old_level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 2
    tmp = Path(tempfile.mkdtemp(prefix="splatlab-tri-"))
    try:
        images = tmp / "images"
        images.mkdir()
        log(f"[triangulate] writing {len(views)} training views")
        names = _write_views(views, images)
        Ks = views.cameras.Ks.double().numpy()
        viewmats = views.cameras.viewmats.double().numpy()
        database = tmp / "database.db"
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "PINHOLE"
        K0 = Ks[0]
        reader.camera_params = f"{K0[0, 0]},{K0[1, 1]},{K0[0, 2]},{K0[1, 2]}"
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.sift.max_num_features = max_num_features
        extraction.num_threads = -1
        log("[triangulate] extracting SIFT features (CPU)")
        pycolmap.extract_features(database, images, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                                  reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
        log("[triangulate] matching image pairs")
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = -1
        if len(names) <= max_images_exhaustive:
            pycolmap.match_exhaustive(database, matching_options=matching, device=pycolmap.Device.cpu)
        else:
            pycolmap.match_sequential(database, matching_options=matching, device=pycolmap.Device.cpu)
        db = pycolmap.Database.open(str(database))
        try:
            id_to_view = {img.image_id: names.index(img.name) for img in db.read_all_images()}
            keypoints = [None] * len(names)
            for image_id, v in id_to_view.items():
                keypoints[v] = np.asarray(db.read_keypoints(image_id))[:, :2].astype(np.float64)
            pair_ids, geometries = db.read_two_view_geometries()
            matches = []
            for pid, geo in zip(pair_ids, geometries):
                m = np.asarray(geo.inlier_matches)
                if len(m) == 0:
                    continue
                a, b = pair_from_id(int(pid))
                matches.append((id_to_view[a], id_to_view[b], m.astype(np.int64)))
        finally:
            db.close()
        n_kp = [0 if k is None else len(k) for k in keypoints]
        track, view, kp = tracks_from_matches(n_kp, matches)
        if len(track) == 0:
            raise DatasetError(f"{scene.source}: no feature matches between the training views")
        xy = np.stack([keypoints[v][k] for v, k in zip(view.tolist(), kp.tolist())])
        pts, err, depth, spread = triangulate_tracks(track, xy, viewmats, Ks, view)
        good = np.isfinite(pts).all(1) & (err <= max_error_px) & (depth > 0) & (spread >= min_angle_deg)
        colors = np.zeros((len(pts), 3))
        counts = np.bincount(track, minlength=len(pts)).astype(np.float64)
        for v in np.unique(view):
            sel = view == v
            img = np.asarray(Image.open(images / names[v]).convert("RGB"), dtype=np.float64)
            px = np.clip(np.floor(xy[sel]).astype(np.int64), 0, [img.shape[1] - 1, img.shape[0] - 1])
            np.add.at(colors, track[sel], img[px[:, 1], px[:, 0]])
        colors /= np.maximum(counts, 1)[:, None]
        lengths = counts.astype(np.int32)
        keep = np.nonzero(good)[0]
        mean_err = float(err[keep].mean()) if len(keep) else math.nan
        log(f"[triangulate] {len(keep)} points from {len(pts)} tracks ({len(matches)} matched pairs), "
            f"mean max-reprojection error {mean_err:.2f} px, {time.time() - t0:.0f} s")
        return TriangulationResult(points=pts[keep].astype(np.float32),
                                   colors=np.clip(np.round(colors[keep]), 0, 255).astype(np.uint8),
                                   track_lengths=lengths[keep], mean_error_px=mean_err, seconds=time.time() - t0)
    finally:
        pycolmap.logging.minloglevel = old_level
        shutil.rmtree(tmp, ignore_errors=True)


POINTS_FILE = "points3d.ply"


def write_points_ply(path: Path, points: np.ndarray, colors: np.ndarray) -> Path:
    """Write a point cloud as a binary .ply (x, y, z float32; red, green, blue uint8), atomically."""
    from plyfile import PlyData, PlyElement

    path = Path(path)
    data = np.empty(len(points), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"),
                                        ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, c in enumerate("xyz"):
        data[c] = points[:, i]
    for i, c in enumerate(("red", "green", "blue")):
        data[c] = colors[:, i]
    tmp = path.with_name(f".{path.name}.tmp")
    PlyData([PlyElement.describe(data, "vertex")]).write(str(tmp))
    tmp.replace(path)
    return path


def to_data_coordinates(scene: SceneData, points: np.ndarray) -> np.ndarray:
    """Scene-world points -> the dataset's own coordinates (undo the loader's normalisation)."""
    inv = np.linalg.inv(scene.transform.double().numpy())
    return (points.astype(np.float64) @ inv[:3, :3].T + inv[:3, 3]).astype(np.float32)


# ------------------------------------------------------------------- automatic, cached triangulation

STATUS_FILE = "triangulation.json"  # what the last automatic run found (kept even when it found nothing)


def points_cache_dir(scene_dir: Path) -> Path:
    """Where automatic triangulation writes: the scene folder itself when it is writable (the
    loaders then read `points3d.ply` on their own), else splatlab's per-scene cache folder."""
    from .scene import default_cache_dir

    scene_dir = Path(scene_dir)
    try:
        probe = scene_dir / f".probe-tri-{time.time_ns()}"
        probe.write_bytes(b"")
        probe.unlink()
        return scene_dir
    except OSError:
        return default_cache_dir(scene_dir)


def _attach_points(scene: SceneData, ply: Path) -> SceneData:
    from dataclasses import replace

    from .nerfstudio import load_ply_points

    xyz, rgb = load_ply_points(ply)
    if len(xyz) == 0:
        return scene
    T = scene.transform.double().numpy()
    pts = xyz.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    return replace(scene, points=torch.tensor(pts, dtype=torch.float32),
                   points_rgb=None if rgb is None else torch.tensor(rgb, dtype=torch.float32))


def ensure_points(scene: SceneData, log=print) -> SceneData:
    """`scene` with sparse points: unchanged when it has some; else triangulated from its training
    views once and cached (see `points_cache_dir`), the cache reused by every later run.

    A failed or empty triangulation is remembered too (`triangulation.json`), so it is not retried;
    the scene is then returned without points and training falls back to its random initialisation."""
    import json
    import os

    if scene.points is not None and len(scene.points) > 0:
        return scene
    if os.environ.get("SPLATLAB_AUTO_TRIANGULATE", "1") == "0":  # the test suite: no caches in scenes/
        return scene
    if scene.format not in ("blender", "nerfstudio") or len(scene.train) < 2:
        return scene
    root = Path(scene.source)
    root = root.parent if root.is_file() else root
    cache = points_cache_dir(root)
    ply, status = cache / POINTS_FILE, cache / STATUS_FILE
    if ply.is_file():
        if cache != root:
            log(f"[init] using the cached triangulation {ply}")
        return _attach_points(scene, ply)
    if status.is_file():
        try:
            found = json.loads(status.read_text()).get("points", 0)
        except (OSError, ValueError):
            found = None
        if found == 0:
            return scene
    try:
        import pycolmap  # noqa: F401
    except ImportError:
        log("[init] pycolmap is not installed: no triangulation, starting from the fallback initialisation")
        return scene
    log(f"[init] {root} has camera poses but no points: triangulating its training views once "
        f"(cached in {ply})")
    try:
        result = triangulate_scene(scene, log=lambda *a, **k: None)
        n, error = len(result.points), None
    except DatasetError as exc:
        n, error, result = 0, str(exc), None
    tmp = status.with_name(f".{status.name}.tmp")
    tmp.write_text(json.dumps({"points": n, "error": error}) + "\n")
    tmp.replace(status)
    if n == 0:
        log(f"[init] triangulation found no points ({error or 'no match survived'})")
        return scene
    write_points_ply(ply, to_data_coordinates(scene, result.points), result.colors)
    log(f"[init] triangulated {n} points in {result.seconds:.0f} s")
    return _attach_points(scene, ply)
