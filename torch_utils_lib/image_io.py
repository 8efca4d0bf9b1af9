"""Image reading and atomic writing shared by every script (no torch import).

`read_rgb` is the one place where images enter the toolkit: grayscale, RGBA, palette, CMYK and
16-bit files become 8-bit RGB, EXIF orientation is applied, and an unreadable or truncated file
raises a UserError naming it.
"""
import os

import cv2
import numpy as np
from PIL import Image, ImageOps

from torch_utils_lib.cli import UserError
from torch_utils_lib.runinfo import atomic_write_bytes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(image_dir):
    """Sorted file names of the images directly inside `image_dir`."""
    if not os.path.isdir(image_dir):
        raise UserError(f"{image_dir}: image directory not found")
    return sorted(f for f in os.listdir(image_dir) if f.lower().endswith(IMAGE_EXTENSIONS))


def _to_uint8(array):
    """Scale a high-bit-depth array to 8 bits by its type's range (16-bit: divide by 257)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    top = 65535 if array.max(initial=0) > 255 or array.dtype == np.uint16 else 255
    return np.clip(np.rint(array.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def read_rgb(path):
    """Read `path` as an HxWx3 uint8 RGB array, orientation applied; UserError if unreadable."""
    try:
        with Image.open(path) as img:
            img.load()  # decodes fully: a truncated file fails here, not later
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                gray = _to_uint8(np.asarray(img))
                return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
            rgb = np.array(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: cannot read image ({e})") from None
    return np.ascontiguousarray(rgb)


def encode_image(rgb, ext, jpeg_quality=95):
    """Encode an HxWx3 uint8 RGB array in the format named by `ext` ('.png', '.jpg', ...)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise UserError(f"cannot encode an image as {ext}")
    return buf.tobytes()


def write_image(path, rgb, jpeg_quality=95):
    """Write an RGB uint8 image atomically: a killed run never leaves half a file at `path`."""
    atomic_write_bytes(path, encode_image(rgb, os.path.splitext(path)[1], jpeg_quality))
