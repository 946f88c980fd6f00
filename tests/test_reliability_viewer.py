"""Issue 13, group 5: the live training viewer can never hang or kill a training run. A viewer whose
server thread dies, whose update fails or that never starts is switched off with one warning line."""
from __future__ import annotations

import threading
import time
import types

import pytest

from splatlab.train import train_main
from test_train_scene import make_scene

pytest.importorskip("viser", reason="viser not installed (pip install viser==1.1.1)")


def test_dead_server_thread_never_blocks_a_paused_run(capsys):
    from splatlab.view.live import LiveViewer

    viewer = LiveViewer(port=0, verbose=False, start_paused=True)
    try:
        viewer._server._websock_server.stop()  # viser's server thread ends (as if it had crashed)
        waiter = threading.Thread(target=viewer.wait_while_paused, daemon=True)
        t0 = time.perf_counter()
        waiter.start()
        waiter.join(timeout=15)
        assert not waiter.is_alive(), "a paused run waited forever for a viewer that can no longer resume it"
        assert time.perf_counter() - t0 < 15
        assert viewer.failed and not viewer.should_pause()
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("warning: live viewer stopped"), err
    finally:
        viewer._closed = True  # releases the waiter on code without the fix
        viewer.close()


def test_server_that_never_becomes_ready_times_out():
    """viser blocks until its server thread says it is ready; a thread that died never does."""
    from splatlab.view.live import ViewerStartError, _start_server

    class NeverReady:
        def __init__(self, *a, **k):
            threading.Event().wait()

    t0 = time.perf_counter()
    with pytest.raises(ViewerStartError, match="did not start"):
        _start_server(types.SimpleNamespace(ViserServer=NeverReady), "127.0.0.1", 0, timeout=1.0)
    assert time.perf_counter() - t0 < 5


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("scene") / "s", size=16, n_train=3, n_test=1)


def _train(scene_dir, out):
    return train_main([str(scene_dir), "--out", str(out), "--iterations", "3", "--init-points", "50",
                       "--eval-every", "0", "--save-every", "0", "--max-eval-views", "1", "--no-progress",
                       "--viewer", "--viewer-port", "0"])


def test_viewer_failing_mid_training_does_not_stop_it(scene_dir, tmp_path, capsys, monkeypatch):
    from splatlab.view.live import LiveViewer

    def broken_push(self):
        raise RuntimeError("websocket event loop died")

    monkeypatch.setattr(LiveViewer, "_push", broken_push)
    out = tmp_path / "run"
    assert _train(scene_dir, out) == 0
    assert (out / "metrics.json").is_file() and (out / "point_cloud.ply").is_file()
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "live viewer" in ln]
    assert len(warnings) == 1 and "training continues" in warnings[0], warnings


def test_viewer_that_cannot_start_does_not_stop_training(scene_dir, tmp_path, capsys, monkeypatch):
    from splatlab.view import live

    def fail(*a, **k):
        raise live.ViewerStartError("the live viewer on 127.0.0.1:0 did not start within 30 s")

    monkeypatch.setattr(live, "_start_server", fail)
    out = tmp_path / "run"
    assert _train(scene_dir, out) == 0
    assert (out / "metrics.json").is_file()
    err = capsys.readouterr().err
    assert "did not start" in err and "continues without the live viewer" in err
