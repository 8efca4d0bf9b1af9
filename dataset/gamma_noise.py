"""The seed's low-light synthesis: a random gamma darkens, additive Gaussian noise, clipping.

Per image: gamma ~ U(3, 8) (`--gamma`), out = 255 * (x / 255) ** gamma; then Gaussian noise of
variance ~ U(0.001, 0.01) (`--noise_var`) on the [-1, 1] scale the seed normalised to, i.e. a
standard deviation of sqrt(var) * 127.5 on the 0..255 scale (4.0 to 12.7 levels); then rounding
and clipping to uint8. Unlike the seed, the darkened image is not rounded to 8 bits and re-read
before the noise is added: one pass, no intermediate file.

Fast path: the gamma curve is a 256-entry lookup table, the noise comes from OpenCV's
generator (seeded per image, so results do not depend on worker processes), and one saturating
cv2.add does the sum, rounding and clipping. No torch import.
"""
import math

import cv2
import numpy as np

GAMMA_RANGE = (3.0, 8.0)
NOISE_VAR_RANGE = (0.001, 0.01)
HALF_RANGE = 127.5  # [-1, 1] <-> [0, 255]


def draw_params(rng, gamma_range=GAMMA_RANGE, noise_var_range=NOISE_VAR_RANGE):
    """One image's gamma, noise variance and OpenCV noise seed from a numpy Generator."""
    return {"gamma": float(rng.uniform(*gamma_range)),
            "noise_var": float(rng.uniform(*noise_var_range)),
            "noise_seed": int(rng.integers(1, 2**31 - 1))}


def gamma_lut(gamma):
    """256-entry float32 table of 255 * (x / 255) ** gamma."""
    return (255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.float32)


_scratch = np.empty(0, np.float32)


def _noise_array(shape):
    """A float32 scratch array of `shape`, reused from image to image: a fresh 4 MB array per
    640x480 image costs about a millisecond of page faults, a third of the noise draw itself."""
    global _scratch
    size = math.prod(shape)
    if _scratch.size < size:
        _scratch = np.empty(size, np.float32)
    return _scratch[:size].reshape(shape)


def synthesize(rgb, params):
    """uint8 HxWx3 sRGB -> uint8 low-light image: gamma darkening plus clipped Gaussian noise."""
    dark = cv2.LUT(rgb, gamma_lut(params["gamma"]))
    noise = _noise_array(rgb.shape)
    cv2.setRNGSeed(params["noise_seed"])
    # a single-channel view: cv2.randn takes a per-channel std and would leave channels 2-3 clean
    cv2.randn(noise.reshape(rgb.shape[0], -1), 0.0, math.sqrt(params["noise_var"]) * HALF_RANGE)
    return cv2.add(dark, noise, dtype=cv2.CV_8U)
