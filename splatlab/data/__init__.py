"""Datasets: one `SceneData` for COLMAP, nerfstudio and Blender-synthetic scenes, plus photos -> poses.

    scene = load_scene("scenes/garden", downscale=4)
    scene.validate()                       # decode every image up-front
    rgb = scene.train.load_image(0)        # (H, W, 3) float32 in [0, 1]
"""
from __future__ import annotations

from pathlib import Path

from .scene import DatasetError, SceneData, Views


def detect_format(path) -> str:
    """'blender', 'nerfstudio', 'video' (multi-view video) or 'colmap' for a dataset folder; DatasetError otherwise."""
    from .colmap import find_model_dir

    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or directory")
    if p.is_file():
        if p.name.startswith("transforms_") and p.suffix == ".json":
            return "blender"
        if p.suffix == ".json":
            from .nerfstudio import read_json
            from .video import is_video_transforms
            return "video" if is_video_transforms(read_json(p), p.parent) else "nerfstudio"
        raise DatasetError(f"{p}: not a dataset folder or transforms.json file")
    if (p / "transforms_train.json").is_file():
        return "blender"
    if (p / "transforms.json").is_file():
        from .nerfstudio import read_json
        from .video import is_video_transforms
        return "video" if is_video_transforms(read_json(p / "transforms.json"), p) else "nerfstudio"
    if find_model_dir(p) is not None:
        return "colmap"
    raise DatasetError(f"{p}: no dataset found (expected transforms_train.json, transforms.json, "
                       f"or a COLMAP model in sparse/0, sparse or colmap/sparse/0)")


def load_scene(path, downscale: int = 1, background=(1.0, 1.0, 1.0), output_dir=None,
               test_every: int = 8, cache_images: bool = False) -> SceneData:
    """Load a dataset folder, auto-detecting its format.

    `downscale` uses `images_<N>/` folders when present, else resizes on load (intrinsics follow).
    `background` is the colour RGBA images are composited on. `output_dir`: nerfstudio scenes
    write `dataparser_transforms.json` there. Every `test_every`-th image is held out (COLMAP,
    nerfstudio); Blender scenes use their own test split.
    """
    kind = detect_format(path)
    if kind == "blender":
        from .blender import load_blender
        p = Path(path)
        return load_blender(p.parent if p.is_file() else p, downscale, background, cache_images=cache_images)
    if kind == "video":
        from .video import load_video_scene
        return load_video_scene(path, downscale, background, cache_images=cache_images)
    if kind == "nerfstudio":
        from .nerfstudio import load_nerfstudio
        return load_nerfstudio(path, downscale, background, output_dir=output_dir, test_every=test_every,
                               cache_images=cache_images)
    from .colmap import load_colmap
    return load_colmap(path, downscale, background, test_every=test_every, cache_images=cache_images)


__all__ = ["DatasetError", "SceneData", "Views", "load_scene", "detect_format"]
