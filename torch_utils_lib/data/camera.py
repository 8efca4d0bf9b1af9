"""Camera RAW facts shared by the DNG writer and the RAW reader (no torch import).

Bayer CFA patterns and LibRaw's colour-index numbering, the sRGB -> XYZ matrix, and reading a
DNG's rational colour tags (ColorMatrix1 50721, AsShotNeutral 50728) back with tifffile: LibRaw
leaves `rgb_xyz_matrix` zero for cameras it does not know, so the tag is read directly.
"""
import numpy as np
import tifffile

from torch_utils_lib.toolkit.errors import UserError

CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")  # the 2x2 Bayer patterns, top-left, row major
CFA_CODE = {"R": 0, "G": 1, "B": 2}  # TIFF/EP CFAPattern colour codes
# IEC 61966-2-1 linear sRGB -> XYZ (D65).
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
TAG_COLOR_MATRIX1 = 50721
TAG_AS_SHOT_NEUTRAL = 50728


def check_cfa_pattern(cfa_pattern):
    """ValueError unless `cfa_pattern` is one of CFA_PATTERNS."""
    if cfa_pattern not in CFA_PATTERNS:
        raise ValueError(f"cfa_pattern must be one of {CFA_PATTERNS}, not {cfa_pattern!r}")
    return cfa_pattern


def green_on_red_row(cfa_pattern, row):
    """True when the green at `row` (0 or 1) of the 2x2 tile shares its row with red."""
    return row == check_cfa_pattern(cfa_pattern).index("R") // 2


def cfa_index_pattern(cfa_pattern):
    """The 2x2 colour-index pattern rawpy reports as `raw_pattern` for `cfa_pattern`.

    LibRaw numbers R=0, G=1, B=2 and gives the green that shares a row with red the index 1 and
    the other green 3 (so BGGR is [[2, 3], [1, 0]]).
    """
    check_cfa_pattern(cfa_pattern)
    indices = np.zeros((2, 2), np.uint8)
    for k, letter in enumerate(cfa_pattern):
        i, j = divmod(k, 2)
        if letter == "G":
            indices[i, j] = 1 if green_on_red_row(cfa_pattern, i) else 3
        else:
            indices[i, j] = CFA_CODE[letter]
    return indices


def read_dng_tag(path, tag_id, name):
    """A DNG tag's raw values as a flat float64 array (rationals as numerator, denominator pairs).

    The first page holding the tag is used. UserError when the file is unreadable or no page
    holds the tag.
    """
    try:
        with tifffile.TiffFile(path) as tif:
            for page in tif.pages:
                tag = page.tags.get(tag_id)
                if tag is not None:
                    value = np.asarray(tag.value, np.float64).ravel()
                    break
            else:
                raise UserError(f"{path}: DNG has no {name} tag")
    except (OSError, ValueError, tifffile.TiffFileError) as e:
        raise UserError(f"{path}: cannot read DNG ({e})") from None
    return value


def read_dng_color_matrix(path):
    """ColorMatrix1 (XYZ -> camera) of a DNG as a 3x3 float64 array; UserError if absent."""
    value = read_dng_tag(path, TAG_COLOR_MATRIX1, "ColorMatrix1")
    if value.size == 18:  # (numerator, denominator) pairs
        value = value[0::2] / value[1::2]
    if value.size != 9:
        raise UserError(f"{path}: ColorMatrix1 has {value.size} values, expected 9")
    return value.reshape(3, 3)


def read_dng_as_shot_neutral(path):
    """AsShotNeutral of a DNG as three floats; UserError if absent."""
    value = read_dng_tag(path, TAG_AS_SHOT_NEUTRAL, "AsShotNeutral")
    if value.size == 6:  # (numerator, denominator) pairs
        value = value[0::2] / value[1::2]
    return value
