"""Minimal DNG writer for Bayer mosaics that rawpy/LibRaw opens bit-exact (no torch import).

A DNG is a TIFF whose main image is the CFA mosaic (PhotometricInterpretation 32803) plus the
tags a raw converter needs: the 2x2 pattern (CFARepeatPatternDim 33421, CFAPattern 33422), black
and white levels (50714/50717), ColorMatrix1 (50721, XYZ -> camera under D65) and AsShotNeutral
(50728, the camera-space white). The CFA facts and the tag readers live in torch_utils_lib.data.camera.
"""
import io
from fractions import Fraction

import numpy as np
import tifffile

from genisp.sizes import MIN_RAW_SIZE
from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes
from torch_utils_lib.data.camera import CFA_CODE, cfa_index_pattern

_ILLUMINANT_D65 = 21
_RATIONAL_DENOMINATOR = 1_000_000  # ColorMatrix entries keep six decimals


def _srational(values):
    """Flatten floats to (numerator, denominator) pairs with a fixed denominator."""
    out = []
    for v in np.asarray(values, np.float64).ravel():
        out += [int(round(v * _RATIONAL_DENOMINATOR)), _RATIONAL_DENOMINATOR]
    return out


def _rational(values):
    out = []
    for v in np.asarray(values, np.float64).ravel():
        frac = Fraction(float(v)).limit_denominator(_RATIONAL_DENOMINATOR)
        out += [frac.numerator, frac.denominator]
    return out


def dng_bytes(bayer, cfa_pattern, black_level, white_level, color_matrix1, as_shot_neutral,
              camera_model="llvision synthetic"):
    """Encode a DNG in memory; see write_dng for the arguments."""
    bayer = np.asarray(bayer)
    if bayer.ndim != 2 or bayer.dtype != np.uint16:
        raise ValueError(f"bayer must be an HxW uint16 array, got {bayer.dtype} {bayer.shape}")
    if min(bayer.shape) < MIN_RAW_SIZE:
        raise ValueError(f"LibRaw refuses raw images under {MIN_RAW_SIZE} pixels a side, "
                         f"got {bayer.shape}")
    cfa_index_pattern(cfa_pattern)  # validates the name
    black = np.atleast_1d(np.asarray(black_level, np.int64)).ravel()
    if black.size not in (1, 4):
        raise ValueError("black_level must be one value or four (one per 2x2 CFA position)")
    color_matrix1 = np.asarray(color_matrix1, np.float64)
    if color_matrix1.shape != (3, 3):
        raise ValueError(f"color_matrix1 must be 3x3, got {color_matrix1.shape}")
    neutral = np.asarray(as_shot_neutral, np.float64).ravel()
    if neutral.size != 3 or not np.all(neutral > 0):
        raise ValueError("as_shot_neutral must be three positive values")
    black_dim = (2, 2) if black.size == 4 else (1, 1)
    cfa_codes = bytes(CFA_CODE[c] for c in cfa_pattern)
    # (code, dtype, count, value): SHORT=3, LONG=4, RATIONAL=5, BYTE=1, SRATIONAL=10, ASCII=2
    height, width = bayer.shape
    if height % 2 or width % 2:
        # a CFA image has whole 2x2 tiles: pad by edge replication and let ActiveArea
        # (top, left, bottom, right) tell LibRaw the visible size (raw_image_visible == bayer)
        bayer = np.pad(bayer, ((0, height % 2), (0, width % 2)), mode="edge")
    tags = [
        (33421, 3, 2, (2, 2), True),                           # CFARepeatPatternDim
        (33422, 1, 4, cfa_codes, True),                        # CFAPattern
        (50706, 1, 4, bytes((1, 4, 0, 0)), True),              # DNGVersion 1.4
        (50707, 1, 4, bytes((1, 1, 0, 0)), True),              # DNGBackwardVersion
        (50708, 2, 0, camera_model, True),                     # UniqueCameraModel
        (50710, 1, 3, bytes((0, 1, 2)), True),                 # CFAPlaneColor: R, G, B
        (50711, 3, 1, 1, True),                                # CFALayout: rectangular
        (50713, 3, 2, black_dim, True),                        # BlackLevelRepeatDim
        (50714, 4, black.size, tuple(int(b) for b in black), True),  # BlackLevel
        (50717, 4, 1, int(white_level), True),                 # WhiteLevel
        (50721, 10, 9, _srational(color_matrix1), True),       # ColorMatrix1
        (50728, 5, 3, _rational(neutral), True),               # AsShotNeutral
        (50778, 3, 1, _ILLUMINANT_D65, True),                  # CalibrationIlluminant1
    ]
    if bayer.shape != (height, width):
        tags.append((50829, 4, 4, (0, 0, height, width), True))  # ActiveArea
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, bayer, photometric=32803, subfiletype=0, compression=None,
                     planarconfig="contig", metadata=None, software=False,
                     extratags=[(271, 2, 0, "llvision", True), (272, 2, 0, camera_model, True),
                                *tags])
    return buffer.getvalue()


def write_dng(path, bayer, cfa_pattern, black_level, white_level, color_matrix1,
              as_shot_neutral, camera_model="llvision synthetic"):
    """Write a Bayer mosaic as a DNG atomically.

    bayer: HxW uint16 mosaic (odd sizes are padded to whole 2x2 tiles and cropped back through
    ActiveArea, so rawpy's raw_image_visible is exactly `bayer`); cfa_pattern: 'RGGB' | 'BGGR' | 'GRBG' | 'GBRG' (top-left 2x2, row
    major); black_level: one int or four, in the same 2x2 row-major order as the pattern;
    white_level: saturation value; color_matrix1: 3x3 XYZ -> camera (DNG ColorMatrix1, D65);
    as_shot_neutral: camera-space RGB of a neutral (white-balance reciprocals).
    rawpy then reports raw_pattern == cfa_index_pattern(cfa_pattern) and
    black_level_per_channel[raw_pattern[i, j]] == black_level[2 * i + j].
    """
    atomic_write_bytes(path, dng_bytes(bayer, cfa_pattern, black_level, white_level,
                                       color_matrix1, as_shot_neutral, camera_model))
    return path
