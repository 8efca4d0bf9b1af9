"""Full-reference image quality: PSNR and SSIM in numpy/OpenCV (no torch import).

`psnr` and `ssim` match scikit-image's `peak_signal_noise_ratio` and
`structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
channel_axis=-1)` (Wang et al. 2004 settings) to within 1e-5 (float32 arithmetic), and are
faster because OpenCV filters all channels in one separable pass (README, "Benchmarks"). The GT-mean variants are what the low-light
enhancement literature reports beside plain PSNR (e.g. LLFlow, Retinexformer): the restored image
is scaled so that its mean brightness equals the reference's before scoring, which measures
structure and colour rather than the (ill-posed) choice of exposure.
"""
import math

import cv2
import numpy as np

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = int(3.5 * _SSIM_SIGMA + 0.5)  # scipy.ndimage's truncate=3.5, as in skimage
_SSIM_WINDOW = 2 * _SSIM_RADIUS + 1
_SSIM_KERNEL_32 = cv2.getGaussianKernel(_SSIM_WINDOW, _SSIM_SIGMA, cv2.CV_64F).astype(np.float32)


def _check_pair(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    return a, b


def mse(a, b):
    """Mean squared error between two equally shaped arrays (float64 accumulation)."""
    a, b = _check_pair(a, b)
    if a.dtype == b.dtype and a.dtype in (np.uint8, np.uint16, np.float32, np.float64):
        # cv2.norm accumulates in double: exact for integer images, and no temporaries
        return cv2.norm(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1),
                        cv2.NORM_L2SQR) / a.size
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr(a, b, data_range=255):
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    error = mse(a, b)
    if error == 0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / error)


def _filter(x, dst=None):
    return cv2.sepFilter2D(x, cv2.CV_32F, _SSIM_KERNEL_32, _SSIM_KERNEL_32, dst=dst,
                           borderType=cv2.BORDER_REFLECT)


def ssim_downsample_factor(shape):
    """Wang et al.'s rule (their reference ssim.m): average f x f blocks, f = round(min(H, W) / 256)."""
    return max(1, int(round(min(shape[:2]) / 256)))


def _block_average(image, factor):
    """Averages of factor x factor blocks, as (array, scale): the array holds scale x the means.

    8-bit images give exact integer block sums (scale f^2): OpenCV's area resampling of the
    image times f^2 in uint16 divides exact multiples of f^2. Others give float32 means.
    """
    h, w = image.shape[0] // factor, image.shape[1] // factor
    cropped = image[:h * factor, :w * factor]
    if image.dtype == np.uint8 and factor <= 16:
        scaled = cropped.astype(np.uint16)
        scaled *= np.uint16(factor * factor)
        return cv2.resize(scaled, (w, h), interpolation=cv2.INTER_AREA), factor * factor
    return cv2.resize(cropped.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA), 1


def ssim(a, b, data_range=255, downsample=1):
    """Mean structural similarity (Gaussian 11x11 window, sigma 1.5), averaged over channels.

    downsample: 1 (scikit-image's full-resolution SSIM), an integer f, or "auto" for the
    viewing-distance rule of Wang et al.'s reference code (f = round(min(H, W) / 256)); images
    are then averaged over f x f blocks first, which also makes SSIM about f^2 times cheaper.
    """
    a, b = _check_pair(a, b)
    factor = ssim_downsample_factor(a.shape) if downsample == "auto" else int(downsample)
    if factor > 1:
        (a, scale), (b, _) = _block_average(a, factor), _block_average(b, factor)
        data_range = data_range * scale  # SSIM(k x, k y, k R) = SSIM(x, y, R)
    if min(a.shape[:2]) < _SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels")
    # Written with s = x + y and d = x - y, SSIM needs four filtered maps instead of five:
    # 2 mu_x mu_y = (mu_s^2 - mu_d^2) / 2, 2 sigma_xy = (var_s - var_d) / 2, and the sums
    # mu_x^2 + mu_y^2, sigma_x^2 + sigma_y^2 with + in place of -. float32 is plenty here.
    if a.dtype == b.dtype and a.dtype in (np.uint8, np.uint16, np.float32):
        s, d = cv2.add(a, b, dtype=cv2.CV_32F), cv2.subtract(a, b, dtype=cv2.CV_32F)
    else:
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        s, d = a + b, a - b
    c1, c2 = 2 * (0.01 * data_range) ** 2, 2 * (0.03 * data_range) ** 2
    # five buffers, reused in place (OpenCV's separable filter works in place): they stay in
    # the CPU cache, which is faster than a fresh array for every step
    ss, dd = cv2.multiply(s, s), cv2.multiply(d, d)
    for m in (s, d, ss, dd):
        _filter(m, dst=m)
    cv2.multiply(s, s, dst=s)  # mu_s^2
    cv2.multiply(d, d, dst=d)  # mu_d^2
    cv2.subtract(ss, s, dst=ss)  # var_s
    cv2.subtract(dd, d, dst=dd)  # var_d
    # (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
    # numerator and denominator both times 4
    num = cv2.addWeighted(s, 1.0, d, -1.0, c1)
    cv2.addWeighted(s, 1.0, d, 1.0, c1, dst=s)
    cv2.addWeighted(ss, 1.0, dd, -1.0, c2, dst=d)
    cv2.addWeighted(ss, 1.0, dd, 1.0, c2, dst=ss)
    cv2.multiply(num, d, dst=num)
    cv2.multiply(s, ss, dst=s)
    cv2.divide(num, s, dst=num)
    # skimage averages only where the window lies inside the image
    r = _SSIM_RADIUS
    inner = num[r:-r, r:-r]
    return float(np.mean(cv2.mean(inner)[:inner.shape[2] if inner.ndim == 3 else 1]))


def luma(image):
    """ITU-R BT.601 luma of an RGB image (0.299 R + 0.587 G + 0.114 B), as MATLAB's rgb2gray.

    uint8 in, uint8 out (rounded, as rgb2gray does); other types give float32. Wang et al.'s
    reference SSIM code scores this grey image.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.dtype == np.uint8:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2GRAY)


def gt_mean_align(restored, reference, data_range=255):
    """`restored` (float64) scaled so its mean luma equals `reference`'s, clipped to the range."""
    restored, reference = _check_pair(restored, reference)
    x, y = restored.astype(np.float64), reference.astype(np.float64)
    mean_x, mean_y = _luma_mean(x), _luma_mean(y)
    if mean_x <= 0:
        return np.zeros_like(x) + (mean_y if mean_y > 0 else 0.0)
    return np.clip(x * (mean_y / mean_x), 0, data_range)


def _luma_mean(image):
    if image.ndim == 3 and image.shape[2] >= 3:
        weights = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as cv2's RGB2GRAY
        return float(image[..., :3].reshape(-1, 3).mean(axis=0) @ weights)
    return float(image.mean())


def psnr_gt_mean(restored, reference, data_range=255):
    """PSNR after scaling `restored` to the mean brightness of `reference` (GT-mean PSNR)."""
    return psnr(gt_mean_align(restored, reference, data_range), reference.astype(np.float64),
                data_range)


def ssim_gt_mean(restored, reference, data_range=255):
    """SSIM after scaling `restored` to the mean brightness of `reference` (GT-mean SSIM)."""
    return ssim(gt_mean_align(restored, reference, data_range), reference.astype(np.float64),
                data_range)


def summarize(values):
    """{"mean", "min", "max", "std", "count"} of finite values (population std); None when empty."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if finite.size == 0:
        return {"mean": None, "min": None, "max": None, "std": None, "count": 0}
    return {"mean": float(finite.mean()), "min": float(finite.min()), "max": float(finite.max()),
            "std": float(finite.std()), "count": int(finite.size)}
