"""Classical enhancement: gamma reaches the normal-light mean luma, CLAHE and histeq behave."""
import hashlib
import json
import os

import numpy as np
import pytest

from dataset.enhancement import enhance, histeq, mean_luma
from tests.helpers import assert_user_error, darken, run_script
from torch_utils_lib.data.image_io import read_rgb
from torch_utils_lib.toolkit.paths import sample_images


def dark_image():
    return darken(read_rgb(os.path.join(sample_images("val"), "val_0001.png")), 0.2)


def test_gamma_hits_the_target_mean_luma():
    image = dark_image()
    for target in (40.0, 90.0, 150.0):
        out, record = enhance(image, "gamma", target)
        assert abs(mean_luma(out) - target) < 1.0, (target, mean_luma(out))
        assert record["gamma"] < 1  # brightening
    assert enhance(image, "gamma", mean_luma(image))[1]["gamma"] == pytest.approx(1.0, abs=0.05)


def test_histeq_spreads_luma_and_clahe_keeps_shape():
    image = dark_image()
    out = histeq(image)
    luma_out = out.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert luma_out.max() - luma_out.min() > 200  # equalised to the full range
    assert mean_luma(out) > mean_luma(image) + 50
    clahe, _ = enhance(image, "clahe")
    assert clahe.shape == image.shape and clahe.dtype == np.uint8
    assert mean_luma(clahe) > mean_luma(image)


def test_script_enhances_a_folder_keeps_names_and_inputs(tmp_path):
    source = tmp_path / "dark"
    source.mkdir()
    from torch_utils_lib.data.image_io import write_image
    for n in range(3):
        write_image(str(source / f"im_{n}.png"), dark_image())
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.iterdir()}
    out = tmp_path / "gamma"
    result = run_script("dataset/enhance.py", "--method", "gamma", "--input_dir", source,
                        "--output_dir", out)  # target: the sample train set's mean luma
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "enhancement.json").read_text())
    train_names = sorted(os.listdir(sample_images("train")))
    target = np.mean([mean_luma(read_rgb(os.path.join(sample_images("train"), n))) for n in train_names])
    assert abs(report["target_luma"] - target) < 1e-6
    for n in range(3):
        assert abs(mean_luma(read_rgb(str(out / f"im_{n}.png"))) - target) < 1.0
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.iterdir()} == before
    refused = run_script("dataset/enhance.py", "--method", "clahe", "--input_dir", source,
                         "--output_dir", source / "inside")
    assert_user_error(refused, "input folder")
