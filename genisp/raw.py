"""GenISP's minimal pre-processing of camera RAW, with an on-disk cache (no torch import).

Any Bayer RAW that LibRaw reads (ARW, NEF, CR2, DNG, ...) becomes a float32 HxWx3 array at half
the sensor resolution: the visible mosaic minus per-channel black levels, divided by the white
level, packed by its real CFA pattern, the two greens averaged, then mapped from camera RGB to
CIE XYZ with the camera's own matrix (Morawski et al. 2022, section 3.1).

Colour matrix, in order of preference:
1. LibRaw's `rgb_xyz_matrix[:3]` (Adobe's XYZ -> camera matrix), inverted;
2. a DNG's ColorMatrix1 tag, which LibRaw ignores for cameras it does not know (every DNG this
   project writes);
3. LibRaw's `color_matrix` (camera -> sRGB), composed with sRGB -> XYZ;
4. identity, with a warning (some cameras have no matrix at all, e.g. the Kodak DC50).
The camera -> XYZ matrix is normalised so that camera white (1, 1, 1) maps to XYZ (1, 1, 1): the
value range stays [0, 1] and the exposure is not changed by the colour transform.
"""
import hashlib
import json
import os
import warnings

import cv2
import numpy as np

from torch_utils_lib.toolkit.guards import require_file
from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes
from torch_utils_lib.data.camera import (CFA_PATTERNS, SRGB_TO_XYZ, green_on_red_row,
                                    read_dng_color_matrix)
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.image_io import list_files

RAW_EXTENSIONS = (".arw", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".dng", ".raf", ".orf", ".rw2",
                  ".pef", ".srw", ".kdc", ".dcr", ".mrw", ".3fr", ".erf", ".mef", ".mos", ".x3f",
                  ".iiq", ".rwl", ".srf", ".sr2")
BAYER_PATTERNS = CFA_PATTERNS
# Bump when the pre-processing changes, so stale cache entries are never read.
CACHE_VERSION = 2


class RawWarning(UserWarning):
    """A RAW file was processed with a fallback (for example no colour matrix)."""


def list_raw_files(raw_dir):
    """Sorted names of the RAW files directly inside `raw_dir`."""
    return list_files(raw_dir, RAW_EXTENSIONS, "RAW directory")


# ---------------------------------------------------------------- reading

def open_raw(path):
    import rawpy  # imported where a RAW is read (here and below): the rest needs no LibRaw
    require_file(path, "RAW file")
    try:
        return rawpy.imread(path)
    except (rawpy.LibRawError, rawpy.NotSupportedError, OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read as camera RAW ({type(e).__name__}: {e})") from None


def cfa_pattern_name(raw_pattern, color_desc, path=""):
    """'RGGB' | 'BGGR' | 'GRBG' | 'GBRG' from LibRaw's pattern of colour indices; UserError otherwise."""
    pattern = np.asarray(raw_pattern)
    if pattern.shape != (2, 2):
        kind = "X-Trans" if pattern.shape == (6, 6) else f"{pattern.shape[0]}x{pattern.shape[1]}"
        raise UserError(f"{path}: non-Bayer sensor ({kind} colour filter array); "
                        "GenISP needs a 2x2 Bayer mosaic")
    letters = color_desc.decode("ascii", "replace") if isinstance(color_desc, bytes) else color_desc
    name = "".join(letters[int(i)] for i in pattern.ravel())
    if name not in BAYER_PATTERNS:
        raise UserError(f"{path}: unsupported colour filter array {name} "
                        f"(colours {letters}); expected one of {', '.join(BAYER_PATTERNS)}")
    return name


def normalise_camera_to_xyz(camera_to_xyz):
    """Scale each row so camera white (1, 1, 1) maps to XYZ (1, 1, 1)."""
    m = np.asarray(camera_to_xyz, np.float64)
    sums = m.sum(axis=1, keepdims=True)
    if np.any(np.abs(sums) < 1e-8):
        raise np.linalg.LinAlgError("a row of the colour matrix sums to zero")
    return m / sums


def _dng_color_matrix(path):
    """ColorMatrix1 (XYZ -> camera) of a DNG, or None when absent or unreadable."""
    try:
        return read_dng_color_matrix(path)
    except UserError:
        return None


def camera_to_xyz_matrix(raw, path=""):
    """(3x3 camera RGB -> XYZ matrix, where it came from); see the module docstring for the order."""
    candidates = []
    xyz_to_cam = np.asarray(raw.rgb_xyz_matrix, np.float64)[:3]
    if np.any(xyz_to_cam):
        candidates.append(("rgb_xyz_matrix", lambda: np.linalg.inv(xyz_to_cam)))
    if path.lower().endswith(".dng"):
        tag = _dng_color_matrix(path)
        if tag is not None and np.any(tag):
            candidates.append(("DNG ColorMatrix1", lambda: np.linalg.inv(tag)))
    cam_to_srgb = np.asarray(raw.color_matrix, np.float64)[:3, :3]
    if np.any(cam_to_srgb):
        candidates.append(("color_matrix", lambda: SRGB_TO_XYZ @ cam_to_srgb))
    for source, compute in candidates:
        try:
            matrix = normalise_camera_to_xyz(compute())
        except np.linalg.LinAlgError:
            continue
        if np.all(np.isfinite(matrix)):
            return matrix, source
    warnings.warn(f"{path}: camera has no usable colour matrix; using identity (camera RGB "
                  "stands in for XYZ)", RawWarning, stacklevel=2)
    return np.eye(3), "identity"


def read_bayer(path):
    """The visible mosaic of a Bayer RAW, normalised to [0, 1], with what is needed to pack it.

    Returns a dict: mosaic (float32 HxW, H and W even), pattern ('RGGB', ...), camera_to_xyz
    (3x3), matrix_source, black (2x2 per CFA position), white, flip (LibRaw's orientation code).
    """
    import rawpy  # only where a RAW file is decoded (open_raw reports its absence)
    raw = open_raw(path)
    with raw:
        try:
            if raw.raw_type != rawpy.RawType.Flat:
                raise UserError(f"{path}: non-Bayer sensor (one full-colour value per pixel, "
                                "e.g. Foveon or a linear DNG); GenISP needs a Bayer mosaic")
            pattern_indices = np.asarray(raw.raw_pattern)
            pattern = cfa_pattern_name(pattern_indices, raw.color_desc, path)
            mosaic = np.array(raw.raw_image_visible, dtype=np.float32)
            black_per_colour = np.asarray(raw.black_level_per_channel, np.float32)
            black = black_per_colour[pattern_indices]
            white = float(raw.white_level)
            camera_to_xyz, source = camera_to_xyz_matrix(raw, path)
            flip = int(raw.sizes.flip)
        except (rawpy.LibRawError, rawpy.NotSupportedError) as e:
            raise UserError(f"{path}: cannot decode RAW ({type(e).__name__}: {e})") from None
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    if h < 2 or w < 2:
        raise UserError(f"{path}: RAW image is too small ({mosaic.shape[1]}x{mosaic.shape[0]})")
    mosaic = mosaic[:h, :w]
    if white <= black.max():
        raise UserError(f"{path}: white level {white:g} is not above the black level {black.max():g}")
    # Per-position black and range, tiled over the mosaic: the 2x2 pattern repeats everywhere.
    scale = 1.0 / (white - black)
    mosaic = (mosaic - np.tile(black, (h // 2, w // 2))) * np.tile(scale, (h // 2, w // 2))
    np.clip(mosaic, 0.0, 1.0, out=mosaic)
    return {"mosaic": mosaic, "pattern": pattern, "camera_to_xyz": camera_to_xyz,
            "matrix_source": source, "black": black, "white": white, "flip": flip}


# ---------------------------------------------------------------- the minimal pipeline

def pack_bayer(mosaic, pattern):
    """HxW mosaic -> (H/2)x(W/2)x4 in R, G1, G2, B order, whatever the CFA pattern.

    G1 is the green on the red row; G2 the green on the blue row.
    """
    if pattern not in BAYER_PATTERNS:
        raise ValueError(f"pattern must be one of {BAYER_PATTERNS}, not {pattern!r}")
    planes = {}
    for (i, j), letter in zip(((0, 0), (0, 1), (1, 0), (1, 1)), pattern):
        if letter == "G":
            letter = "G1" if green_on_red_row(pattern, i) else "G2"
        planes[letter] = mosaic[i::2, j::2]
    return np.stack([planes["R"], planes["G1"], planes["G2"], planes["B"]], axis=-1)


def average_greens(packed):
    """(H)x(W)x4 R, G1, G2, B -> HxWx3 camera RGB."""
    return np.stack([packed[..., 0], 0.5 * (packed[..., 1] + packed[..., 2]), packed[..., 3]],
                    axis=-1)


def apply_color_matrix(rgb, matrix):
    """Per-pixel 3x3 colour transform of an HxWx3 array."""
    return np.einsum("ij,hwj->hwi", np.asarray(matrix, np.float32), rgb, optimize=True)


def apply_flip(image, flip):
    """Rotate as LibRaw's orientation code says (0: none, 3: 180, 5: 90 CCW, 6: 90 CW)."""
    if flip == 3:
        return image[::-1, ::-1]
    if flip == 5:
        return np.rot90(image, 1)
    if flip == 6:
        return np.rot90(image, -1)
    return image


def fit_size(height, width, resize):
    """(h, w) scaled to fit `resize` = (long, short) keeping aspect; `resize` None keeps it."""
    if not resize:
        return height, width
    long_side, short_side = resize
    scale = min(long_side / max(height, width), short_side / min(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def resize_image(image, size):
    """Resize HxWxC float32 to `size` (h, w): area averaging down, bilinear up."""
    h, w = size
    if (h, w) == image.shape[:2]:
        return image
    shrink = h < image.shape[0] and w < image.shape[1]
    return cv2.resize(np.ascontiguousarray(image), (w, h),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def preprocess_raw(path, resize=None):
    """GenISP's minimal pipeline: RAW file -> float32 HxWx3 XYZ in [0, 1] at half resolution.

    Returns (image, info) where info has the sensor size after orientation (`raw_size` (h, w)),
    the CFA `pattern` and the colour `matrix_source`. `resize` = (long, short) fits the result in
    that box (the training recipe's 1333x800), which also keeps the cache small.
    """
    bayer = read_bayer(path)
    rgb = average_greens(pack_bayer(bayer["mosaic"], bayer["pattern"]))
    xyz = np.clip(apply_color_matrix(rgb, bayer["camera_to_xyz"]), 0.0, 1.0)
    xyz = np.ascontiguousarray(apply_flip(xyz, bayer["flip"]), dtype=np.float32)
    raw_h, raw_w = bayer["mosaic"].shape
    raw_size = (raw_w, raw_h) if bayer["flip"] in (5, 6) else (raw_h, raw_w)
    xyz = resize_image(xyz, fit_size(*xyz.shape[:2], resize))
    return xyz, {"raw_size": raw_size, "pattern": bayer["pattern"],
                 "matrix_source": bayer["matrix_source"]}


# ---------------------------------------------------------------- the cache

_ENTRY_MAGIC = b"llvision-raw-cache\n"


def float16_to_float32(array):
    """Exact float16 -> float32 of finite, non-negative values, faster than numpy's astype.

    Shifting the 15 exponent-and-mantissa bits into float32 position leaves the exponent bias
    112 short; multiplying by 2**112 restores it exactly (half subnormals included). Arrays with
    a sign bit set go through numpy's conversion.
    """
    bits = np.ascontiguousarray(array).view(np.uint16)
    if bits.size and bits.max() >= 0x8000:
        return bits.view(np.float16).astype(np.float32)
    out = bits.astype(np.uint32)
    out <<= 13
    values = out.view(np.float32)
    values *= np.float32(2.0 ** 112)
    return values


def encode_entry(image16, info):
    """A cache entry: magic line, header length, JSON header (shape, info), float16 pixels."""
    header = json.dumps({"shape": list(image16.shape), "info": info}).encode()
    return (_ENTRY_MAGIC + len(header).to_bytes(8, "little") + header
            + np.ascontiguousarray(image16, np.float16).tobytes())


def read_entry(path):
    """(float32 image, info) of a cache entry file; ValueError when it is damaged."""
    with open(path, "rb") as f:
        if f.read(len(_ENTRY_MAGIC)) != _ENTRY_MAGIC:
            raise ValueError("not a cache entry")
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        shape = tuple(header["shape"])
        pixels = np.empty(int(np.prod(shape)), np.uint16)
        if f.readinto(pixels) != pixels.nbytes or f.read(1):
            raise ValueError("cache entry has the wrong size")
    return float16_to_float32(pixels).reshape(shape), header["info"]


class RawLoader:
    """`loader(path)` for CocoDetection: the pre-processed RAW, from a disk cache when it can.

    Entries are keyed by the file's real path, size and modification time (nanoseconds) and the
    settings, so an edited, replaced or touched file or a changed `resize` never reads a stale
    entry, and finding one costs a stat, not a read of the RAW. Pixels are stored as float16
    (half the disk; the rounding is far below sensor noise) and every call returns the
    float16-rounded values, cached or not, so a cached epoch sees exactly the same input as the
    first one. cache_dir=None: no cache.
    """

    def __init__(self, cache_dir=None, resize=None):
        self.cache_dir = cache_dir
        self.resize = tuple(resize) if resize else None
        self.hits = self.misses = 0

    def settings(self):
        return {"version": CACHE_VERSION, "resize": self.resize, "dtype": "float16"}

    def cache_key(self, path):
        """What an entry depends on: the file's identity and state, and the settings."""
        stat = os.stat(path)
        return {"path": os.path.realpath(path), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, **self.settings()}

    def cache_path(self, path):
        key = json.dumps(self.cache_key(path), sort_keys=True).encode()
        name = hashlib.sha256(key).hexdigest()
        return os.path.join(self.cache_dir, name[:2], name + ".bin")

    def process(self, path):
        """Decode and pre-process one file (no cache)."""
        return preprocess_raw(path, self.resize)

    def load(self, path):
        """(float32 HxWx3 image, info dict) of one RAW file."""
        require_file(path, "RAW file")
        entry = self.cache_path(path) if self.cache_dir else None
        if entry and os.path.isfile(entry):
            try:
                image, info = read_entry(entry)
                info["raw_size"] = tuple(info["raw_size"])
                self.hits += 1
                return image, info
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is rebuilt below
        image, info = self.process(path)
        image16 = image.astype(np.float16)
        self.misses += 1
        if entry:
            atomic_write_bytes(entry, encode_entry(image16, info))
        return float16_to_float32(image16), info

    def __call__(self, path):
        return self.load(path)[0]
