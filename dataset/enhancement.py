"""Classical low-light enhancement, no training: the baselines a learned remedy has to beat.

- gamma: out = 255 (in / 255) ^ g per channel, g chosen per image (bisection) so that the output's
  mean luma (BT.601, as image_metrics.luma) equals a target, the normal-light train set's mean luma.
- clahe: OpenCV CLAHE on the L channel of Lab (contrast-limited adaptive equalisation; a and b
  keep the colour).
- histeq: global histogram equalisation of the luma (Y of YCrCb), chroma kept. Equalising each
  channel separately would stretch R, G and B independently and shift the colour balance.
Torch-free.
"""
import math
import os

import cv2
import numpy as np

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import check_outputs_apart
from torch_utils_lib.data.image_io import read_rgb, write_image
from torch_utils_lib.evaluation.image_metrics import luma

METHODS = ("gamma", "clahe", "histeq")
GAMMA_RANGE = (1 / 20, 20.0)  # exponents searched; a black image ends at the brightest (1/20)


def mean_luma(rgb):
    """Mean BT.601 luma of an RGB uint8 image, 0..255."""
    return float(luma(rgb).mean())


def apply_gamma(rgb, gamma):
    table = np.round(255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
    return cv2.LUT(rgb, table)


def gamma_for_mean_luma(rgb, target, iterations=40):
    """The exponent g whose output has mean luma `target` (0..255), by bisection on log g."""
    low, high = math.log(GAMMA_RANGE[0]), math.log(GAMMA_RANGE[1])  # mean luma falls as g grows
    for _ in range(iterations):
        middle = (low + high) / 2
        if mean_luma(apply_gamma(rgb, math.exp(middle))) > target:
            low = middle
        else:
            high = middle
    return math.exp((low + high) / 2)


def clahe(rgb, clip_limit=2.0, tile_grid=8):
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    equaliser = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile_grid, tile_grid))
    lab[..., 0] = equaliser.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def histeq(rgb):
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    ycrcb[..., 0] = cv2.equalizeHist(np.ascontiguousarray(ycrcb[..., 0]))
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


def enhance(rgb, method, target_luma=None, clip_limit=2.0):
    """(enhanced RGB uint8, record of what was done) of one image."""
    if method == "gamma":
        if target_luma is None:
            raise UserError("gamma enhancement needs a target mean luma (--target_luma or "
                            "--reference_dir)")
        gamma = gamma_for_mean_luma(rgb, target_luma)
        out = apply_gamma(rgb, gamma)
        return out, {"gamma": gamma, "mean_luma": mean_luma(out)}
    if method == "clahe":
        return clahe(rgb, clip_limit), {}
    if method == "histeq":
        return histeq(rgb), {}
    raise UserError(f"--method {method}: choose one of {', '.join(METHODS)}")


def folder_mean_luma(image_dir, names):
    """Mean over images of each image's mean luma (every image counts once, whatever its size)."""
    if not names:
        raise UserError(f"{image_dir}: no images to measure")
    return float(np.mean([mean_luma(read_rgb(os.path.join(image_dir, n))) for n in names]))


def check_output_dir(input_dir, output_dir, names, reads=None):
    """UserError (guards.check_outputs_apart) when an enhanced image would be written where an
    input is: the folders and each listed image, in and out. `reads`: further {flag: path}
    read (the reference set)."""
    check_outputs_apart(
        {"--input_dir": input_dir, "--input_dir (an --annotation entry)":
            [os.path.join(input_dir, n) for n in names], **(reads or {})},
        {"--output_dir": output_dir, "--output_dir (with an --annotation entry)":
            [os.path.join(output_dir, n) for n in names]})


def enhance_folder(input_dir, output_dir, names, method, target_luma=None, clip_limit=2.0,
                   progress=None):
    """Enhance `names` (relative paths) of `input_dir` into `output_dir` under the same names,
    each written atomically; returns {name: record}."""
    check_output_dir(input_dir, output_dir, names)
    records = {}
    for name in names:
        rgb = read_rgb(os.path.join(input_dir, name))
        out, record = enhance(rgb, method, target_luma, clip_limit)
        write_image(os.path.join(output_dir, name), out)
        records[name] = record
        if progress is not None:
            progress.update()
    return records
