"""Two gloo ranks on a tiny scene: identical models on every rank, equal to one process with the same batch."""
from __future__ import annotations

import json

import torch

from splatlab.train import TrainConfig, run_training
from splatlab.train.checkpoint import find_checkpoint, load_checkpoint
from test_train_scene import make_scene


def run_two_ranks(cfg: TrainConfig) -> dict:
    """`run_training` with 2 gloo ranks, retried once if a rank aborts (SIGABRT, "terminate called
    without an active exception"): seen in 2 of ~6 full-suite runs on 2026-12-06 and never when the
    test runs alone; a known open bug (a C++ thread not joined at a rank's teardown), not a wrong result."""
    import shutil

    from torch.multiprocessing.spawn import ProcessExitedException

    try:
        return run_training(cfg)
    except ProcessExitedException as err:
        if getattr(err, "signal_name", None) != "SIGABRT":
            raise
        shutil.rmtree(cfg.out, ignore_errors=True)
        return run_training(cfg)


def test_two_ranks_match_single_process(tmp_path):
    scene = make_scene(tmp_path / "synth", size=16, n_train=6, n_test=2)
    common = dict(scene=str(scene), iterations=10, init_num_points=120, refine_start=3, refine_every=3,
                  reset_every=1000, grad_threshold=1e-12, sh_degree=1, batch_size=2, eval_every=0, save_every=0, progress=False,
                  seed=3, max_eval_views=2)
    dist_out, single_out = tmp_path / "dist", tmp_path / "single"
    result = run_two_ranks(TrainConfig(out=str(dist_out), nproc=2, **common))
    assert result["status"] == "finished"
    metrics = json.loads((dist_out / "metrics.json").read_text())
    assert metrics["distributed"] == {"world_size": 2, "max_param_diff_across_ranks": 0.0}
    run_training(TrainConfig(out=str(single_out), nproc=1, **common))
    a = load_checkpoint(find_checkpoint(dist_out))["params"]
    b = load_checkpoint(find_checkpoint(single_out))["params"]
    assert a["means"].shape == b["means"].shape
    assert a["means"].shape[0] > 120  # densification happened (a tiny threshold: no borderline decisions)
    # the background shell's rows (pinned) hold every field but colour exactly, on every rank
    pinned = load_checkpoint(find_checkpoint(dist_out))["strategy_state"]["pinned"]
    assert pinned > 0
    for k in a:
        if k != "sh0":
            assert torch.equal(a[k][:pinned], b[k][:pinned]), k
    # ranks run with 1 thread each, the single process with more: float sums differ in the last bits,
    # and Adam turns the difference between two near-zero gradients into a full step, so a handful of
    # rows (nearly invisible Gaussians) may differ by more; every other row agrees closely
    for k in a:
        close = torch.isclose(a[k], b[k], atol=1e-3, rtol=1e-3).reshape(len(a[k]), -1).all(dim=1)
        assert close.float().mean() > 0.995, (k, int((~close).sum()), (a[k] - b[k]).abs().max())
