"""Atomic writes: whole files or none, ordinary permissions, no temporary files left behind."""
import itertools
import os
import stat

import pytest

from torch_utils_lib.toolkit import atomic_io
from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_whole_files_with_the_umasks_mode_into_new_folders(tmp_path):
    path = tmp_path / "new" / "deeper" / "image.jpg"
    atomic_write_bytes(str(path), b"first")
    atomic_write_bytes(str(path), b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert _mode(path) == 0o666 & ~atomic_io._UMASK
    assert os.listdir(path.parent) == ["image.jpg"]


def test_a_taken_temporary_name_falls_back_to_a_random_one(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_io, "_TEMP_NUMBERS", itertools.count(7))
    taken = tmp_path / f".out.bin.{os.getpid()}.7.tmp"  # as another host's writer would leave it
    taken.write_bytes(b"theirs")
    atomic_write_bytes(str(tmp_path / "out.bin"), b"ours")
    assert (tmp_path / "out.bin").read_bytes() == b"ours" and taken.read_bytes() == b"theirs"
    assert _mode(tmp_path / "out.bin") == 0o666 & ~atomic_io._UMASK
    assert sorted(os.listdir(tmp_path)) == [taken.name, "out.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "keep.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(str(path), "text, not bytes")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["keep.json"]
