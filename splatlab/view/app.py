"""The viser server app: one scene of Gaussians, two ways to draw it, and the GUI around them.

Talks only to `Gaussians` and `rasterize` (through `splatlab.view.render`). Display modes:
  * "browser": viser's WebGL Gaussian-splat node (DC colour only; the browser sorts and draws);
  * "server":  splatlab's rasterizer renders each client's camera (RGB / depth / alpha / Gaussian
    count) and sends it as the client's background image; low resolution while the camera moves,
    full resolution once it has rested for `rest_delay` seconds (progressive refinement).
One worker thread does all rendering and splat uploads, so GUI callbacks stay instant.

Several sources (runs / files) can be opened at once: a dropdown picks the one shown, and "side by
side" (server renders) draws two or all of them from the same camera, left to right, in one image.
A run folder's dataset cameras are frustums with a thumbnail of their image; clicking one moves the
clicking client's camera to that view.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..gaussians import Gaussians
from ..framing import fit_camera
from .render import (RENDER_MODES, Detail, RenderSet, ViewCamera, ViewFilter, camera_from_viser, clip_duration,
                     render_image, save_png_atomic, scene_kind, splat_arrays, to_uint8)
from .source import ViewSource

DISPLAY_BROWSER = "Splats in browser (WebGL)"
DISPLAY_SERVER = "splatlab render (server)"
DISPLAYS = (DISPLAY_BROWSER, DISPLAY_SERVER)
ALL_SOURCES = "All (left to right)"
THUMBNAIL_SIZE = 64  # long side of frustum thumbnails, pixels
MAX_CAMERAS = 200  # frustums per run folder (evenly spaced subset of larger datasets)
SHOW_CAMERAS_UP_TO = 20  # more frustums than this start hidden (they would cover the scene); a checkbox shows them
CUT_LOD = "LOD threshold (per view)"
CUT_FINEST = "Finest level"
DEFAULT_FRAMES = 100  # time-slider steps of a clip whose frame rate is unknown (no dataset cameras)


def frame_step(sources: list[ViewSource]) -> float:
    """Seconds between frames of the temporal sources: from their dataset cameras' times when
    known, else the longest clip / DEFAULT_FRAMES."""
    steps = []
    for src in sources:
        times = getattr(src.cameras, "times", None) if src.cameras is not None else None
        if times is not None and len(times) > 1:
            t = torch.unique(times)
            if len(t) > 1:
                steps.append(float((t[1:] - t[:-1]).min()))
    if steps:
        return min(steps)
    duration = max((clip_duration(s.gaussians) for s in sources), default=0.0)
    return duration / DEFAULT_FRAMES if duration > 0 else 1.0


def unique_labels(labels: list[str]) -> list[str]:
    """Labels made distinct (GUI dropdown options must be): repeats get " (2)", " (3)", ..."""
    out: list[str] = []
    for label in labels:
        name, k = label, 2
        while name in out or name == ALL_SOURCES:
            name, k = f"{label} ({k})", k + 1
        out.append(name)
    return out


def camera_subset(n: int, cap: int) -> list[int]:
    """At most `cap` indices of range(n), evenly spaced, first and last included."""
    if cap <= 0:
        return []
    if n <= cap:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, cap).round().astype(int).tolist()))


def thumbnail(img, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """(h, w, 3) uint8 copy of a float [0, 1] (or uint8) image with long side `size` (never upscaled)."""
    from PIL import Image

    arr = np.asarray(img.numpy() if hasattr(img, "numpy") else img)
    if arr.dtype != np.uint8:
        arr = to_uint8(arr)
    arr = np.ascontiguousarray(arr[..., :3])
    h, w = arr.shape[:2]
    f = min(1.0, size / max(h, w))
    tw, th = max(1, round(w * f)), max(1, round(h * f))
    if (tw, th) == (w, h):
        return arr
    return np.asarray(Image.fromarray(arr).resize((tw, th), Image.BOX))


def compose_side_by_side(sets: list[RenderSet], camera: ViewCamera, width: int, height: int, mode: str = "RGB",
                         background=(0.0, 0.0, 0.0), divider: bool = True) -> np.ndarray:
    """Render each set from the same camera pose and fov into its own vertical strip, left to right.

    Strip k is `width / len(sets)` wide with the camera's vertical fov (a narrower horizontal view of
    the same centre), so the strips together fill a `width` x `height` canvas."""
    if len(sets) == 1:
        return render_image(sets[0], camera, width, height, mode, background)
    edges = np.linspace(0, width, len(sets) + 1).round().astype(int)
    parts = []
    for rs, a, b in zip(sets, edges[:-1], edges[1:]):
        w = max(1, int(b - a))
        cam = ViewCamera(camera.wxyz, camera.position, camera.fov_y, w / height)
        parts.append(render_image(rs, cam, w, height, mode, background))
    img = np.concatenate(parts, axis=1)
    if divider:
        for a in edges[1:-1]:
            img[:, a - 1: a + 1] = 0.5
    return img


@dataclass
class _Client:
    handle: object  # viser.ClientHandle
    camera_version: int = 0
    last_move: float = 0.0
    low_key: tuple | None = None  # state rendered at low resolution
    full_key: tuple | None = None  # state rendered at full resolution
    frames: int = 0  # server renders sent
    last_frame_shape: tuple = ()
    solid_key: tuple | None = None  # background colour sent in browser mode
    camera_ready: bool = False
    times: list = field(default_factory=list)


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class ViewerApp:
    """Attach to a `viser.ViserServer`; `set_gaussians()` swaps the scene (used by the live viewer)."""

    def __init__(self, server, source: ViewSource | list[ViewSource] | None = None, *,
                 gaussians: Gaussians | None = None, out_dir: str = "splatlab_view", display: str = DISPLAY_BROWSER,
                 max_resolution: int = 640, rest_delay: float = 0.3, low_res_factor: float = 0.35,
                 splat_upload_interval: float = 0.0, background=(0.0, 0.0, 0.0), title: str | None = None,
                 max_cameras: int = MAX_CAMERAS, thumbnail_size: int = THUMBNAIL_SIZE) -> None:
        import viser  # noqa: F401  (fail early with the real import error)

        if source is None:
            if gaussians is None:
                raise ValueError("ViewerApp needs a ViewSource or Gaussians")
            source = ViewSource(gaussians, title or "live", "", 0, "memory")
        sources = list(source) if isinstance(source, (list, tuple)) else [source]
        if not sources:
            raise ValueError("ViewerApp needs at least one source")
        self.server = server
        self.sources = sources
        self.labels = unique_labels([s.label for s in sources])
        self._index = 0  # the source shown (browser splats, stats, frustums, left strip)
        self.source = sources[0]
        self.side_by_side = False
        self._compare: int | None = 1 if len(sources) > 1 else None  # right strip; None = all sources
        self.max_cameras = int(max_cameras)
        self.thumbnail_size = int(thumbnail_size)
        self.thumbnails_ready = threading.Event()
        self.out_dir = out_dir
        self.rest_delay = rest_delay
        self.low_res_factor = low_res_factor
        self.splat_upload_interval = splat_upload_interval
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._clients: dict[int, _Client] = {}
        self._all_gaussians = [s.gaussians for s in sources]
        self._gaussians = self._all_gaussians[0]
        self._filter = ViewFilter(sh_degree_cap=max(g.sh_degree for g in self._all_gaussians))
        self.duration = max(clip_duration(g) for g in self._all_gaussians)
        self.frame_step = frame_step(sources)
        hier_opts = next((dict(x.method.options) for x in self._all_gaussians if scene_kind(x) == "hierarchical"), {})
        # a scene saved with a cut (its method options) opens at that cut
        self.detail = Detail(time=0.0 if self.duration > 0 else None, lod=float(hier_opts.get("lod", 0.0) or 0.0),
                             level=int(hier_opts.get("level", -1)))
        self.playing = False
        self._play_thread: threading.Thread | None = None
        self.last_drawn: int | None = None  # Gaussians drawn in the latest frame (server) / upload (browser)
        self.last_frame_ms: float | None = None
        self._sets = [RenderSet.build(g, self._filter, self.detail) for g in self._all_gaussians]
        self._rs = self._sets[0]
        self._scene_version = 1
        self._settings_version = 1
        self._uploaded_version = 0
        self._last_upload = 0.0
        self.display = display
        self.mode = "RGB"
        self.max_resolution = int(max_resolution)
        self.progressive = True
        self.background = tuple(float(c) for c in background)
        self.keyframes: list[ViewCamera] = []
        self._path_thread: threading.Thread | None = None
        self.last_screenshot: str | None = None
        self.render_error: str | None = None
        self.extra_stats: str = ""

        server.scene.set_up_direction("+z")
        self._init_camera()
        self._build_gui()
        self._add_dataset_cameras()
        server.on_client_connect(self._on_connect)
        server.on_client_disconnect(self._on_disconnect)
        self._worker = threading.Thread(target=self._run, name="splatlab-view-render", daemon=True)
        self._worker.start()
        self._thumb_thread = threading.Thread(target=self._load_thumbnails, name="splatlab-view-thumbs", daemon=True)
        self._thumb_thread.start()

    # ------------------------------------------------------------------ scene
    def _init_camera(self) -> None:
        """Open on the scene framed whole (`splatlab.framing.fit_camera`, as `render` and `view --static`)."""
        fit = fit_camera(self._rs.gaussians)
        ic = self.server.initial_camera
        ic.fov = fit.fov_y
        ic.position = tuple(float(v) for v in fit.eye)
        ic.look_at = tuple(float(v) for v in fit.target)
        # clip planes that suit the scene's scale (viser's 0.01 .. 1000 clips tiny or huge scenes)
        ic.near = min(0.01, fit.distance / 100)
        ic.far = max(1000.0, fit.distance * 100)
        self.home_camera = fit
        self._home = (fit.eye, fit.target)

    def set_gaussians(self, gaussians: Gaussians, stats: str = "") -> None:
        """Show new Gaussians (filters kept). Rebuilding the render set is O(N) and done here."""
        rs = RenderSet.build(gaussians, self._filter, self.detail)
        with self._lock:
            self._gaussians = gaussians
            self._all_gaussians[self._index] = gaussians
            self._sets[self._index] = rs
            self._rs = rs
            self._scene_version += 1
            self.extra_stats = stats
        self._update_stats()
        self._wake.set()

    @property
    def render_set(self) -> RenderSet:
        return self._rs

    @property
    def render_sets(self) -> list[RenderSet]:
        """One filtered render set per source, in the order the sources were given."""
        return list(self._sets)

    def _refilter(self) -> None:
        sets = [RenderSet.build(g, self._filter, self.detail) for g in self._all_gaussians]
        with self._lock:
            self._sets = sets
            self._rs = sets[self._index]
            self._scene_version += 1
        self._update_stats()
        self._wake.set()

    def _settings_changed(self) -> None:
        with self._lock:
            self._settings_version += 1
        self._wake.set()

    # ------------------------------------------------------------------ GUI
    def _build_gui(self) -> None:
        gui = self.server.gui
        g = self._gaussians
        everything = self._all_gaussians
        with gui.add_folder("Scene"):
            self._stats_md = gui.add_markdown("")
        if len(self.sources) > 1:
            with gui.add_folder("Compare runs"):
                self.gui_scene = gui.add_dropdown("Shown", self.labels, initial_value=self.labels[0],
                                                  hint="Which run / file is drawn (left strip when side by side)")
                self.gui_side = gui.add_checkbox("Side by side", False,
                                                 hint="splatlab renders (server) of several runs from the same "
                                                      "camera, left to right")
                self.gui_side_with = gui.add_dropdown("Next to it", self.labels + [ALL_SOURCES],
                                                      initial_value=self.labels[1])
                self._side_md = gui.add_markdown("")
        with gui.add_folder("Display"):
            self.gui_display = gui.add_dropdown("Renderer", DISPLAYS, initial_value=self.display)
            self.gui_mode = gui.add_dropdown("Server mode", RENDER_MODES, initial_value=self.mode,
                                             hint="What the server-side render shows")
            self.gui_res = gui.add_slider("Max resolution", 64, max(2048, self.max_resolution), 32, self.max_resolution,
                                          hint="Long side of server renders, in pixels")
            self.gui_progressive = gui.add_checkbox("Low-res while moving", self.progressive)
            self.gui_bg = gui.add_rgb("Background", tuple(int(round(c * 255)) for c in self.background))
            sh_max = max(x.sh_degree for x in everything)
            self.gui_sh = gui.add_slider("SH degree cap", 0, max(sh_max, 1), 1, sh_max, disabled=sh_max == 0,
                                         hint="Server renders only; browser splats use the DC colour")
        with gui.add_folder("Filters"):
            max_scale = max((float(x.scales.detach().max()) for x in everything if len(x)), default=1.0)
            self._max_scale_all = max_scale
            self.gui_opacity = gui.add_slider("Min opacity", 0.0, 1.0, 0.01, 0.0)
            self.gui_scale = gui.add_slider("Max scale", 0.0, round(max_scale * 1.01 + 1e-6, 6),
                                            max(max_scale / 200, 1e-6), round(max_scale * 1.01 + 1e-6, 6))
            bounds = [[b.numpy().astype(float) for b in x.bounds()] for x in everything if len(x)] or \
                [[b.numpy().astype(float) for b in g.bounds()]]
            lo, hi = np.min([b[0] for b in bounds], axis=0), np.max([b[1] for b in bounds], axis=0)
            pad = 0.01 * float(np.max(hi - lo)) + 1e-6
            self.gui_crop = gui.add_checkbox("Crop box", False)
            self.gui_crop_min = gui.add_vector3("Crop min", tuple(np.round(lo - pad, 4)), step=0.01)
            self.gui_crop_max = gui.add_vector3("Crop max", tuple(np.round(hi + pad, 4)), step=0.01)
            if g.extra_names():
                gui.add_markdown(f"_Extra fields: {', '.join(g.extra_names())}_")
        self._build_detail_gui()
        with gui.add_folder("Capture"):
            self.gui_shot_dir = gui.add_text("Output folder", self.out_dir)
            self.gui_shot = gui.add_button("Screenshot (PNG)")
            self._shot_md = gui.add_markdown("")
        with gui.add_folder("Camera path", expand_by_default=False):
            self.gui_key_add = gui.add_button("Add keyframe (current view)")
            self.gui_key_clear = gui.add_button("Clear keyframes")
            self._keys_md = gui.add_markdown("0 keyframes")
            self.gui_frames = gui.add_number("Frames", 60, min=2, max=10000, step=1)
            self.gui_fps = gui.add_number("FPS", 30, min=1, max=120, step=1)
            self.gui_path_w = gui.add_number("Width", 640, min=16, max=4096, step=16)
            self.gui_path_h = gui.add_number("Height", 480, min=16, max=4096, step=16)
            self.gui_loop = gui.add_checkbox("Loop", False)
            self.gui_render_path = gui.add_button("Render path")
            self.gui_path_progress = gui.add_progress_bar(0.0)
            self._path_md = gui.add_markdown("")
        if any(s.cameras is not None for s in self.sources):
            counts = [len(camera_subset(len(s.cameras), self.max_cameras)) for s in self.sources if s.cameras is not None]
            self.gui_show_cams = gui.add_checkbox("Dataset cameras", max(counts) <= SHOW_CAMERAS_UP_TO,
                                                  hint="Thumbnails of the training views; click one to look "
                                                       f"through that camera (hidden at first above "
                                                       f"{SHOW_CAMERAS_UP_TO} cameras)")
        if len(self.sources) > 1:
            self.gui_scene.on_update(lambda _: self._on_scene())
            self.gui_side.on_update(lambda _: self._on_side())
            self.gui_side_with.on_update(lambda _: self._on_side())
            self._update_side_md()

        self.gui_display.on_update(lambda _: self._on_display())
        self.gui_mode.on_update(lambda _: self._on_settings())
        self.gui_res.on_update(lambda _: self._on_settings())
        self.gui_progressive.on_update(lambda _: self._on_settings())
        self.gui_bg.on_update(lambda _: self._on_settings())
        self.gui_sh.on_update(lambda _: self._on_filter())
        self.gui_opacity.on_update(lambda _: self._on_filter())
        self.gui_scale.on_update(lambda _: self._on_filter())
        for h in (self.gui_crop, self.gui_crop_min, self.gui_crop_max):
            h.on_update(lambda _: self._on_filter())
        self.gui_shot.on_click(self._on_screenshot)
        self.gui_key_add.on_click(self._on_add_key)
        self.gui_key_clear.on_click(lambda _: self._clear_keys())
        self.gui_render_path.on_click(lambda _: self.render_camera_path())
        self._update_stats()

    # ------------------------------------------------------------------ time and level of detail
    def _build_detail_gui(self) -> None:
        """A time slider with play/pause and frame stepping for temporal scenes; a cut selector (a
        level, or a per-view LOD pixel threshold) for hierarchical ones. Both re-render through the
        one render path (`Detail` -> the cameras' times / the method's cut options)."""
        gui = self.server.gui
        kinds = {scene_kind(x) for x in self._all_gaussians}
        self.gui_time = self.gui_cut = self.gui_lod = self._detail_md = None
        if self.duration > 0:
            with gui.add_folder("Time"):
                last = max(self.duration - self.frame_step, 0.0) if self.frame_step < self.duration else self.duration
                self.gui_time = gui.add_slider("Time (s)", 0.0, max(last, 1e-6), self.frame_step, 0.0,
                                               hint="The moment drawn: only the segments active then are rendered")
                self.gui_play = gui.add_button("Play / pause")
                self.gui_prev = gui.add_button("Previous frame")
                self.gui_next = gui.add_button("Next frame")
                self._detail_md = gui.add_markdown("")
            self.gui_time.on_update(lambda _: self._on_detail())
            self.gui_play.on_click(lambda _: self.play(not self.playing))
            self.gui_prev.on_click(lambda _: self.step_frame(-1))
            self.gui_next.on_click(lambda _: self.step_frame(1))
        if "hierarchical" in kinds:
            from ..methods.hierarchical import tree_of

            finest = max(int(tree_of(x)[0].max()) for x in self._all_gaussians
                         if scene_kind(x) == "hierarchical" and len(x))
            options = [CUT_FINEST] + [f"Level {i}" for i in range(finest)] + [CUT_LOD]
            d = self.detail
            initial = CUT_LOD if d.lod > 0 else (f"Level {d.level}" if 0 <= d.level < finest else CUT_FINEST)
            with gui.add_folder("Level of detail"):
                self.gui_cut = gui.add_dropdown("Cut", options, initial_value=initial,
                                                hint="A fixed level (0 = coarsest), or per view: each subtree "
                                                     "stops refining once it is smaller than the threshold")
                self.gui_lod = gui.add_slider("LOD threshold (px)", 0.25, 128.0, 0.25,
                                              min(max(d.lod, 0.25), 128.0) if d.lod > 0 else 2.0,
                                              hint="Projected size (3σ, pixels) below which a subtree is not refined")
                if self._detail_md is None:
                    self._detail_md = gui.add_markdown("")
            self.gui_cut.on_update(lambda _: self._on_detail())
            self.gui_lod.on_update(lambda _: self._on_detail())
        self._update_detail_md()

    def _read_detail(self) -> Detail:
        t = float(self.gui_time.value) if self.gui_time is not None else None
        lod, level = 0.0, -1
        if self.gui_cut is not None:
            cut = self.gui_cut.value
            if cut == CUT_LOD:
                lod = float(self.gui_lod.value)
            elif cut != CUT_FINEST:
                level = int(cut.split()[-1])
        return Detail(t, lod, level)

    def _on_detail(self) -> None:
        detail = self._read_detail()
        with self._lock:
            if detail == self.detail:
                return
            self.detail = detail
            self._sets = [s.at(detail) for s in self._sets]
            self._rs = self._sets[self._index]
            self._scene_version += 1
        self._update_detail_md()
        self._wake.set()

    def _update_detail_md(self) -> None:
        if self._detail_md is None:
            return
        d, lines = self.detail, []
        if d.time is not None:
            frame = int(round(d.time / self.frame_step)) if self.frame_step > 0 else 0
            n = max(1, int(round(self.duration / self.frame_step))) if self.frame_step > 0 else 1
            lines.append(f"t = {d.time:.3f} s (frame {frame + 1} of {n}){' ▶ playing' if self.playing else ''}")
        if self.gui_cut is not None:
            lines.append(f"Cut: LOD {d.lod:g} px" if d.lod > 0 else
                         f"Cut: {'finest level' if d.level < 0 else f'level {d.level}'}")
        if self.last_drawn is not None:
            lines.append(f"Gaussians drawn: {self.last_drawn:,} of {len(self._gaussians):,}")
        if self.last_frame_ms is not None:
            lines.append(f"Frame time: {self.last_frame_ms:.0f} ms")
        self._detail_md.content = "  \n".join(lines)

    def set_time(self, t: float) -> None:
        """Show the moment `t` seconds (as the time slider does)."""
        self.gui_time.value = float(t)
        self._on_detail()

    def step_frame(self, k: int = 1) -> float:
        """Move the time slider by k frames (wrapping around the clip); returns the new time."""
        if self.gui_time is None:
            raise ValueError("no temporal scene is open: there is no time slider")
        n = max(1, int(round(self.duration / self.frame_step)))
        frame = int(round(float(self.gui_time.value) / self.frame_step))
        t = ((frame + k) % n) * self.frame_step
        self.set_time(t)
        return t

    def play(self, on: bool = True) -> None:
        """Play (advance one frame per frame interval of wall time, looping) or pause."""
        self.playing = bool(on) and self.gui_time is not None
        if self.playing and (self._play_thread is None or not self._play_thread.is_alive()):
            self._play_thread = threading.Thread(target=self._play_loop, name="splatlab-view-play", daemon=True)
            self._play_thread.start()
        self._update_detail_md()

    def _play_loop(self) -> None:
        while self.playing and not self._stop.is_set():
            t0 = time.time()
            self.step_frame(1)
            self._stop.wait(max(0.0, self.frame_step - (time.time() - t0)))

    def set_lod(self, pixels: float) -> None:
        """Per-view LOD cut at this pixel threshold (as the LOD slider does)."""
        self.gui_lod.value = float(pixels)
        self.gui_cut.value = CUT_LOD
        self._on_detail()

    def set_level(self, level: int) -> None:
        """A fixed level (-1: finest), as the cut selector does."""
        self.gui_cut.value = CUT_FINEST if level < 0 else f"Level {int(level)}"
        self._on_detail()

    def _update_stats(self) -> None:
        s, rs = self.source, self._rs
        g = self._gaussians
        lo, hi = (b.numpy() for b in g.bounds())
        fmt = lambda v: "(" + ", ".join(f"{x:.3g}" for x in v) + ")"  # noqa: E731
        lines = [f"**{s.label}**", "",
                 f"Gaussians: {len(rs):,} shown / {len(g):,}",
                 f"SH degree: {g.sh_degree}",
                 f"Bounds: {fmt(lo)} – {fmt(hi)}"]
        if s.file_size:
            lines.append(f"File: {human_bytes(s.file_size)} ({s.format})")
        if s.step is not None:
            lines.append(f"Step: {s.step}")
        if self.extra_stats:
            lines.append(self.extra_stats)
        lines += [f"_{n}_" for n in s.notes]
        self._stats_md.content = "  \n".join(lines)

    def _add_dataset_cameras(self) -> None:
        """Frustums of each run's dataset cameras (at most `max_cameras` per run); only the shown run's
        are visible. Thumbnails arrive later from `_load_thumbnails`; a click moves the camera there."""
        from .render import matrix_to_quat_wxyz

        self._frustums: dict[int, list[tuple[int, object]]] = {}  # source -> [(camera index, handle)]
        for k, src in enumerate(self.sources):
            cams = src.cameras
            if cams is None:
                continue
            c2w = cams.camtoworlds.double().numpy()
            extent = float(np.linalg.norm(np.ptp(c2w[:, :3, 3], axis=0))) or 1.0
            handles = self._frustums[k] = []
            for i in camera_subset(len(cams), self.max_cameras):
                K = cams.Ks[i].numpy()
                fov = 2 * math.atan(cams.height / (2 * K[1, 1]))
                h = self.server.scene.add_camera_frustum(
                    f"/dataset_cameras/run{k}_{i:05d}", fov=fov, aspect=cams.width / cams.height,
                    scale=0.03 * extent, thickness=0.002 * extent, color=(230, 120, 20),
                    wxyz=matrix_to_quat_wxyz(c2w[i, :3, :3]), position=c2w[i, :3, 3],
                    visible=k == self._index and bool(self.gui_show_cams.value))
                h.on_click(self._frustum_click_handler(k, i))
                handles.append((i, h))
        if self._frustums:
            self.gui_show_cams.on_update(lambda _: self._show_frustums())

    def _show_frustums(self) -> None:
        on = bool(getattr(self, "gui_show_cams", None) and self.gui_show_cams.value)
        for k, handles in self._frustums.items():
            for _, h in handles:
                h.visible = on and k == self._index

    def dataset_frustums(self, source_index: int = 0) -> list[tuple[int, object]]:
        """[(dataset camera index, viser frustum handle)] of one source (empty without cameras)."""
        return list(self._frustums.get(source_index, []))

    def _load_thumbnails(self) -> None:
        """Background: each frustum gets a small copy of its training image (slow disks stay off the GUI)."""
        try:
            for k, handles in self._frustums.items():
                load = self.sources[k].camera_image
                if load is None:
                    continue
                failed = 0
                for i, h in handles:
                    if self._stop.is_set():
                        return
                    try:
                        h.image = thumbnail(load(i), self.thumbnail_size)
                    except Exception:  # a missing / unreadable image leaves a bare frustum
                        failed += 1
                if failed:
                    self.sources[k].notes.append(f"{failed} camera thumbnails could not be loaded")
                    self._update_stats()
        finally:
            self.thumbnails_ready.set()

    def _frustum_click_handler(self, source_index: int, camera_index: int):
        def on_click(event) -> None:
            if event.client is not None:
                self.go_to_dataset_camera(event.client, camera_index, source_index)
        return on_click

    def go_to_dataset_camera(self, client, camera_index: int, source_index: int | None = None) -> bool:
        """Put `client`'s camera exactly at dataset camera `camera_index` (pose and vertical fov).

        The orbit centre is put on the view axis at the depth of the scene centre, so orbiting after the
        jump turns around the scene. False if the client has not reported a camera yet."""
        from .render import matrix_to_quat_wxyz

        src = self.sources[self._index if source_index is None else source_index]
        cams = src.cameras
        if cams is None:
            return False
        try:
            old_distance = float(np.linalg.norm(client.camera.look_at - client.camera.position))
        except AssertionError:  # viser: no camera message from this client yet
            return False
        c2w = cams.camtoworlds[camera_index].double().numpy()
        R, pos = c2w[:3, :3], c2w[:3, 3]
        fov = 2 * math.atan(cams.height / (2 * float(cams.Ks[camera_index][1, 1])))
        depth = float(np.dot(np.asarray(self._home[1]) - pos, R[:, 2]))
        depth = depth if depth > 1e-6 else (old_distance or 1.0)
        cam = client.camera
        with client.atomic():
            cam.fov = fov
            cam.position = pos
            cam.wxyz = matrix_to_quat_wxyz(R)
            cam.look_at = pos + depth * R[:, 2]  # same direction: orientation unchanged
        return True

    # ------------------------------------------------------------------ several sources
    def _on_scene(self) -> None:
        index = self.labels.index(self.gui_scene.value)
        with self._lock:
            self._index = index
            self.source = self.sources[index]
            self._gaussians = self._all_gaussians[index]
            self._rs = self._sets[index]
            self._scene_version += 1
        if getattr(self, "_frustums", None):
            self._show_frustums()
        self._update_stats()
        self._update_side_md()
        self._wake.set()

    def _on_side(self) -> None:
        value = self.gui_side_with.value
        compare = None if value == ALL_SOURCES else self.labels.index(value)
        with self._lock:
            self.side_by_side = bool(self.gui_side.value)
            self._compare = compare
        if self.side_by_side and self.display != DISPLAY_SERVER:
            self.gui_display.value = DISPLAY_SERVER  # side by side is a server render
            self.display = DISPLAY_SERVER
        self._update_side_md()
        self._settings_changed()

    def _panel_indices(self) -> list[int]:
        if not self.side_by_side or len(self.sources) < 2:
            return [self._index]
        if self._compare is None:
            return list(range(len(self.sources)))
        if self._compare == self._index:
            return [self._index]
        return [self._index, self._compare]

    def _panels(self) -> list[RenderSet]:
        with self._lock:
            return [self._sets[i] for i in self._panel_indices()]

    def _update_side_md(self) -> None:
        if len(self.sources) < 2:
            return
        if self.side_by_side:
            names = " | ".join(f"**{self.labels[i]}**" for i in self._panel_indices())
            text = f"Left to right: {names}"
            if self.display != DISPLAY_SERVER:
                text += "  \n_Side by side needs the server renderer._"
        else:
            text = f"Showing **{self.labels[self._index]}**"
        self._side_md.content = text

    def select_source(self, index: int) -> None:
        """Show source `index` (as the dropdown does)."""
        self.gui_scene.value = self.labels[index]
        self._on_scene()

    def set_side_by_side(self, on: bool, compare: int | None | str = "keep") -> None:
        """Side by side on/off; `compare`: index of the right-hand source, or None for all sources."""
        if compare != "keep":
            self.gui_side_with.value = ALL_SOURCES if compare is None else self.labels[int(compare)]
        self.gui_side.value = bool(on)
        self._on_side()

    def _on_display(self) -> None:
        self.display = self.gui_display.value
        self._update_side_md()
        self._settings_changed()

    def _on_settings(self) -> None:
        self.mode = self.gui_mode.value
        self.max_resolution = int(self.gui_res.value)
        self.progressive = bool(self.gui_progressive.value)
        self.background = tuple(c / 255.0 for c in self.gui_bg.value)
        self._settings_changed()

    def _on_filter(self) -> None:
        crop = self.gui_crop.value
        scale_max = float(self.gui_scale.value)
        self._filter = ViewFilter(
            min_opacity=float(self.gui_opacity.value),
            max_scale=math.inf if scale_max >= self._max_scale_all else scale_max,
            crop_min=tuple(self.gui_crop_min.value) if crop else None,
            crop_max=tuple(self.gui_crop_max.value) if crop else None,
            sh_degree_cap=int(self.gui_sh.value))
        self._show_crop_box()
        self._refilter()

    def _show_crop_box(self) -> None:
        if self.gui_crop.value:
            lo, hi = np.asarray(self.gui_crop_min.value), np.asarray(self.gui_crop_max.value)
            self.server.scene.add_box("/crop_box", color=(255, 200, 0), dimensions=tuple(np.abs(hi - lo)),
                                      wireframe=True, position=tuple((lo + hi) / 2))
        else:
            self.server.scene.remove_by_name("/crop_box")

    # public setters (tests and scripts drive the app without a GUI click)
    def set_background(self, rgb) -> None:
        self.gui_bg.value = tuple(int(round(c * 255)) for c in rgb)
        self._on_settings()

    def set_display(self, display: str, mode: str | None = None) -> None:
        if mode is not None:
            self.gui_mode.value = mode
        self.gui_display.value = display
        self._on_settings()
        self._on_display()

    def set_filter(self, min_opacity: float | None = None, max_scale: float | None = None, crop=None) -> None:
        if min_opacity is not None:
            self.gui_opacity.value = min_opacity
        if max_scale is not None:
            self.gui_scale.value = max_scale
        if crop is not None:
            self.gui_crop_min.value, self.gui_crop_max.value = tuple(crop[0]), tuple(crop[1])
            self.gui_crop.value = True
        self._on_filter()

    # ------------------------------------------------------------------ clients
    def _on_connect(self, client) -> None:
        state = _Client(client)
        try:  # a client that connected before this app existed already reported its camera
            state.camera_ready = client.camera.update_timestamp > 0
        except AssertionError:
            pass
        with self._lock:
            self._clients[client.client_id] = state

        @client.camera.on_update
        def _(cam) -> None:
            with self._lock:
                state.camera_version += 1
                state.last_move = time.time()
                state.camera_ready = True
            self._wake.set()

        self._wake.set()

    def _on_disconnect(self, client) -> None:
        with self._lock:
            self._clients.pop(client.client_id, None)

    def client_count(self) -> int:
        return len(self._clients)

    def client_stats(self) -> list[dict]:
        with self._lock:
            return [{"id": cid, "frames": c.frames, "shape": c.last_frame_shape, "ready": c.camera_ready}
                    for cid, c in self._clients.items()]

    def settled(self) -> bool:
        """True once every client with a camera has been sent the full-resolution server render of
        the current scene, settings and camera (for tests and scripted screenshots)."""
        with self._lock:
            key = (self._scene_version, self._settings_version)
            return all(c.full_key == (*key, c.camera_version) for c in self._clients.values() if c.camera_ready)

    def client_camera(self, client=None) -> ViewCamera | None:
        with self._lock:
            states = [self._clients[client.client_id]] if client is not None and \
                client.client_id in self._clients else list(self._clients.values())
        for st in states:
            if st.camera_ready:
                return camera_from_viser(st.handle.camera)
        return None

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.05)
            self._wake.clear()
            try:
                self._tick()
                self.render_error = None
            except Exception as err:  # keep serving; show the problem instead of dying
                self.render_error = f"{type(err).__name__}: {err}"
                time.sleep(0.2)

    def _tick(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            rs, scene_v, settings_v = self._rs, self._scene_version, self._settings_version
            display = self.display
            panels = [self._sets[i] for i in self._panel_indices()]
        if not clients:
            return
        if display == DISPLAY_BROWSER:
            plain, key = None, scene_v
            if rs.gaussians.method is not None and scene_kind(rs.gaussians) == "hierarchical" and \
                    float(rs.gaussians.method.options.get("lod", 0.0) or 0.0) > 0:
                # the browser draws fixed splats: upload the LOD cut of the first client's view once
                # its camera rests (moving away then uploads fewer Gaussians)
                now = time.time()
                for st in clients:
                    if st.camera_ready and now - st.last_move >= self.rest_delay:
                        cam = camera_from_viser(st.handle.camera)
                        w, h = cam.size_for(max(st.handle.camera.image_width, st.handle.camera.image_height, 64))
                        key = (scene_v, st.handle.client_id, st.camera_version)
                        if key != self._uploaded_version:
                            plain = rs.plain_for_view(cam, w, h)
                        break
                else:
                    key = self._uploaded_version  # wait for a camera at rest
            self._sync_splats(rs, key, visible=True, plain=plain)
            bg = tuple(to_uint8(np.asarray(self.background)).tolist())
            for st in clients:
                if st.solid_key != bg:
                    st.handle.scene.set_background_image(np.full((8, 8, 3), bg, np.uint8), format="png")
                    st.solid_key = bg
                    st.low_key = st.full_key = None
            return
        self._sync_splats(rs, scene_v, visible=False)
        now = time.time()
        for st in clients:
            if not st.camera_ready:
                continue
            key = (scene_v, settings_v, st.camera_version)
            if st.full_key == key:
                continue
            moving = self.progressive and (now - st.last_move) < self.rest_delay
            if moving and st.low_key == key:
                continue
            self._render_for(st, panels, key, low=moving)

    def _render_for(self, st: _Client, panels: list[RenderSet], key: tuple, low: bool) -> None:
        cam = camera_from_viser(st.handle.camera)
        canvas = max(st.handle.camera.image_width, st.handle.camera.image_height)
        long_side = min(self.max_resolution, max(64, canvas))
        if low:
            long_side = max(48, int(long_side * self.low_res_factor))
        w, h = cam.size_for(long_side)
        t0 = time.perf_counter()
        img = compose_side_by_side(panels, cam, w, h, self.mode, self.background)
        elapsed = time.perf_counter() - t0
        st.handle.scene.set_background_image(to_uint8(img), format="jpeg", jpeg_quality=90)
        st.times.append(time.perf_counter() - t0)
        if self._detail_md is not None:
            self.last_drawn, self.last_frame_ms = panels[0].drawn_count(cam, w, h), 1e3 * elapsed
            self._update_detail_md()
        del st.times[:-20]
        st.frames += 1
        st.last_frame_shape = (h, w)
        st.solid_key = None
        if low:
            st.low_key = key
        else:
            st.full_key = st.low_key = key

    def _sync_splats(self, rs: RenderSet, version, visible: bool, plain: Gaussians | None = None) -> None:
        node = getattr(self, "_splat_node", None)
        if visible and self._uploaded_version != version and \
                time.time() - self._last_upload >= self.splat_upload_interval:
            plain = rs.plain if plain is None else plain
            if len(rs) and len(plain):
                self._splat_node = self.server.scene.add_gaussian_splats("/splats", **splat_arrays(plain))
            elif node is not None:
                node.visible = False
            self.last_drawn, self.last_frame_ms = len(plain), None
            self._update_detail_md()
            self._uploaded_version = version
            self._last_upload = time.time()
            node = getattr(self, "_splat_node", None)
        if node is not None and node.visible != (visible and len(rs) > 0):
            node.visible = visible and len(rs) > 0

    # ------------------------------------------------------------------ capture
    def _out_dir(self) -> str:
        return os.path.abspath(self.gui_shot_dir.value or self.out_dir)

    def screenshot(self, camera: ViewCamera | None = None, path: str | None = None) -> str:
        """Render the current (or given) view at full resolution with splatlab; atomic PNG write."""
        camera = camera or self.client_camera()
        if camera is None:
            eye, target = self._home
            from .render import look_at_camera
            camera = look_at_camera(eye, target, self.home_camera.fov_y, 4 / 3)
        w, h = camera.size_for(self.max_resolution)
        if self.display == DISPLAY_SERVER:
            img = compose_side_by_side(self._panels(), camera, w, h, self.mode, self.background)
        else:
            img = render_image(self._rs, camera, w, h, "RGB", self.background)
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
            path = os.path.join(self._out_dir(), f"screenshot_{stamp}.png")
        save_png_atomic(img, path)
        self.last_screenshot = path
        return path

    def _on_screenshot(self, event) -> None:
        cam = self.client_camera(event.client) if event.client is not None else None
        try:
            path = self.screenshot(cam)
        except OSError as err:
            self._shot_md.content = f"**Screenshot failed:** {err}"
            return
        self._shot_md.content = f"Saved `{path}`"
        print(f"splatlab view: saved {path}", flush=True)

    def _on_add_key(self, event) -> None:
        cam = self.client_camera(event.client) if event.client is not None else self.client_camera()
        if cam is not None:
            self.add_keyframe(cam)

    def add_keyframe(self, cam: ViewCamera) -> None:
        self.keyframes.append(cam)
        i = len(self.keyframes) - 1
        extent = float(np.linalg.norm(np.ptp(self._rs.means.numpy(), axis=0))) if len(self._rs) else 1.0
        self.server.scene.add_camera_frustum(f"/camera_path/key_{i:03d}", fov=cam.fov_y, aspect=cam.aspect,
                                             scale=0.04 * extent, color=(40, 160, 255), wxyz=cam.wxyz,
                                             position=cam.position)
        self._keys_md.content = f"{len(self.keyframes)} keyframes"

    def _clear_keys(self) -> None:
        for i in range(len(self.keyframes)):
            self.server.scene.remove_by_name(f"/camera_path/key_{i:03d}")
        self.keyframes = []
        self._keys_md.content = "0 keyframes"

    def render_camera_path(self, out_dir: str | None = None, block: bool = False) -> threading.Thread | None:
        """Render the keyframed path to PNG frames (+ MP4 if imageio-ffmpeg is installed) in a thread."""
        from .campath import interpolate_path, render_path

        if self._path_thread is not None and self._path_thread.is_alive():
            self._path_md.content = "A path render is already running."
            return None
        if len(self.keyframes) < 2:
            self._path_md.content = "Add at least two keyframes first."
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out_dir = out_dir or os.path.join(self._out_dir(), f"path_{stamp}")
        w, h = int(self.gui_path_w.value), int(self.gui_path_h.value)
        cams = interpolate_path(self.keyframes, int(self.gui_frames.value), loop=bool(self.gui_loop.value))
        rs, mode, bg = self._rs, self.mode if self.display == DISPLAY_SERVER else "RGB", self.background

        def progress(done: int, total: int) -> None:
            self.gui_path_progress.value = 100.0 * done / total
            self._path_md.content = f"Rendering frame {done}/{total}"

        def work() -> None:
            self.gui_render_path.disabled = True
            try:
                res = render_path(rs, cams, out_dir, w, h, mode, bg, float(self.gui_fps.value), progress=progress)
                msg = f"Wrote {res['frames']} frames to `{res['dir']}`"
                msg += f" and `{os.path.basename(res['mp4'])}`" if res["mp4"] else " (no MP4: pip install imageio-ffmpeg)"
                self._path_md.content = msg
                self.last_path_result = res
                print(f"splatlab view: {msg.replace('`', '')}", flush=True)
            except Exception as err:
                self._path_md.content = f"**Path render failed:** {type(err).__name__}: {err}"
            finally:
                self.gui_render_path.disabled = False

        self._path_thread = threading.Thread(target=work, name="splatlab-view-path", daemon=True)
        self._path_thread.start()
        if block:
            self._path_thread.join()
        return self._path_thread

    def stop(self) -> None:
        self.playing = False
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout=5)
        self._thumb_thread.join(timeout=5)
