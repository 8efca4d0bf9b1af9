"""Darkness levels in stops (--level EV) and the physics ISP against Brooks et al.'s process.py."""
import json
import math
import os

import cv2
import numpy as np
import pytest

from dataset import gamma_noise, physics
from dataset.data_preprocessing import main as synthesis_main
from tests.helpers import assert_user_error, run_script
from torch_utils_lib.data.image_io import read_rgb
from torch_utils_lib.toolkit.paths import sample_images


@pytest.fixture
def four_images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in sorted(os.listdir(sample_images("val")))[:4]:
        cv2.imwrite(str(folder / name), cv2.imread(os.path.join(sample_images("val"), name))[:40, :48])
    return folder


def test_physics_level_fixes_the_ratio_and_is_recorded_in_stops(four_images, tmp_path):
    out = tmp_path / "ev3"
    synthesis_main(["--quiet", "--input_dir", str(four_images), "--output_dir", str(out),
                    "--method", "physics", "--level", "3"])
    summary = json.loads((out / "synthesis.json").read_text())
    assert summary["level"] == {"ev": 3.0, "ratio": 8.0}
    assert summary["settings"]["ratio"] == [8.0, 8.0] and summary["settings"]["level_ev"] == 3.0
    assert [(r["params"]["ratio"], r["ev"]) for r in summary["images"]] == [(8.0, 3.0)] * 4
    # a darker level darkens more: 2 stops more is about 4x less linear signal
    synthesis_main(["--quiet", "--input_dir", str(four_images), "--output_dir", str(tmp_path / "ev5"),
                    "--method", "physics", "--level", "5"])
    means = {level: np.mean([read_rgb(str(tmp_path / level / r["file_name"])).mean() for r in summary["images"]])
             for level in ("ev3", "ev5")}
    assert means["ev5"] < 0.6 * means["ev3"], means


def test_gamma_noise_level_ladder(four_images, tmp_path):
    assert gamma_noise.level_params(2) == pytest.approx((3.0, 0.001))
    assert gamma_noise.level_params(7) == pytest.approx((8.0, 0.01))
    assert gamma_noise.level_params(4) == pytest.approx((5.0, 0.001 * 10 ** 0.4))
    assert 0.5 ** gamma_noise.level_params(6)[0] == pytest.approx(0.5 / 2 ** 6)  # mid-grey 2**EV darker
    out = tmp_path / "ev4"
    synthesis_main(["--quiet", "--input_dir", str(four_images), "--output_dir", str(out), "--level", "4"])
    summary = json.loads((out / "synthesis.json").read_text())
    assert summary["level"] == {"ev": 4.0, "gamma": 5.0, "noise_var": pytest.approx(0.0025119, abs=1e-7)}
    for record in summary["images"]:
        assert record["ev"] == 4.0 and record["params"]["gamma"] == 5.0
        assert record["params"]["noise_var"] == summary["level"]["noise_var"]


def test_level_without_it_nothing_changes_and_conflicts_are_errors(four_images, tmp_path):
    synthesis_main(["--quiet", "--input_dir", str(four_images), "--output_dir", str(tmp_path / "plain")])
    summary = json.loads((tmp_path / "plain" / "synthesis.json").read_text())
    assert "level" not in summary and "ev" not in summary["images"][0]
    assert_user_error(run_script("dataset/data_preprocessing.py", "--input_dir", four_images, "--output_dir",
                                 tmp_path / "x", "--method", "physics", "--level", "3", "--ratio", "2", "2"),
                      "--level 3", "--ratio")
    assert_user_error(run_script("dataset/data_preprocessing.py", "--input_dir", four_images, "--output_dir",
                                 tmp_path / "y", "--level", "-1"), "--level -1")


@pytest.mark.parametrize("method, level, shown", [
    ("physics", "1100", "physics takes levels from 0 to 13.81 stops"),  # 2**1100 overflowed
    ("gamma_noise", "1e308", "gamma_noise takes levels from 0 to 20.01 stops"),
    ("physics", "13.9", "below one DN"),
    ("gamma_noise", "20.1", "exceeds the whole 0-255 range"),
    ("physics", "inf", "not a finite number"),
])
def test_levels_past_the_range_are_one_line_before_anything_is_read(four_images, tmp_path, method,
                                                                    level, shown):
    before = {p.name: p.read_bytes() for p in four_images.iterdir()}
    result = run_script("dataset/data_preprocessing.py", "--input_dir", four_images, "--output_dir",
                        tmp_path / "out", "--method", method, "--level", level)
    assert result.returncode == 2
    assert_user_error(result, f"--level {level if level != '1e308' else '1e+308'}", shown)
    assert {p.name: p.read_bytes() for p in four_images.iterdir()} == before
    assert not (tmp_path / "out").exists()


def test_level_range_bounds_are_where_only_noise_is_left():
    from dataset.synthesis import check_level, level_range
    low, high = level_range("physics")
    assert (low, 2 ** high) == (0.0, pytest.approx(physics.WHITE_LEVEL - physics.BLACK_LEVEL))
    low, high = level_range("gamma_noise")
    assert math.sqrt(gamma_noise.level_params(high)[1]) * gamma_noise.HALF_RANGE == pytest.approx(255)
    assert check_level("gamma_noise", high) == high and check_level("physics", 0.0) == 0.0


def brooks_demosaic(bayer):
    """Brooks et al.'s demosaic (unprocessing, process.py) in numpy: tf.image.resize_bilinear
    (align_corners=False) of each RGGB plane, with their flips for green and blue."""
    def resize(plane):
        h, w = plane.shape
        y, x = np.arange(2 * h) / 2, np.arange(2 * w) / 2
        y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
        y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
        fy, fx = (y - y0)[:, None], (x - x0)[None]
        top = plane[y0][:, x0] * (1 - fx) + plane[y0][:, x1] * fx
        bottom = plane[y1][:, x0] * (1 - fx) + plane[y1][:, x1] * fx
        return top * (1 - fy) + bottom * fy

    red = resize(bayer[0::2, 0::2])
    green_red = resize(bayer[0::2, 1::2][:, ::-1])[:, ::-1]
    green_blue = resize(bayer[1::2, 0::2][::-1])[::-1]
    blue = resize(bayer[1::2, 1::2][::-1, ::-1])[::-1, ::-1]
    green = np.empty_like(red)
    green[0::2, 0::2] = (green_red[0::2, 0::2] + green_blue[0::2, 0::2]) / 2
    green[0::2, 1::2] = green_red[0::2, 1::2]
    green[1::2, 0::2] = green_blue[1::2, 0::2]
    green[1::2, 1::2] = (green_red[1::2, 1::2] + green_blue[1::2, 1::2]) / 2
    return np.dstack([red, green, blue])


def test_demosaic_matches_brooks_including_the_outermost_frame():
    bayer = np.random.default_rng(0).integers(0, 60000, (10, 14)).astype(np.uint16)
    ours = physics.demosaic(bayer).astype(np.float64)
    reference = brooks_demosaic(bayer.astype(np.float64))
    assert np.abs(ours - reference).max() <= 1.0  # OpenCV averages in integers


def test_physics_round_trip_at_ratio_one():
    rgb = cv2.GaussianBlur(read_rgb(os.path.join(sample_images("val"), "val_0001.png")), (0, 0), 2)
    for seed in range(3):
        params = {**physics.draw_params(np.random.default_rng(seed)), "ratio": 1.0}
        raw = physics.add_sensor_noise(physics.expected_signal(rgb, params), params, None,
                                       shot=False, read=False, row=False)
        error = np.abs(physics.process(raw, params).astype(np.float64) - rgb)
        assert error.mean() < 0.6  # the whole image, outermost frame included
        frame = np.ones(error.shape[:2], bool)
        frame[1:-1, 1:-1] = False
        assert error[frame].mean() < 0.8
        assert np.percentile(error, 99.9) <= 12  # what bilinear demosaicking loses at edges
    for color in ((255, 255, 255), (250, 250, 250), (255, 240, 220), (230, 230, 250)):
        flat = np.zeros((8, 8, 3), np.uint8)
        flat[:] = color
        for seed in range(10):  # highlights come back: gains then clip, as Brooks et al.
            params = {**physics.draw_params(np.random.default_rng(seed)), "ratio": 1.0}
            raw = physics.add_sensor_noise(physics.expected_signal(flat, params), params, None,
                                           shot=False, read=False, row=False)
            assert np.abs(physics.process(raw, params).astype(int) - flat).max() <= 1, (color, seed)
