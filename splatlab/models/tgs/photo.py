"""Photo -> the network's input: foreground mask, crop and centre as in training, white background.

Foreground: the PNG's alpha channel when it has a non-trivial one; otherwise a simple background
estimate: the median colour of the image border, and pixels farther than a threshold from it
(plus the largest-area filling of holes is NOT attempted: a textured or cluttered background will
leak into the mask — give a PNG with alpha for such photos).
Crop: the mask's bounding box is centred and scaled so that its longer side covers `OBJECT_FRACTION`
of the square input, the median over the training renders (objects in the unit sphere at distance
3 with a 40° fov).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..base import InputError

OBJECT_FRACTION = 0.75
MIN_FOREGROUND = 0.002  # below this fraction of pixels there is "no object"
BG_THRESHOLD = 0.12     # colour distance (0..sqrt(3)) from the border median that counts as object


def foreground(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Alpha in [0, 1] (H, W): the photo's own, or from a border-colour background estimate."""
    if alpha is not None and alpha.min() < 0.99:
        return alpha
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    bg = np.median(border, axis=0)
    dist = np.linalg.norm(rgb - bg, axis=-1)
    return np.clip((dist - BG_THRESHOLD) / BG_THRESHOLD + 0.5, 0, 1).astype(np.float32)


def load_photo(path: str, size: int) -> np.ndarray:
    """(4, size, size) float32: RGB over white and alpha, object centred and scaled as in training."""
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
            arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    except Exception as exc:
        raise InputError(f"{path}: unreadable image ({type(exc).__name__})") from None
    rgb = arr[..., :3]
    alpha = foreground(rgb, arr[..., 3] if has_alpha else None)
    mask = alpha > 0.5
    if mask.mean() < MIN_FOREGROUND:
        raise InputError(f"{path}: no object found (foreground covers {100 * mask.mean():.2f}% of the image; "
                         "give a PNG with an alpha mask)")
    if mask.mean() > 0.95:
        raise InputError(f"{path}: no object found (the whole image differs from its border; give a PNG with alpha)")
    ys, xs = np.nonzero(mask)
    cy, cx = 0.5 * (ys.min() + ys.max() + 1), 0.5 * (xs.min() + xs.max() + 1)
    side = max(ys.max() + 1 - ys.min(), xs.max() + 1 - xs.min()) / OBJECT_FRACTION
    white = rgb * alpha[..., None] + (1 - alpha[..., None])
    rgba = np.concatenate([white, alpha[..., None]], -1)
    # crop a square of `side` around the centre (padding with white / alpha 0), resize to `size`
    h, w = mask.shape
    pad = int(np.ceil(side))
    canvas = np.zeros((h + 2 * pad, w + 2 * pad, 4), np.float32)
    canvas[..., :3] = 1.0
    canvas[pad:pad + h, pad:pad + w] = rgba
    y0, x0 = int(round(cy - side / 2)) + pad, int(round(cx - side / 2)) + pad
    s = max(1, int(round(side)))
    crop = canvas[y0:y0 + s, x0:x0 + s]
    # resize in float (PIL's RGBA resize would zero the colour of transparent pixels)
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return np.ascontiguousarray(out.clamp(0, 1).numpy())
