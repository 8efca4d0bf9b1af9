"""DNGs written by dataset.dng open in rawpy (LibRaw) bit-exact with the right pattern and levels."""
import os

import numpy as np
import pytest
import rawpy

from dataset.dng import write_dng
from torch_utils_lib.data.camera import (CFA_PATTERNS, cfa_index_pattern, read_dng_as_shot_neutral,
                                         read_dng_color_matrix)
from torch_utils_lib.toolkit.errors import UserError

XYZ_TO_CAM = np.array([[0.6722, -0.0635, -0.0963], [-0.4287, 1.2460, 0.2046],
                       [-0.0572, 0.1344, 0.6567]])


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_rawpy_reads_mosaic_pattern_and_levels(tmp_path, pattern):
    rng = np.random.default_rng(CFA_PATTERNS.index(pattern))
    bayer = rng.integers(0, 16384, (32, 48)).astype(np.uint16)
    black = [2048, 2049, 2050, 2051]
    path = str(tmp_path / f"{pattern}.dng")
    write_dng(path, bayer, pattern, black, 16383, XYZ_TO_CAM, [0.5, 1.0, 0.625])
    with rawpy.imread(path) as raw:
        assert np.array_equal(raw.raw_image, bayer)
        assert raw.raw_image.dtype == np.uint16
        assert raw.raw_pattern.tolist() == cfa_index_pattern(pattern).tolist()
        assert raw.color_desc == b"RGBG"
        assert raw.white_level == 16383
        # black levels are given per 2x2 position; rawpy lists them per colour index
        for (i, j), color in np.ndenumerate(raw.raw_pattern):
            assert raw.black_level_per_channel[color] == black[2 * i + j]
        # LibRaw turns AsShotNeutral into camera multipliers (reciprocals, green = 1)
        assert raw.camera_whitebalance[:3] == pytest.approx([2.0, 1.0, 1.6], rel=1e-6)
        rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)
        assert rgb.shape == (32, 48, 3)
    assert np.allclose(read_dng_color_matrix(path), XYZ_TO_CAM, atol=1e-6)
    assert np.allclose(read_dng_as_shot_neutral(path), [0.5, 1.0, 0.625], atol=1e-6)


def test_index_pattern_follows_libraw_green_numbering():
    assert cfa_index_pattern("RGGB").tolist() == [[0, 1], [3, 2]]
    assert cfa_index_pattern("BGGR").tolist() == [[2, 3], [1, 0]]
    assert cfa_index_pattern("GRBG").tolist() == [[1, 0], [2, 3]]
    assert cfa_index_pattern("GBRG").tolist() == [[3, 2], [0, 1]]


def test_single_black_level_and_atomic_write(tmp_path):
    bayer = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    path = str(tmp_path / "raw" / "one.dng")
    write_dng(path, bayer, "RGGB", 512, 4095, np.eye(3), [1, 1, 1])
    assert os.listdir(tmp_path / "raw") == ["one.dng"]  # no temporary left behind
    with rawpy.imread(path) as raw:
        assert list(raw.black_level_per_channel) == [512] * 4
        assert raw.white_level == 4095
        assert np.array_equal(raw.raw_image, bayer)


def test_rejects_bad_arguments(tmp_path):
    path = str(tmp_path / "x.dng")
    good = dict(cfa_pattern="RGGB", black_level=0, white_level=4095, color_matrix1=np.eye(3),
                as_shot_neutral=[1, 1, 1])
    with pytest.raises(ValueError, match="uint16"):
        write_dng(path, np.zeros((32, 32), np.float32), **good)
    with pytest.raises(ValueError, match="cfa_pattern"):
        write_dng(path, np.zeros((32, 32), np.uint16), **{**good, "cfa_pattern": "RGBG"})
    with pytest.raises(ValueError, match="22 pixels"):
        write_dng(path, np.zeros((8, 8), np.uint16), **good)
    assert not os.path.exists(path)
    with pytest.raises(UserError, match="cannot read DNG"):
        (tmp_path / "bad.dng").write_bytes(b"not a tiff")
        read_dng_color_matrix(str(tmp_path / "bad.dng"))


def test_odd_sizes_round_trip_through_active_area(tmp_path):
    bayer = np.random.default_rng(5).integers(0, 4096, (33, 47)).astype(np.uint16)
    path = str(tmp_path / "odd.dng")
    write_dng(path, bayer, "GBRG", 64, 4095, XYZ_TO_CAM, [0.5, 1.0, 0.5])
    with rawpy.imread(path) as raw:
        assert raw.raw_image_visible.shape == (33, 47)
        assert np.array_equal(raw.raw_image_visible, bayer)
        assert raw.raw_pattern.tolist() == cfa_index_pattern("GBRG").tolist()
        assert raw.postprocess().shape == (33, 47, 3)
