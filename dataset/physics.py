"""Physically based low-light synthesis: unprocess sRGB to RAW, add sensor noise, process back.

Pipeline (Brooks et al. 2019, "Unprocessing Images for Learned Raw Denoising", CVPR; noise model
of Wei et al. 2020, "A Physics-based Noise Formation Model for Extreme Low-light Raw Denoising"
(ELD), CVPR, as used for COCO-derived training data by Chen et al. 2023, "Instance Segmentation in
the Dark", IJCV):

1. Unprocess (Brooks et al.): inverse smoothstep tone curve, gamma expansion x^2.2,
   inverse colour correction (rgb2cam, a random convex combination of Brooks's four XYZ->camera
   matrices times sRGB->XYZ, rows normalised to sum 1), inverse white balance and digital gain
   with Brooks's highlight-preserving "safe" inversion, RGGB Bayer mosaic.
   Gains as in Brooks et al.: digital gain 1 / N(0.8, 0.1); red gain U(1.9, 2.4); blue gain
   U(1.5, 1.9).
2. Darken: the linear signal (scaled to the sensor's range above black, in DN) is divided by a
   ratio ~ U(10, 100) (`--ratio`; SID/ELD use x100-x300 exposure ratios on real captures).
3. Sensor noise (ELD), in DN of a 14-bit sensor (black 2048, white 16383):
   - shot noise: K * Poisson(signal / K), system gain K ~ log-uniform in [0.218, 3.0] DN/e-;
   - read noise: Gaussian, log(sigma_read) = 0.677 log K + 1.512 + N(0, 0.246^2);
   - row noise: one Gaussian offset per row, log(sigma_row) = 0.471 log K - 0.808
     + N(0, 0.244^2);
   - quantisation: rounding to whole DN (the ADC) and clipping to [0, white].
   The numbers are ELD's calibration of the Canon EOS 5D Mark IV ("Profile-1" parameter
   file; the 14-bit camera, black level 2048, that Chen et al. used for their LIS dataset), as
   distributed with ELD-style synthesis code; replace them with your own camera's calibration.
   ELD models read noise with a Tukey-lambda distribution for some sensors; the Gaussian variant
   is used here, as in ELD's "P+G" model.
   For a flat patch the variance is therefore linear in the signal:
   Var[raw - black] = K * signal + sigma_read^2 + sigma_row^2 + (about 1/12 from rounding).
4. Process back (Brooks et al.'s ISP, their process.py): white balance and digital gain on the
   mosaic, clip to [0, 1], bilinear demosaic (their border handling), cam2rgb =
   inverse(rgb2cam), clip, gamma compression x^(1/2.2), smoothstep tone curve. Brooks et al.
   re-apply only the red/blue gains; the digital gain is re-applied here too, so that the ratio
   alone sets the darkening: without noise and with ratio 1 this returns the input up to
   demosaicking (and rounding to 16-bit linear values, OpenCV's integer bilinear averages).

The noisy mosaic is what `--save_raw` writes as a DNG: ColorMatrix1 = diag(1 / wb) @ rgb2cam @
XYZ->sRGB (XYZ -> unbalanced camera space, so the D65 white maps to the AsShotNeutral 1 / wb).
No torch import: numpy and OpenCV only. Gaussian draws use OpenCV's generator (about 3x faster
than numpy's), seeded per image, so results do not depend on worker processes or order.
"""
import math

import cv2
import numpy as np

from torch_utils_lib.data.camera import SRGB_TO_XYZ

BLACK_LEVEL = 2048
WHITE_LEVEL = 16383
CFA_PATTERN = "RGGB"
RATIO_RANGE = (10.0, 100.0)
K_RANGE = (0.2181895124454343, 3.0)             # system gain, DN per electron
READ_NOISE_LINE = (0.6771267783987617, 1.5121876510805845, 0.24641096601611254)  # slope, bias, sigma
ROW_NOISE_LINE = (0.4712797750747537, -0.8078958947116487, 0.2436176299944695)
RGB_GAIN_MEAN_STD = (0.8, 0.1)                 # digital gain is 1 / N(0.8, 0.1)
RED_GAIN_RANGE = (1.9, 2.4)
BLUE_GAIN_RANGE = (1.5, 1.9)
HIGHLIGHT_INFLECTION = 0.9                      # Brooks's safe_invert_gains

# Brooks et al.'s XYZ -> camera matrices (their unprocess.py, four cameras)
XYZ_TO_CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]]])
RGB_TO_XYZ = SRGB_TO_XYZ  # linear sRGB (D65) -> XYZ

_DEMOSAIC = {"RGGB": cv2.COLOR_BayerBG2RGB, "BGGR": cv2.COLOR_BayerRG2RGB,
             "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB}
_LINEAR_INDEX_MAX = 65535  # processed linear values are quantised to 16 bits for the tone LUT


def _inverse_tone_lut():
    """uint8 sRGB value -> linear value: inverse smoothstep, then gamma expansion (Brooks)."""
    y = np.arange(256, dtype=np.float64) / 255.0
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)
    return np.maximum(x, 1e-8) ** 2.2


def _tone_lut():
    """16-bit linear value -> uint8 sRGB value: gamma compression, then smoothstep (Brooks)."""
    x = np.arange(_LINEAR_INDEX_MAX + 1, dtype=np.float64) / _LINEAR_INDEX_MAX
    g = np.maximum(x, 1e-8) ** (1 / 2.2)
    return np.clip(np.rint(255.0 * (3 * g * g - 2 * g * g * g)), 0, 255).astype(np.uint8)


INVERSE_TONE_LUT = _inverse_tone_lut().astype(np.float32)
TONE_LUT = _tone_lut()


def default_ranges():
    """The sampled ranges (written into synthesis.json so a run documents its model)."""
    return {"ratio": list(RATIO_RANGE), "K": list(K_RANGE), "read_noise_line": list(READ_NOISE_LINE),
            "row_noise_line": list(ROW_NOISE_LINE), "rgb_gain": "1 / N(0.8, 0.1)",
            "red_gain": list(RED_GAIN_RANGE), "blue_gain": list(BLUE_GAIN_RANGE),
            "black_level": BLACK_LEVEL, "white_level": WHITE_LEVEL, "cfa_pattern": CFA_PATTERN}


def draw_params(rng, ratio_range=RATIO_RANGE):
    """One image's camera, exposure and noise parameters from a numpy Generator."""
    weights = rng.uniform(1e-8, 1e8, size=len(XYZ_TO_CAMS))
    xyz_to_cam = np.tensordot(weights / weights.sum(), XYZ_TO_CAMS, axes=1)
    rgb_to_cam = xyz_to_cam @ RGB_TO_XYZ
    rgb_to_cam /= rgb_to_cam.sum(axis=1, keepdims=True)
    rgb_gain = 1.0 / rng.normal(*RGB_GAIN_MEAN_STD)
    red_gain, blue_gain = rng.uniform(*RED_GAIN_RANGE), rng.uniform(*BLUE_GAIN_RANGE)
    log_k = rng.uniform(math.log(K_RANGE[0]), math.log(K_RANGE[1]))
    slope, bias, sigma = READ_NOISE_LINE
    read_std = math.exp(slope * log_k + bias + rng.normal(0.0, sigma))
    slope, bias, sigma = ROW_NOISE_LINE
    row_std = math.exp(slope * log_k + bias + rng.normal(0.0, sigma))
    return {
        "ratio": float(rng.uniform(*ratio_range)),
        "K": math.exp(log_k),
        "read_std": read_std,
        "row_std": row_std,
        "rgb_gain": float(rgb_gain),
        "red_gain": float(red_gain),
        "blue_gain": float(blue_gain),
        "rgb_to_cam": rgb_to_cam.round(12).tolist(),
        "noise_seed": int(rng.integers(1, 2**31 - 1)),
    }


def wb_gains(params):
    """Per-channel gains the ISP applies in camera space (white balance times digital gain)."""
    return np.array([params["red_gain"], 1.0, params["blue_gain"]]) * params["rgb_gain"]


def unprocess(rgb, params):
    """uint8 sRGB HxWx3 -> linear camera RGB in [0, 1] (float32), before mosaicking."""
    linear = cv2.LUT(rgb, INVERSE_TONE_LUT)
    rgb_to_cam = np.asarray(params["rgb_to_cam"])
    gains = wb_gains(params)
    camera = cv2.transform(linear, (np.diag(1.0 / gains) @ rgb_to_cam).astype(np.float32))
    # Brooks's safe_invert_gains: pixels near white stay near saturation in the RAW, as a real
    # sensor's highlights would, instead of being dimmed by the inverse gains; only those
    # (usually few) pixels are recomputed.
    gray_weights = rgb_to_cam.mean(axis=0)[None].astype(np.float32)  # mean of rgb_to_cam @ x
    bright = cv2.transform(linear, gray_weights) > HIGHLIGHT_INFLECTION
    if bright.any():
        # cv2.transform rather than `@`: a BLAS thread pool would compete with the workers
        cam_ccm = cv2.transform(linear[bright][:, None], rgb_to_cam.astype(np.float32))[:, 0]
        gray = cam_ccm.mean(axis=1, keepdims=True)
        mask = (np.maximum(gray - HIGHLIGHT_INFLECTION, 0) / (1 - HIGHLIGHT_INFLECTION)) ** 2
        inverse = (1.0 / gains).astype(np.float32)
        camera[bright] = cam_ccm * np.maximum(mask + (1 - mask) * inverse, inverse)
    return camera


def mosaic(camera, pattern=CFA_PATTERN):
    """HxWx3 camera RGB -> HxW Bayer mosaic of the given 2x2 pattern."""
    bayer = np.empty(camera.shape[:2], camera.dtype)
    channel = {"R": 0, "G": 1, "B": 2}
    for k, letter in enumerate(pattern):
        i, j = divmod(k, 2)
        bayer[i::2, j::2] = camera[i::2, j::2, channel[letter]]
    return bayer


def expected_signal(rgb, params, pattern=CFA_PATTERN):
    """The noise-free mosaic of the darkened scene in DN above black (float32, HxW)."""
    signal_dn = mosaic(unprocess(rgb, params), pattern)
    signal_dn *= np.float32((WHITE_LEVEL - BLACK_LEVEL) / params["ratio"])
    return signal_dn


def mean_electrons(signal_dn, k):
    """The shot noise's Poisson rate: expected photo-electrons per pixel (float64, as numpy's
    sampler takes it) for a signal in DN and a system gain of k DN per electron."""
    return np.maximum(signal_dn, 0, dtype=np.float64) / k


def add_sensor_noise(signal_dn, params, rng, shot=True, read=True, row=True):
    """Noisy integer RAW (uint16, black level added) from the expected signal in DN above black.

    `rng` draws the Poisson shot noise (numpy); Gaussian read and row noise come from OpenCV's
    generator seeded with params["noise_seed"].
    """
    k = params["K"]
    if shot:
        electrons = rng.poisson(mean_electrons(signal_dn, k))
        noisy = np.multiply(electrons, np.float32(k), dtype=np.float32)
    else:
        noisy = signal_dn.astype(np.float32, copy=True)
    cv2.setRNGSeed(params["noise_seed"])
    gaussian = np.zeros_like(noisy)
    if read:
        cv2.randn(gaussian, 0.0, params["read_std"])
    if row:
        offsets = np.empty((noisy.shape[0], 1), np.float32)
        cv2.randn(offsets, 0.0, params["row_std"])
        noisy += offsets
    noisy += np.float32(BLACK_LEVEL)
    # the ADC: one saturating add rounds to whole DN and clips at 0; then clip at white
    raw = cv2.add(noisy, gaussian, dtype=cv2.CV_16U)
    return np.minimum(raw, WHITE_LEVEL, out=raw)


def _gained_mosaic(above_black, params, pattern):
    """White balance and digital gain on the mosaic, clipped to [0, 1] as 16-bit fixed point."""
    scale = _LINEAR_INDEX_MAX / (WHITE_LEVEL - BLACK_LEVEL)
    gains = wb_gains(params) * scale
    gained = np.empty(above_black.shape, np.float32)
    channel = {"R": 0, "G": 1, "B": 2}
    for k, letter in enumerate(pattern):
        i, j = divmod(k, 2)
        np.multiply(above_black[i::2, j::2], np.float32(gains[channel[letter]]), out=gained[i::2, j::2])
    np.minimum(gained, _LINEAR_INDEX_MAX, out=gained)
    gained += np.float32(0.5)  # values are >= 0: truncation after +0.5 rounds
    return gained.astype(np.uint16)


def demosaic(mosaic16, pattern=CFA_PATTERN):
    """Bilinear demosaic with Brooks et al.'s edges: their resize_bilinear-based demosaic clamps
    at the borders, which equals bilinear interpolation of the mosaic reflected about its
    outermost pixels (BORDER_REFLECT_101); OpenCV's own border rule differs in that frame."""
    padded = cv2.copyMakeBorder(mosaic16, 1, 1, 1, 1, cv2.BORDER_REFLECT_101)
    shifted = pattern[3] + pattern[2] + pattern[1] + pattern[0]  # the pattern one pixel up-left
    return cv2.cvtColor(padded, _DEMOSAIC[shifted])[1:-1, 1:-1]


def process(raw, params, pattern=CFA_PATTERN):
    """Noisy uint16 RAW mosaic (with black level) -> uint8 sRGB: the camera ISP of Brooks et al.

    As their process.py: gains on the mosaic, clip to [0, 1], bilinear demosaic, colour matrix,
    clip, gamma compression, smoothstep. Linear values are 16-bit fixed point (1 = 65535).
    """
    above_black = cv2.subtract(raw, np.full_like(raw, BLACK_LEVEL))  # saturates at 0
    camera = demosaic(_gained_mosaic(above_black, params, pattern), pattern)
    cam_to_rgb = np.linalg.inv(np.asarray(params["rgb_to_cam"]))
    # cv2.transform saturates to [0, 65535]: the clipping to [0, 1] after the colour matrix
    linear16 = cv2.transform(camera, cam_to_rgb)
    return np.take(TONE_LUT, linear16)


def synthesize(rgb, params, rng, pattern=CFA_PATTERN):
    """uint8 sRGB image -> (low-light uint8 sRGB, noisy uint16 RAW mosaic)."""
    raw = add_sensor_noise(expected_signal(rgb, params, pattern), params, rng)
    return process(raw, params, pattern), raw


XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)


def dng_color_matrix(params):
    """DNG ColorMatrix1 (XYZ -> unbalanced camera RGB) and AsShotNeutral for `params`."""
    white_balance = np.array([params["red_gain"], 1.0, params["blue_gain"]])
    matrix = np.diag(1.0 / white_balance) @ np.asarray(params["rgb_to_cam"]) @ XYZ_TO_RGB
    return matrix, 1.0 / white_balance
