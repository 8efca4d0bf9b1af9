"""image_metrics must agree with scikit-image (the reference the literature's numbers come from)."""
import math

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from torch_utils_lib.evaluation.image_metrics import (gt_mean_align, luma, mse, psnr, psnr_gt_mean, ssim,
                                           ssim_gt_mean, summarize)


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    reference = data.astronaut()[:shape[0], :shape[1]]
    if len(shape) == 2:
        reference = reference[..., 1]
    degraded = np.clip(reference * 0.4 + rng.normal(0, 12, reference.shape), 0, 255)
    return np.ascontiguousarray(reference), degraded.astype(np.uint8)


def _skimage_ssim(a, b, data_range):
    return structural_similarity(a, b, channel_axis=-1 if a.ndim == 3 else None,
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range)


@pytest.mark.parametrize("shape", [(96, 80, 3), (64, 70)])
def test_psnr_and_ssim_match_skimage_uint8(shape):
    a, b = _pair(shape)
    assert abs(psnr(a, b) - peak_signal_noise_ratio(a, b, data_range=255)) < 1e-9
    ours, ref = ssim(a, b), _skimage_ssim(a, b, 255)
    assert abs(ours - ref) < 1e-5  # float32 arithmetic
    assert 0.05 < ours < 0.6  # a dark noisy copy is clearly dissimilar


def test_psnr_and_ssim_match_skimage_float_range_one():
    a, b = _pair((64, 64, 3), seed=1)
    fa, fb = a / 255.0, b / 255.0
    assert abs(psnr(fa, fb, 1.0) - peak_signal_noise_ratio(fa, fb, data_range=1.0)) < 1e-9
    assert abs(ssim(fa, fb, 1.0) - _skimage_ssim(fa, fb, 1.0)) < 1e-5
    # the same images on the 0..255 scale give the same scores
    assert abs(ssim(fa, fb, 1.0) - ssim(a, b)) < 1e-6


def test_known_values():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 110  # one error of 10 over 768 values: MSE 100/768
    assert mse(a, b) == pytest.approx(100 / 768)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 * 768 / 100))
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0)


def test_gt_mean_variant_forgives_exposure_only():
    a, _ = _pair((64, 64, 3))
    darker = (a.astype(np.float64) * 0.25)
    assert psnr(darker, a) < 15
    # pure exposure change: after mean alignment the image is the reference again (up to clipping)
    assert psnr_gt_mean(darker, a) > 45
    assert ssim_gt_mean(darker, a) > 0.999
    aligned = gt_mean_align(darker, a)
    weights = np.array([0.299, 0.587, 0.114])
    assert aligned.reshape(-1, 3).mean(0) @ weights == pytest.approx(
        a.reshape(-1, 3).mean(0) @ weights, rel=1e-3)


def test_shape_mismatch_and_tiny_images_raise():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="at least"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


def test_summarize():
    s = summarize([1.0, 2.0, 3.0, 4.0, math.inf, None])
    assert s == {"mean": 2.5, "min": 1.0, "max": 4.0, "std": pytest.approx(1.118033988749895),
                 "count": 4}
    assert summarize([])["count"] == 0


def test_no_torch_import():
    import subprocess
    import sys
    code = ("import sys; import torch_utils_lib.evaluation.image_metrics; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    from torch_utils_lib.toolkit.paths import REPO_ROOT
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0


def test_ssim_auto_downsampling_is_block_averaging():
    a, b = _pair((300, 400, 3))
    # min side 300 -> f = round(300 / 256) = 1: identical to full resolution
    assert ssim(a, b, downsample="auto") == ssim(a, b)
    big_a = np.repeat(np.repeat(a, 2, 0), 2, 1)
    big_b = np.repeat(np.repeat(b, 2, 0), 2, 1)
    # 600x800 -> f = 2: averaging 2x2 blocks recovers the small images exactly
    assert ssim(big_a, big_b, downsample="auto") == pytest.approx(ssim(a, b), abs=1e-6)
    float_a, float_b = big_a / 255.0, big_b / 255.0
    assert ssim(float_a, float_b, 1.0, downsample=2) == pytest.approx(ssim(a, b), abs=1e-6)


def test_luma_is_bt601_as_matlab_rgb2gray():
    a, _ = _pair((64, 70, 3))
    expected = a.astype(np.float64) @ np.array([0.298936, 0.587043, 0.114021])  # rgb2gray's
    y = luma(a)
    assert y.dtype == np.uint8 and y.shape == (64, 70)
    assert np.abs(y - np.rint(expected)).max() <= 1  # OpenCV's fixed point vs MATLAB's rounding
    assert np.allclose(luma(a / 255.0), expected / 255.0, atol=1e-5)
    assert luma(y) is y
    # SSIM on luma scores the grey images, as skimage does for 2-D inputs
    a, b = _pair((96, 80, 3))
    assert ssim(luma(a), luma(b)) == pytest.approx(_skimage_ssim(luma(a), luma(b), 255), abs=1e-5)
