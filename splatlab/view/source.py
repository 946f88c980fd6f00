"""What `splatlab view` opens: a splat file, or a training run folder (latest result + its cameras)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..cameras import Cameras
from ..gaussians import Gaussians, MethodSpec

CHECKPOINT_PREFIX = "step_"


class ViewerInputError(ValueError):
    """A path the viewer cannot open; the message is one readable line."""


@dataclass
class ViewSource:
    gaussians: Gaussians
    label: str  # what was opened (shown in the GUI)
    path: str  # the file the Gaussians came from
    file_size: int  # bytes on disk (0 when unknown)
    format: str  # "ply", "sog", ..., or "checkpoint"
    cameras: Cameras | None = None  # dataset cameras of a run folder, if they could be loaded
    step: int | None = None  # training step of a checkpoint / run
    notes: list[str] = field(default_factory=list)  # non-fatal problems (e.g. cameras unavailable)
    # image i of `cameras` as float (H, W, 3) in [0, 1] (for frustum thumbnails); None without a dataset
    camera_image: Callable[[int], object] | None = None


def _size_on_disk(path: str) -> int:
    try:
        if os.path.isdir(path):
            return sum(f.stat().st_size for f in Path(path).iterdir() if f.is_file())
        if path.lower().endswith(".json"):
            return _size_on_disk(os.path.dirname(os.path.abspath(path)))
        return os.path.getsize(path)
    except OSError:
        return 0


def read_splat_file(path: str) -> ViewSource:
    from ..io import SplatFormatError, detect_format

    try:
        fmt = detect_format(path)
        g = fmt.read(os.fspath(path))
    except SplatFormatError as err:
        raise ViewerInputError(str(err)) from None
    except (OSError, ValueError, KeyError, IndexError, EOFError) as err:  # codec bugs on odd files
        raise ViewerInputError(f"{path}: cannot read splat file ({type(err).__name__}: {err})") from None
    if len(g) == 0:
        raise ViewerInputError(f"{path}: the file holds no Gaussians")
    return ViewSource(g, os.path.basename(os.path.abspath(path)), path, _size_on_disk(path), fmt.name)


def _latest_checkpoint(run: Path) -> Path | None:
    folder = run / "checkpoints"
    if not folder.is_dir():
        return None
    found = []
    for f in folder.iterdir():
        name = f.name
        if name.startswith(CHECKPOINT_PREFIX) and name.endswith(".pt") and name[5:-3].isdigit():
            found.append((int(name[5:-3]), f))
    return max(found)[1] if found else None


def checkpoint_method(payload: dict) -> MethodSpec | None:
    """The method a checkpoint was trained with (its `method` entry, or its config's for older ones)."""
    spec = MethodSpec.from_dict(payload.get("method"))
    if spec is None:
        config = payload.get("config") or {}
        if config.get("method"):
            spec = MethodSpec(str(config["method"]), dict(config.get("method_options") or {}))
    return spec


def read_checkpoint(path: Path) -> tuple[Gaussians, dict]:
    from ..checkpoint_file import CheckpointError, load_checkpoint

    try:
        payload = load_checkpoint(path)  # weights_only: a crafted .pt cannot run code here
    except CheckpointError as err:
        raise ViewerInputError(str(err)) from None
    try:
        return Gaussians.from_fields(payload["params"], checkpoint_method(payload)), payload
    except Exception as err:  # a checkpoint whose tensors do not form a scene
        raise ViewerInputError(f"{path}: cannot read checkpoint ({type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''})") from None


def _dataset_cameras(scene: str | None, notes: list[str]) -> tuple[Cameras | None, Callable | None]:
    """(train [+ test] cameras, loader of image i of those cameras), or (None, None)."""
    if not scene:
        return None, None
    try:
        from ..data import load_scene

        data = load_scene(scene)
        train = data.train
        cams = train.cameras
        n_train = len(train)
        if len(data.test):
            test = data.test.cameras
            if (test.width, test.height) == (cams.width, cams.height):
                times = None if cams.times is None or test.times is None else torch.cat([cams.times, test.times])
                cams = Cameras(torch.cat([cams.viewmats, test.viewmats]), torch.cat([cams.Ks, test.Ks]),
                               cams.width, cams.height, times=times)

        def image(i: int):
            return train.load_image(i) if i < n_train else data.test.load_image(i - n_train)
        return cams, image
    except Exception as err:  # the dataset may have moved; the viewer still works without frustums
        notes.append(f"dataset cameras unavailable ({str(err).splitlines()[0] if str(err) else type(err).__name__})")
        return None, None


def open_run_folder(run: Path, with_cameras: bool = True) -> ViewSource:
    """The newer of `point_cloud.ply` and the latest `checkpoints/step_*.pt`, plus dataset cameras."""
    ply = run / "point_cloud.ply"
    ckpt = _latest_checkpoint(run)
    if not ply.is_file() and ckpt is None:
        raise ViewerInputError(f"{run}: not a splat folder or run folder (no point_cloud.ply, "
                               f"no checkpoints/step_*.pt, no meta.json)")
    notes: list[str] = []
    config: dict = {}
    step = None
    use_ply = ply.is_file() and (ckpt is None or ply.stat().st_mtime >= ckpt.stat().st_mtime)
    if use_ply:
        source = read_splat_file(str(ply))
        source.label = f"{run.name}/point_cloud.ply"
        if ckpt is not None:
            step = int(ckpt.name[5:-3])
            from ..checkpoint_file import CheckpointError, load_checkpoint

            try:  # for the dataset path only; a bad checkpoint must not stop viewing the .ply
                config = load_checkpoint(ckpt).get("config") or {}
            except CheckpointError as err:
                notes.append(f"checkpoint not read ({err})")
    else:
        g, payload = read_checkpoint(ckpt)
        config = payload.get("config", {}) or {}
        step = int(payload.get("step", int(ckpt.name[5:-3])))
        source = ViewSource(g, f"{run.name}/checkpoints/{ckpt.name}", str(ckpt), _size_on_disk(str(ckpt)),
                            "checkpoint")
    if not use_ply and len(source.gaussians) == 0:
        raise ViewerInputError(f"{ckpt}: the checkpoint holds no Gaussians")
    if not (run / "metrics.json").is_file():
        notes.append("run has no metrics.json (still training or interrupted)")
    source.step = step
    if with_cameras:
        source.cameras, source.camera_image = _dataset_cameras(config.get("scene"), notes)
    source.notes = notes
    return source


def read_temporal_folder(path: Path) -> ViewSource:
    """A temporal splat folder (`splatlab.methods.temporal_store`): every segment, tagged with the
    method, so the time slider renders the segments active at each moment through the render path."""
    from ..methods.temporal_store import SegmentStore

    try:
        store = SegmentStore(path)
        keys = sorted((s["level"], s["segment"]) for s in store.index["segments"].values())
        tensors = store.load_tensors(keys)
    except (ValueError, KeyError, TypeError, OSError) as err:
        text = str(err).strip().splitlines()
        raise ViewerInputError(f"{path}: cannot read temporal splat folder ({text[0] if text else type(err).__name__})") from None
    if not tensors:
        raise ViewerInputError(f"{path}: the temporal splat folder holds no Gaussians")
    g = Gaussians.from_fields({k: v for k, v in tensors.items() if "." not in k}, store.method.spec())
    return ViewSource(g, path.name, str(path), _size_on_disk(str(path)), "temporal")


def open_source(path: str, with_cameras: bool = True) -> ViewSource:
    """Open a splat file (any format splatlab reads), a SOG folder, a checkpoint or a run folder."""
    p = Path(path)
    if not p.exists():
        raise ViewerInputError(f"{path}: no such file or directory")
    if p.is_dir():
        if (p / "meta.json").is_file():
            return read_splat_file(str(p))
        if (p / "index.json").is_file():
            return read_temporal_folder(p)
        return open_run_folder(p, with_cameras)
    if p.suffix == ".pt":
        g, payload = read_checkpoint(p)
        if len(g) == 0:
            raise ViewerInputError(f"{path}: the checkpoint holds no Gaussians")
        return ViewSource(g, p.name, str(p), _size_on_disk(str(p)), "checkpoint", step=payload.get("step"))
    return read_splat_file(str(p))


def open_sources(paths: list[str], with_cameras: bool = True) -> list[ViewSource]:
    """`open_source` for each path (the first failure raises, naming its path); labels made distinct.

    Two inputs with the same label (e.g. `a/point_cloud.ply` from two `a` folders) are told apart by
    the path as given on the command line."""
    sources = []
    for path in paths:
        try:
            sources.append(open_source(path, with_cameras))
        except ViewerInputError:
            raise
        except Exception as err:  # anything else a broken input raises: one line that names the path
            text = str(err).strip().splitlines()
            raise ViewerInputError(f"{path}: {text[0] if text else type(err).__name__}") from None
    labels = [s.label for s in sources]
    for s, path in zip(sources, paths):
        if labels.count(s.label) > 1:
            s.label = os.path.normpath(path)
    return sources
