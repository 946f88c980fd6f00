"""A fresh random scene every CI run: the default recipe must not overfit a capture nobody tuned on.

The seed is drawn anew each run (from the clock) out of a range disjoint from the benchmark's tuning
(1-4) and held-out (9001-9008) seeds, and printed; `SPLATLAB_SMOKE_SEED=N` replays one. The run is
short (64², 1500 steps), so the bounds are loose: this catches a recipe that breaks on new data
(floaters, a background painted onto the cameras), not a fraction of a dB; the absolute floor is low
because some random scenes are hard to fit at 64² at all. The full measurement is
`scripts/bench_generalization.py` (scenes/README.md).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Ten seeds on 2026-12-07: test 21.5-34.2 dB (a finely textured floor at 64² is hard even to fit:
# train 23.3 on the lowest), gap 0.4-1.8 dB. The floor only catches a run that learned nothing (a
# flat colour scores ~10-14 dB); the gap catches floaters (the report: 28.0 train, 16.0 test).
MIN_TEST_PSNR = 18.0
MAX_GAP = 5.0


def smoke_seed() -> int:
    env = os.environ.get("SPLATLAB_SMOKE_SEED")
    return int(env) if env else 100_000 + time.time_ns() % 900_000


def test_default_recipe_holds_on_a_fresh_random_scene(tmp_path, capsys):
    pytest.importorskip("pyrender", reason="pyrender not installed (pip install -e '.[data]')")
    pytest.importorskip("skimage", reason="scikit-image not installed (pip install -e '.[data]')")
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_random_scene import make_random_scene

    from splatlab.cli import main

    seed = smoke_seed()
    with capsys.disabled():
        print(f"\n[generalization smoke] random scene seed {seed} (replay: SPLATLAB_SMOKE_SEED={seed})")
    scene = make_random_scene(seed, tmp_path / "scenes")
    out = tmp_path / "run"
    assert main(["train", str(scene), "--resolution", "2", "--iterations", "1500", "--out", str(out),
                 "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    train, test = m["train"]["psnr"], m["test"]["psnr"]
    with capsys.disabled():
        print(f"[generalization smoke] seed {seed}: train {train:.2f} dB, test {test:.2f} dB, "
              f"{m['num_gaussians']} Gaussians, {m['wall_time_s']:.0f} s")
    assert test >= MIN_TEST_PSNR, f"seed {seed}: test PSNR {test:.2f} dB"
    assert train - test <= MAX_GAP, f"seed {seed}: train {train:.2f} dB, test {test:.2f} dB"
