"""The whole photos -> poses -> splats path on the bundled `courtyard` photos, as a user runs it:
`splatlab process` (pycolmap SfM) then `splatlab train` on the COLMAP scene it wrote."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from splatlab.cli import main
from splatlab.data import load_scene
from test_sfm import umeyama

ROOT = Path(__file__).resolve().parents[1]
COURTYARD = ROOT / "scenes" / "courtyard"


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    out = tmp_path_factory.mktemp("courtyard") / "scene"
    assert main(["process", str(COURTYARD / "photos"), str(out), "--quiet"]) == 0
    return out


def test_process_recovers_ground_truth_poses(processed):
    truth = json.loads((COURTYARD / "ground_truth_poses.json").read_text())
    true_centers = {f["image_name"]: np.array(f["camera_to_world"])[:3, 3] for f in truth["frames"]}
    scene = load_scene(processed)
    names = list(scene.train.names) + list(scene.test.names)
    centers = np.concatenate([scene.train.cameras.centers.numpy(), scene.test.cameras.centers.numpy()])
    assert len(names) >= 0.9 * len(true_centers), "too few photos registered"
    gt = np.stack([true_centers[Path(n).name] for n in names])
    s, R, t = umeyama(centers, gt)
    aligned = (s * (R @ centers.T)).T + t
    error = np.linalg.norm(aligned - gt, axis=1)
    assert error.max() < 0.03 * truth["orbit_radius"], f"camera centres off by up to {error.max():.3f}"
    assert scene.points is not None and len(scene.points) > 500


def test_train_on_processed_scene(processed, tmp_path):
    run = tmp_path / "run"
    code = main(["train", str(processed), "--iterations", "300", "--resolution", "2", "--out", str(run),
                 "--eval-every", "0", "--save-every", "0", "--no-progress", "--refine-start", "100",
                 "--max-eval-views", "5"])
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["psnr"] > 18.0, metrics["test"]
    assert (run / "point_cloud.ply").exists()
