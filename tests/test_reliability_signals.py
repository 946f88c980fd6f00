"""Issue 13, group 3: SIGTERM stops training like Ctrl-C (checkpoint + .ply, exit 130), and a
Ctrl-C during the final evaluation loses nothing (checkpoint and .ply are written before it)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from splatlab.train import train_main
from splatlab.train.checkpoint import find_checkpoint, load_checkpoint
from splatlab.train.outputs import is_complete
from splatlab.train.trainer import Trainer
from test_train_scene import make_scene

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("scene") / "s", size=16, n_train=3, n_test=1)


def argv(scene, out, iterations=6):
    return [str(scene), "--out", str(out), "--iterations", str(iterations), "--init-points", "50",
            "--eval-every", "0", "--save-every", "0", "--no-progress"]


def test_sigterm_saves_checkpoint_and_ply(scene_dir, tmp_path):
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from splatlab.train import train_main
        from splatlab.train.trainer import Trainer
        original = Trainer.train_step
        def step(self, i):
            if i == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # what `kill` / a job scheduler sends
            return original(self, i)
        Trainer.train_step = step
        sys.exit(train_main({argv(scene_dir, out, 1000)!r}))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-2000:])
    assert load_checkpoint(find_checkpoint(out))["step"] == 3
    assert (out / "point_cloud.ply").is_file()
    assert not is_complete(out)


def test_ctrl_c_during_final_evaluation_keeps_results(scene_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    original = Trainer.evaluate

    def evaluate(self, views, *a, **kw):  # with --eval-every 0 only the final evaluation calls this
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the final metrics are computed
        return original(self, views, *a, **kw)

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    assert train_main(argv(scene_dir, out)) == 130
    assert load_checkpoint(find_checkpoint(out))["step"] == 6
    assert (out / "point_cloud.ply").is_file()
    assert not is_complete(out)


@pytest.mark.parametrize("when", ["loading", "starting"])
def test_sigterm_before_the_first_step_is_one_line_and_leaves_nothing(scene_dir, tmp_path, when):
    """SIGTERM while the data loads (no folder yet) or while the loop starts (folder just made):
    exit 130 with one line, no half-made run folder (the default action used to kill the process)."""
    out = tmp_path / "run"
    target = ("splatlab.train.launch", "prepare_scene") if when == "loading" else \
        ("splatlab.train.trainer", "Trainer._start_viewer")
    script = textwrap.dedent(f"""
        import importlib, os, signal, sys
        from splatlab.train import train_main
        module = importlib.import_module({target[0]!r})
        owner, _, name = {target[1]!r}.rpartition(".")
        holder = getattr(module, owner) if owner else module
        original = getattr(holder, name)
        def hooked(*a, **k):
            os.kill(os.getpid(), signal.SIGTERM)
            return original(*a, **k)
        setattr(holder, name, hooked)
        sys.exit(train_main({argv(scene_dir, out, 1000)!r}))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-2000:])
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "interrupted" in err[0], err
    assert not out.exists()
