"""Splat file -> PLAS-sorted SOG v2, with a size report and an optional quality evaluation.

    report = compress("scene.ply", "scene.sog", CompressOptions(), scene_dir="scenes/robot")

Steps: read any splat file; optionally drop SH bands whose view-dependent colour is negligible
(or above `--sh-degree`); quantise once (`io.sog.quantize_sog`: 12-bit log-positions by default, SH
palette of 2^floor(log2(N/64)) entries); PLAS-sort the splats on the SOG texture grid (W x H from
`sog_texture_size`); lay the quantised values out in PLAS order and in Morton order and write the
smaller (`--plas-only` skips the Morton candidate). The quantisers do not depend on the order, so
the two candidates decode to the same splats: the choice is free in quality. It is needed because
WebP's left/top predictors favour Morton's row runs for the position bytes, the largest attribute.
On trained robot (26.7k splats) Morton won by 3.7% against default keys and 1.3% against
position-weighted keys; on a 4k-splat scene PLAS with position-only keys won by 0.6%
(see compress/README.md). The `.sog` is written atomically;
report bytes per attribute texture and the ratio against the INRIA `.ply`; with a dataset, render
the test cameras with the original and the decoded splats and compare (PSNR / SSIM).
"""
from __future__ import annotations

import math
import os
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from splatlab.gaussians import Gaussians, num_sh_bases
from splatlab.io import read_splats, sog_texture_size, write_splats
from splatlab.io._common import SceneArrays, SplatFormatError, as_arrays, atomic_write_bytes, morton_order, sigmoid
from splatlab.io.sog import layout_sog, quantize_sog, write_sog_files
from splatlab.metrics import psnr
from splatlab.metrics import ssim_metric as ssim
from splatlab.render.projection import ALPHA_MIN

from .importance import least_visible, splat_importance
from .plas import morton_grid_init, neighbour_distance, plas_sort, sort_keys

__all__ = ["CompressOptions", "compress", "compress_scene", "sh_band_energy", "choose_sh_degree", "sog_sizes",
           "evaluate_scene", "training_importance", "training_scene_of", "psnr", "ssim", "format_report",
           "ply_size"]

SH_ATTRS = {"means": ("means_l.webp", "means_u.webp"), "quats": ("quats.webp",), "scales": ("scales.webp",),
            "sh0+opacity": ("sh0.webp",), "shN": ("shN_centroids.webp", "shN_labels.webp"), "meta": ("meta.json",)}


@dataclass
class CompressOptions:
    order: str = "plas"  # "plas" | "morton" | "keep" (the file's row order, e.g. a `--method sog` grid)
    sh_degree: int | None = None  # cap on the SH degree kept
    auto_sh: bool = True  # drop top SH bands whose colour contribution is negligible
    sh_threshold: float = 1.0 / 255.0  # opacity-weighted mean RMS colour change per band
    sort_keys: tuple[str, ...] = ("means", "sh0", "scales", "opacities", "quats")
    sort_key_weights: dict[str, float] = field(default_factory=dict)
    plas_threshold: float = 1e-4
    plas_time_budget: float | None = None  # seconds
    plas_init: str = "morton2d"  # "morton2d" | "random"
    morton_fallback: bool = True  # order "plas": also lay out in Morton order, keep the smaller file
    sh_iterations: int = 10
    sh_palette: int | None = None  # SH palette entries (None: compress_sh_palette_size(N))
    means_bits: int | None = None  # significant bits of the 16-bit log-positions (None: auto_means_bits)
    drop_invisible: bool = True  # drop splats with opacity < 1/255 (never drawn; see invisible_mask)
    # with training views (`importance`): drop the least-seen splats carrying this share of the
    # total blending weight, and weight the codebooks and SH palette by what each splat shows
    prune_fraction: float = 1e-3
    weighted_codebooks: bool = True
    webp_effort: int = 4
    seed: int = 0
    verbose: bool = False


# ---------------------------------------------------------------------------------------------
# invisible splats


def invisible_mask(scene: SceneArrays) -> np.ndarray:
    """Splats whose opacity is below 1/255. A 3DGS rasterizer drops every pixel whose alpha
    (opacity x kernel <= opacity) is below 1/255 (ours: `render.projection.kernel_extent` gives them
    radius 0; gsplat and the PlayCanvas shader skip them the same way), so they are never drawn.
    Training leaves many of them (pruning stops at refine_stop, opacity resets push them down):
    garden 3,828 of 39,873, stilllife 2,886 of 37,721."""
    return sigmoid(scene.opacities.astype(np.float64)) < ALPHA_MIN


# ---------------------------------------------------------------------------------------------
# position precision

MEANS_STEP = 2.0 ** -10  # target step of the log-positions t = sign(v) ln(1 + |v|)


def auto_means_bits(means: np.ndarray, lo: int = 12, hi: int = 16) -> int:
    """Significant bits of SOG's 16-bit log-positions so that the per-axis step in t stays below
    MEANS_STEP: about 0.1% of a position's distance from the origin outside the unit sphere, 0.001
    units inside it. The texture spans each axis' full t range, so a scene with far background
    splats needs more bits for the same step: garden (t range 12.8) gets 14, robot (1.6) and
    stilllife (2.8) the floor of 12 (on robot 12 instead of 14 bits cost 0.008 dB)."""
    m = np.asarray(means, dtype=np.float64)
    if m.shape[0] == 0:
        return lo
    t = np.sign(m) * np.log1p(np.abs(m))
    span = float((t.max(0) - t.min(0)).max())
    if span <= 0:
        return lo
    return int(np.clip(math.ceil(math.log2(span / MEANS_STEP)), lo, hi))


# ---------------------------------------------------------------------------------------------
# SH pruning


def compress_sh_palette_size(n: int) -> int:
    """SH palette entries for n splats: 2^floor(log2(n / 64)), clamped to 256..65536.

    PlayCanvas's rule (io.sog.sh_palette_size, ~n/1.6 at 26k splats) spends half of a 26.7k-splat
    robot .sog on the palette (16384 entries: 339 KB of 676 KB). Measured there (25 test views):
    16384 entries 9.8x / -0.02 dB, 1024 18.4x / -0.14 dB, 256 19.6x / -0.21 dB test PSNR (with
    14-bit means); the centroids texture costs 3 * coefficients bytes per entry, so a palette much
    larger than n/64 buys little colour for its bytes."""
    if n <= 0:
        return 0
    return int(min(65536, max(256, 2 ** math.floor(math.log2(max(n, 1) / 64.0)))))


def sh_band_energy(scene: SceneArrays) -> list[float]:
    """Per SH band l = 1..deg: the opacity-weighted mean over splats of the RMS (over view
    directions, averaged over RGB) colour change the band adds: sqrt(sum_k c_k^2 / (4 pi) / 3)."""
    deg = scene.sh_degree
    if deg == 0:
        return []
    w = sigmoid(scene.opacities).astype(np.float64)
    w = w / max(w.sum(), 1e-12)
    out = []
    for l in range(1, deg + 1):
        lo, hi = num_sh_bases(l - 1) - 1, num_sh_bases(l) - 1
        c = scene.shN[:, lo:hi, :].astype(np.float64)
        rms = np.sqrt((c ** 2).sum(axis=(1, 2)) / (4.0 * math.pi) / 3.0)
        out.append(float((w * rms).sum()))
    return out


def choose_sh_degree(scene: SceneArrays, opts: CompressOptions) -> tuple[int, list[str]]:
    deg = scene.sh_degree
    notes = []
    if deg > 3:
        notes.append(f"SOG holds SH degree <= 3; dropped degree {deg} bands")
        deg = 3
    if opts.sh_degree is not None and opts.sh_degree < deg:
        notes.append(f"--sh-degree {opts.sh_degree}: dropped bands {opts.sh_degree + 1}..{deg}")
        deg = opts.sh_degree
    if opts.auto_sh and deg > 0:
        energy = sh_band_energy(scene.truncate_sh(deg))
        keep = deg
        while keep > 0 and energy[keep - 1] < opts.sh_threshold:
            keep -= 1
        if keep < deg:
            notes.append(f"SH bands {keep + 1}..{deg} add < {opts.sh_threshold:.4f} RMS colour "
                         f"({', '.join(f'{e:.5f}' for e in energy[keep:deg])}); dropped")
            deg = keep
    return deg, notes


# ---------------------------------------------------------------------------------------------
# sizes


def sog_sizes(path) -> dict[str, int]:
    """Bytes per attribute of a .sog bundle (or SOG folder) plus 'container' overhead and 'total'."""
    path = os.fspath(path)
    members: dict[str, int] = {}
    if os.path.isdir(path) or path.lower().endswith(".json"):
        d = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        for name in os.listdir(d):
            if name.endswith((".webp", ".json")):
                members[name] = os.path.getsize(os.path.join(d, name))
        total = sum(members.values())
    else:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                members[info.filename] = info.compress_size
        total = os.path.getsize(path)
    out = {}
    for attr, names in SH_ATTRS.items():
        b = sum(members.get(n, 0) for n in names)
        if b or attr != "shN":
            out[attr] = b
    out["container"] = total - sum(members.values())
    out["total"] = total
    return out


def ply_size(scene: SceneArrays) -> int:
    """Bytes of the INRIA .ply holding this scene."""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "s.ply")
        write_splats(p, scene.to_gaussians(), format="ply")
        return os.path.getsize(p)


# ---------------------------------------------------------------------------------------------
# metrics and evaluation


@torch.no_grad()
def render_views(g: Gaussians, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
                 background: torch.Tensor) -> list[torch.Tensor]:
    """One evaluation render per camera through the one render path (the scene's own method)."""
    from splatlab.cameras import Cameras
    from splatlab.render import render

    out = []
    for i in range(viewmats.shape[0]):
        res = render(g, Cameras(viewmats[i:i + 1], Ks[i:i + 1], width, height), background=background.reshape(3))
        out.append(res.images[0].clamp(0, 1))
    return out


def compare_renders(ref: list, test: list) -> tuple[float, float]:
    return (float(np.mean([psnr(a, b) for a, b in zip(test, ref)])),
            float(np.mean([ssim(a, b) for a, b in zip(test, ref)])))


def load_dataset(scene_dir, downscale: int = 1):
    from splatlab.data import load_scene

    return load_scene(scene_dir, downscale=downscale)


def evaluate_scene(original: Gaussians, decoded: Gaussians, scene_dir, downscale: int = 1,
                   max_views: int | None = None, dataset=None) -> dict:
    """PSNR/SSIM on the dataset's held-out views: decoded vs original renders, and each vs the
    ground-truth images. `dataset`: an already loaded `scene_dir`."""
    scene = dataset if dataset is not None else load_dataset(scene_dir, downscale)
    views = scene.test if len(scene.test) else scene.train
    split = "test" if len(scene.test) else "train"
    n = len(views) if max_views is None else min(len(views), max_views)
    if n == 0:
        raise ValueError(f"{scene_dir}: dataset has no views to evaluate on")
    idx = np.linspace(0, len(views) - 1, n).round().astype(int).tolist()
    cams = views.cameras
    vm, K = cams.viewmats[idx].float(), cams.Ks[idx].float()
    bg = scene.background.float()
    ref = render_views(original, vm, K, cams.width, cams.height, bg)
    dec = render_views(decoded, vm, K, cams.width, cams.height, bg)
    gt = [views.load_image(i)[..., :3].float() for i in idx]
    p_cr, s_cr = compare_renders(ref, dec)
    p_og, s_og = compare_renders(gt, ref)
    p_cg, s_cg = compare_renders(gt, dec)
    return {"split": split, "views": n, "width": cams.width, "height": cams.height,
            "psnr_compressed_vs_original": p_cr, "ssim_compressed_vs_original": s_cr,
            "psnr_original_vs_gt": p_og, "ssim_original_vs_gt": s_og,
            "psnr_compressed_vs_gt": p_cg, "ssim_compressed_vs_gt": s_cg}


def training_importance(gaussians: Gaussians, dataset, progress: bool = False) -> np.ndarray:
    """`splat_importance` over the dataset's training views (never its test views)."""
    cams = dataset.train.cameras
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(dataset.train), unit="view", desc="importance", dynamic_ncols=True, leave=False)

    def step(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        return splat_importance(gaussians, cams.viewmats, cams.Ks, cams.width, cams.height,
                                progress=step if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()


def training_scene_of(input_path) -> tuple[str, int] | None:
    """(scene folder, downscale) recorded in the `metrics.json` that `splatlab train` writes next to
    its point_cloud.ply, when that folder still exists."""
    import json

    meta = os.path.join(os.path.dirname(os.path.abspath(os.fspath(input_path))), "metrics.json")
    try:
        with open(meta) as fh:
            cfg = json.load(fh).get("config", {})
        scene, downscale = cfg.get("scene"), int(cfg.get("downscale", 1) or 1)
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    if isinstance(scene, str) and os.path.isdir(scene):
        return scene, max(1, downscale)
    return None


# ---------------------------------------------------------------------------------------------
# the pipeline


def sort_order(scene: SceneArrays, opts: CompressOptions) -> tuple[np.ndarray, dict]:
    """The texel order for the SOG and sort statistics (neighbour distance vs the Morton layout)."""
    n = len(scene)
    w, h = sog_texture_size(n)
    feats = sort_keys(scene, opts.sort_keys, opts.sort_key_weights)
    morton = morton_order(scene.means)
    info = {"grid": [w, h], "sort_dims": int(feats.shape[1]),
            "neighbour_distance_morton": neighbour_distance(feats, morton, w, h)}
    t0 = time.perf_counter()
    if opts.order == "morton":
        order = morton
    elif opts.order == "keep":
        order = np.arange(n)
        k = math.isqrt(n)
        if k * k == n and w != k:
            info["keep_note"] = (f"{n} = {k}x{k} splats but SOG textures are {w} texels wide (a multiple of 4): "
                                 f"the rows keep their order but not their 2-D neighbours of a {k}x{k} grid")
    elif opts.order == "plas":
        init = morton_grid_init(scene.means, w, h) if opts.plas_init == "morton2d" else None
        res = plas_sort(feats, w, h, standardized=True, init_order=init, improvement_threshold=opts.plas_threshold,
                        time_budget=opts.plas_time_budget, seed=opts.seed, verbose=opts.verbose)
        order = res.order
        info.update(plas_radii=res.radii, plas_passes=res.passes)
    else:
        raise ValueError(f"unknown order {opts.order!r} (plas, morton or keep)")
    info["sort_seconds"] = time.perf_counter() - t0
    info["neighbour_distance"] = neighbour_distance(feats, order, w, h)
    return order, info


_WEIGHT_FLOOR = 0.01  # codebook weight of a splat the training views never show, in mean weights


def compress_scene(scene: SceneArrays, out, opts: CompressOptions | None = None,
                   importance: np.ndarray | None = None) -> dict:
    """Sort and write `scene` as SOG v2 at `out`; returns the report (without evaluation).
    `importance` (per splat, from `splat_importance` on the training views) enables pruning of the
    least-seen splats and importance-weighted codebooks (see CompressOptions)."""
    opts = opts or CompressOptions()
    if len(scene) == 0:
        raise SplatFormatError(out, "cannot compress an empty scene (0 splats)")
    if importance is not None:
        importance = np.asarray(importance, dtype=np.float64)
        if importance.shape != (len(scene),):
            raise ValueError(f"importance has {importance.shape[0]} values for {len(scene)} splats")
    report: dict = {"count": len(scene), "count_in": len(scene), "sh_degree_in": scene.sh_degree,
                    "dropped_invisible": 0, "dropped_unseen": 0}
    notes = []
    if opts.order != "keep":  # "keep": removing rows would shift a trained grid
        inv = invisible_mask(scene) if opts.drop_invisible else np.zeros(len(scene), dtype=bool)
        unseen = np.zeros(len(scene), dtype=bool)
        if importance is not None and opts.prune_fraction > 0:
            unseen = least_visible(importance, opts.prune_fraction) & ~inv
        drop = inv | unseen
        if drop.any() and not drop.all():
            keep = np.flatnonzero(~drop)
            scene = scene.take(keep)
            importance = None if importance is None else importance[keep]
            report.update(count=len(scene), dropped_invisible=int(inv.sum()), dropped_unseen=int(unseen.sum()))
            if inv.any():
                notes.append(f"dropped {int(inv.sum()):,} splats with opacity < 1/255 (never drawn)")
            if unseen.any():
                notes.append(f"dropped {int(unseen.sum()):,} least-seen splats carrying < {opts.prune_fraction:g} "
                             f"of the training views' blending weight")
    deg, sh_notes = choose_sh_degree(scene, opts)
    notes += sh_notes
    if deg < scene.sh_degree:
        scene = scene.truncate_sh(deg)
    if scene.extras:
        notes.append(f"SOG has no room for extra fields {', '.join(scene.extras)}; dropped")
        scene = SceneArrays(scene.means, scene.quats, scene.scales, scene.opacities, scene.sh0, scene.shN)
    report["sh_degree_out"] = deg
    report["sh_band_energy"] = sh_band_energy(scene) if deg else []
    order, info = sort_order(scene, opts)
    if "keep_note" in info:
        notes.append(info.pop("keep_note"))
    report.update(info)
    t0 = time.perf_counter()
    pal = opts.sh_palette or compress_sh_palette_size(len(scene))
    weights = None
    if importance is not None and opts.weighted_codebooks and importance.sum() > 0:
        weights = importance + _WEIGHT_FLOOR * importance.mean()  # unseen splats still count a little
    bits = opts.means_bits if opts.means_bits is not None else auto_means_bits(scene.means)
    report["means_bits"] = bits
    report["sh_palette"] = pal
    qz = quantize_sog(scene, sh_iterations=opts.sh_iterations, sh_palette=pal, means_bits=bits,
                      weights=weights, path=out)
    cache: dict = {}
    files = layout_sog(qz, order, webp_effort=opts.webp_effort, path=out, fixed_cache=cache)
    report["order_used"] = opts.order
    if opts.order == "plas" and opts.morton_fallback:
        # the PLAS layout is a proxy for compressibility; the bytes are what counts. Every quantiser
        # is order-independent, so both candidates decode to the same values (equal quality).
        alt = layout_sog(qz, morton_order(scene.means), webp_effort=opts.webp_effort, path=out, fixed_cache=cache)
        sizes = {"plas": sum(map(len, files.values())), "morton": sum(map(len, alt.values()))}
        report["candidate_bytes"] = sizes
        if sizes["morton"] < sizes["plas"]:
            files = alt
            report["order_used"] = "morton"
            notes.append(f"Morton layout is {sizes['plas'] - sizes['morton']:,} B smaller than the PLAS layout; "
                         f"wrote Morton order")
    write_sog_files(out, files)
    report["write_seconds"] = time.perf_counter() - t0
    report["sizes"] = sog_sizes(out)
    report["notes"] = notes
    return report


def compress(input_path, out, opts: CompressOptions | None = None, scene_dir=None, *, downscale: int = 1,
             max_views: int | None = None, report_path=None, auto_scene: bool = True,
             progress: bool = False) -> dict:
    """Read a splat file, write a PLAS-sorted .sog, and report sizes (and quality with `scene_dir`).

    The training views of `scene_dir` (or, with `auto_scene`, of the scene named in a `metrics.json`
    beside the input, as `splatlab train` writes it) give each splat's importance, which prunes the
    least-seen splats and weights the codebooks (see CompressOptions)."""
    opts = opts or CompressOptions()
    t0 = time.perf_counter()
    out = os.fspath(out)
    parent = os.path.dirname(os.path.abspath(out.rstrip("/"))) or "."
    if not os.path.isdir(parent):
        raise SplatFormatError(out, f"output folder {parent} does not exist")
    low = out.lower().rstrip("/")
    if not (low.endswith(".sog") or low.endswith(".json") or os.path.isdir(out) or out.endswith("/")):
        raise SplatFormatError(out, "output must be a .sog file, a meta.json path or a folder")
    original = read_splats(input_path)
    from splatlab.render import method_of
    scene = as_arrays(method_of(original).plain_gaussians(original))  # SOG draws Gaussian kernels only
    in_path = os.fspath(input_path)
    in_is_ply = os.path.isfile(in_path) and in_path.lower().endswith(".ply") and not in_path.lower().endswith(
        ".compressed.ply") and _is_plain_ply(in_path)
    report = {"input": in_path, "output": out,
              "input_bytes": os.path.getsize(in_path) if os.path.isfile(in_path) else None}
    report["ply_bytes"] = report["input_bytes"] if in_is_ply else ply_size(scene)
    dataset, importance, info, notes = _training_views_importance(original, in_path, scene_dir, downscale, opts,
                                                                  auto_scene, progress)
    if info:
        report["importance"] = info
    report.update(compress_scene(scene, out, opts, importance=importance))
    report["notes"][:0] = notes
    total = report["sizes"]["total"]
    report["ratio_vs_ply"] = report["ply_bytes"] / total if total else None
    report["bytes_per_splat"] = total / report["count"]
    report["seconds"] = time.perf_counter() - t0
    if scene_dir is not None:
        from splatlab.io.sog import read_sog
        decoded = read_sog(out)
        report["eval"] = evaluate_scene(original, decoded, scene_dir, downscale=downscale, max_views=max_views,
                                        dataset=dataset)
    if report_path is not None:
        import json
        atomic_write_bytes(report_path, json.dumps(_jsonable(report), indent=2).encode())
    return report


def _training_views_importance(original: Gaussians, in_path: str, scene_dir, downscale: int, opts: CompressOptions,
                               auto_scene: bool, progress: bool):
    """(dataset of `scene_dir` or None, importance or None, {scene, views, seconds} or None, notes). Without `scene_dir` the scene
    named in the input's metrics.json is used for importance only; if it cannot be loaded, the
    file is compressed without importance (a note says why) rather than failing."""
    wants = opts.order != "keep" and (opts.prune_fraction > 0 or opts.weighted_codebooks)
    notes: list[str] = []
    dataset = load_dataset(scene_dir, downscale) if scene_dir is not None else None
    views, source = dataset, scene_dir
    if views is None and wants and auto_scene:
        found = training_scene_of(in_path)
        if found is not None:
            from splatlab.data import DatasetError
            try:
                views, source = load_dataset(*found), found[0]
                notes.append(f"importance from the training views of {found[0]} (named in the input's "
                             f"metrics.json; --no-importance to skip)")
            except (DatasetError, OSError, ValueError) as e:
                notes.append(f"could not load {found[0]} (named in the input's metrics.json) for importance: "
                             f"{' '.join(str(e).split())}; compressed without it")
    if views is None or not wants or not len(views.train):
        return dataset, None, None, notes
    t0 = time.perf_counter()
    importance = training_importance(original, views, progress=progress)
    info = {"scene": os.fspath(source), "views": len(views.train), "seconds": time.perf_counter() - t0}
    return dataset, importance, info, notes


def _is_plain_ply(path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return head.startswith(b"ply") and b"element chunk" not in head.split(b"end_header", 1)[0]


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def format_report(r: dict) -> str:
    lines = [f"{r['input']} -> {r['output']}: {r['count']} splats, SH degree {r['sh_degree_in']} -> "
             f"{r['sh_degree_out']}, grid {r['grid'][0]}x{r['grid'][1]}"]
    for note in r.get("notes", []):
        lines.append(f"  note: {note}")
    imp = r.get("importance")
    if imp:
        lines.append(f"  importance: {imp['views']} training views of {imp['scene']}, {imp['seconds']:.1f} s")
    lines.append(f"  sort: neighbour distance {r['neighbour_distance']:.4f} "
                 f"(Morton layout {r['neighbour_distance_morton']:.4f}), {r['sort_seconds']:.1f} s")
    if "candidate_bytes" in r:
        c = r["candidate_bytes"]
        lines.append(f"  layout: PLAS {c['plas']:,} B vs Morton {c['morton']:,} B -> wrote {r['order_used']}")
    sizes = r["sizes"]
    total = sizes["total"]
    lines.append(f"  {'attribute':<14}{'bytes':>12}{'share':>8}")
    for k, v in sizes.items():
        if k == "total":
            continue
        lines.append(f"  {k:<14}{v:>12,}{100.0 * v / total:>7.1f}%")
    lines.append(f"  {'total':<14}{total:>12,}   {r['bytes_per_splat']:.2f} B/splat, "
                 f"{r['ratio_vs_ply']:.1f}x smaller than the .ply ({r['ply_bytes']:,} B)")
    ev = r.get("eval")
    if ev:
        lines.append(f"  eval on {ev['views']} {ev['split']} views ({ev['width']}x{ev['height']}):")
        lines.append(f"    compressed vs original render: PSNR {ev['psnr_compressed_vs_original']:.2f} dB, "
                     f"SSIM {ev['ssim_compressed_vs_original']:.4f}")
        lines.append(f"    original   vs ground truth:    PSNR {ev['psnr_original_vs_gt']:.2f} dB, "
                     f"SSIM {ev['ssim_original_vs_gt']:.4f}")
        lines.append(f"    compressed vs ground truth:    PSNR {ev['psnr_compressed_vs_gt']:.2f} dB, "
                     f"SSIM {ev['ssim_compressed_vs_gt']:.4f}")
    return "\n".join(lines)


def options_dict(opts: CompressOptions) -> dict:
    return asdict(opts)
