"""Issue 13, group 2 (decompression bombs) and the file-format cases of groups 6/7: sizes bounded by
the declared count, body size checked exactly, SOG meta of the wrong types -> one-line errors."""
from __future__ import annotations

import gzip
import json
import os
import tracemalloc
import zipfile

import pytest
import torch

from splatlab.gaussians import Gaussians
from splatlab.io import SplatFormatError, read_splats, write_splats

BOMB = 64 << 20  # 64 MB of zeros: ~64 KB compressed


def tiny(n=32):
    g = torch.Generator().manual_seed(0)
    return Gaussians(torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g) - 3,
                     torch.randn(n, generator=g), torch.randn(n, 1, 3, generator=g), torch.randn(n, 3, 3, generator=g))


def peak_bytes_of(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_spz_bomb_is_refused_without_inflating(tmp_path):
    good = tmp_path / "g.spz"
    write_splats(good, tiny())
    raw = gzip.decompress(good.read_bytes())
    bomb = tmp_path / "bomb.spz"
    bomb.write_bytes(gzip.compress(raw + b"\0" * BOMB, compresslevel=1))

    def read():
        with pytest.raises(SplatFormatError, match="bomb.spz: trailing data"):
            read_splats(bomb)
    assert peak_bytes_of(read) < BOMB // 8


def test_spz_count_larger_than_the_file_can_hold(tmp_path):
    good = tmp_path / "g.spz"
    write_splats(good, tiny())
    raw = bytearray(gzip.decompress(good.read_bytes()))
    raw[8:12] = (1 << 31).to_bytes(4, "little")
    bad = tmp_path / "count.spz"
    bad.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(SplatFormatError, match="count.spz: header declares"):
        read_splats(bad)


def test_sog_member_bomb_is_refused_without_inflating(tmp_path):
    good = tmp_path / "g.sog"
    write_splats(good, tiny())
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["means_l.webp"] = b"\0" * BOMB
    bomb = tmp_path / "bomb.sog"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)

    def read():
        with pytest.raises(SplatFormatError, match="bomb.sog: means_l.webp declares"):
            read_splats(bomb)
    assert peak_bytes_of(read) < BOMB // 8


@pytest.mark.parametrize("patch, needle", [
    ({"means": {"mins": "a", "maxs": [0, 0, 0], "files": ["means_l.webp", "means_u.webp"]}}, "means.mins"),
    ({"scales": {"codebook": "abc", "files": ["scales.webp"]}}, "scales.codebook"),
    ({"scales": {"codebook": [1, None], "files": ["scales.webp"]}}, "scales.codebook"),
    ({"count": True}, "count"),
])
def test_sog_meta_wrong_types(tmp_path, patch, needle):
    good = tmp_path / "g.sog"
    write_splats(good, tiny())
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["meta.json"] = json.dumps({**json.loads(members["meta.json"]), **patch}).encode()
    bad = tmp_path / "bad.sog"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(SplatFormatError, match=needle) as info:
        read_splats(bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("ext", ["ply", "spz"])
def test_trailing_data_is_refused(tmp_path, ext):
    good = tmp_path / f"g.{ext}"
    write_splats(good, tiny())
    data = good.read_bytes()
    bad = tmp_path / f"t.{ext}"
    bad.write_bytes(data + b"\0" * 40 if ext == "ply" else gzip.compress(gzip.decompress(data) + b"\0" * 40))
    with pytest.raises(SplatFormatError, match="trailing data"):
        read_splats(bad)
    read_splats(good)  # the exact body still reads


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("shared", [False, True])
def test_failed_sog_folder_write_leaves_the_old_sog_intact(tmp_path, shared, monkeypatch):
    from splatlab.io.sog import encode_sog, write_sog_files

    folder = tmp_path / "scene_sog"
    folder.mkdir()
    if shared:  # a folder that also holds the user's other files
        (folder / "notes.txt").write_text("keep me")
    write_sog_files(str(folder), encode_sog(tiny(32)))
    before = _snapshot(folder)
    new = encode_sog(tiny(48))
    real_fsync, calls = os.fsync, []

    def disk_full_on_third_file(fd):  # a disk that fills up in the middle of the folder
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_full_on_third_file)
    with pytest.raises(OSError):
        write_sog_files(str(folder), new)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert _snapshot(folder) == before
    assert len(read_splats(folder / "meta.json")) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene_sog"]  # no temp folders left behind
    write_sog_files(str(folder), new)
    assert len(read_splats(folder / "meta.json")) == 48
    assert (folder / "notes.txt").exists() == shared
