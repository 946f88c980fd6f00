"""Issue 13, group 5: bad viewer ports and hosts are one-line errors up front, never a hang."""
from __future__ import annotations

import pytest

from splatlab.train import train_main
from splatlab.view.cli import view_main
from splatlab.view.listen import ListenAddressError, check_listen_address


@pytest.mark.parametrize("host, port", [("127.0.0.1", 70000), ("127.0.0.1", -1), ("999.1.1.1", 0),
                                        ("no.such.host.invalid", 0)])
def test_bad_address_is_refused(host, port):
    with pytest.raises(ListenAddressError):
        check_listen_address(host, port)


def test_view_bad_host_is_one_line(tmp_path, capsys):
    assert view_main([str(tmp_path), "--host", "999.1.1.1"]) == 1
    err = capsys.readouterr().err.strip()
    assert "999.1.1.1" in err and "\n" not in err


def test_train_viewer_port_out_of_range(tmp_path, capsys):
    out = tmp_path / "out"
    assert train_main([str(tmp_path), "--out", str(out), "--viewer", "--viewer-port", "70000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "70000" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--reset-every", "0"), ("--init-opacity", "1"), ("--backend", "foo"),
                                         ("--grad-threshold", "nan"), ("--refine-every", "0"), ("--cap-max", "-1"),
                                         ("--max-eval-views", "-1"), ("--init-scale", "-1")])
def test_bad_train_flags_are_one_line(tmp_path, capsys, flag, value):
    """Issue 13 groups 6/7: flags that used to be accepted silently (or crash later)."""
    out = tmp_path / "out"
    assert train_main([str(tmp_path), "--out", str(out), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert flag.lstrip("-").split("-")[0] in err and "\n" not in err, err
    assert not out.exists()
