"""Image reading and atomic writing shared by every script (no torch import).

`read_rgb` is the one place where images enter the toolkit: grayscale, RGBA, palette, CMYK and
16-bit files become 8-bit RGB, and an unreadable or truncated file raises a UserError naming it.
Pixels are returned as stored: an EXIF orientation tag is ignored, because COCO's and ExDark's
boxes (and every mask) refer to the stored pixels, as pycocotools and torchvision read them
(cv2.IMREAD_IGNORE_ORIENTATION); files that carry a rotation are counted and said once per run. Complete 8-bit grey/colour JPEGs take a faster OpenCV path that
gives the same pixels as PIL (both use libjpeg-turbo); everything else goes through PIL.
"""
import io
import multiprocessing
import os
import stat
import sys

import cv2
import numpy as np
from PIL import Image

from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes, read_json
from torch_utils_lib.toolkit.errors import UserError, at_end_of_run
from torch_utils_lib.data.coco_json import validate_coco
from torch_utils_lib.toolkit.guards import require_dir

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_files(directory, extensions, what="image directory"):
    """Sorted names of the regular files directly inside `directory` ending in `extensions`.

    Only regular files count (reading a FIFO or device named *.png would block forever).
    Names that are not valid UTF-8 (undecodable bytes on a POSIX file system) cannot be written
    to JSON, hashed or printed: they are skipped with one warning.
    """
    require_dir(directory, what)
    names, undecodable = [], []
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.lower().endswith(extensions) or not entry.is_file():
                continue
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                undecodable.append(entry.name)
                continue
            names.append(entry.name)
    if undecodable:
        example = undecodable[0].encode("utf-8", "backslashreplace").decode()
        print(f"warning: {directory}: skipped {len(undecodable)} file(s) whose names are not "
              f"valid UTF-8 (e.g. {example}); rename them to use them", file=sys.stderr)
    return sorted(names)


def list_images(image_dir):
    """Sorted file names of the images (regular files) directly inside `image_dir`."""
    return list_files(image_dir, IMAGE_EXTENSIONS)


def annotation_file_names(path):
    """File names listed by a `{"filename": [...]}` JSON, a COCO json, or a JSON list of names."""
    data = read_json(path, "annotation file")
    if isinstance(data, dict) and "images" in data:
        names = [image["file_name"] for image in validate_coco(data, path)["images"]]
    elif isinstance(data, dict) and isinstance(data.get("filename"), list):
        names = data["filename"]
    elif isinstance(data, list):
        names = data
    else:
        raise UserError(f"{path}: expected a COCO json, {{\"filename\": [...]}} or a list of names")
    if not all(isinstance(n, str) and n for n in names):
        raise UserError(f"{path}: every listed image needs a file name string")
    if not names:
        raise UserError(f"{path}: lists no images")
    return names


def _to_uint8(array):
    """Scale a high-bit-depth array to 8 bits by its type's range (16-bit: divide by 257)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    top = 65535 if array.max(initial=0) > 255 or array.dtype == np.uint16 else 255
    return np.clip(np.rint(array.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def _jpeg_components(data):
    """Colour components of a complete baseline/progressive JPEG, or None to use the slow path.

    Complete means the file ends with the EOI marker: a truncated JPEG is left to PIL, which
    refuses it (OpenCV would fill the missing rows with grey and only warn).
    """
    if data[:2] != b"\xff\xd8" or data.rstrip(b"\x00\r\n")[-2:] != b"\xff\xd9":
        return None
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):  # baseline, extended, progressive Huffman
            return data[pos + 9] if pos + 10 <= end else None
        if 0xC3 <= marker <= 0xCF or marker == 0xDA:  # lossless/arithmetic, or scan before SOF
            return None
        pos += 2 + length
    return None


EXIF_ORIENTATION = 0x0112  # 1 (or absent): as stored; 2-8: flips and rotations on display
_ROTATED = {}  # path -> orientation of the files read by this process that carry a rotation


def _exif_orientation(data, img=None):
    """The EXIF orientation of an image file (1 when it has none)."""
    try:
        if img is not None:
            return int(img.getexif().get(EXIF_ORIENTATION, 1))
        if b"Exif" not in data[:1 << 16]:  # a JPEG's EXIF lies in an APP1 segment near the start
            return 1
        with Image.open(io.BytesIO(data)) as opened:
            return int(opened.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # an unreadable EXIF block: the pixels are what counts
        return 1


def _note_orientation(path, orientation):
    """Count a file whose orientation tag is ignored; said once per run (run_main's end), or
    once per worker process, whose counts do not reach the main process."""
    if orientation in (0, 1) or path in _ROTATED:
        return
    _ROTATED[path] = orientation
    if multiprocessing.parent_process() is not None:
        if len(_ROTATED) == 1:
            print(f"warning: {path}: EXIF orientation {orientation} ignored, pixels read as "
                  f"stored ({ORIENTATION_RULE}; further such files of this worker not said)",
                  file=sys.stderr)
    else:
        at_end_of_run(orientation_warning)


ORIENTATION_RULE = "boxes and masks refer to the stored pixels"


def orientation_warning():
    """Print (once) how many files read so far carry an ignored EXIF orientation tag."""
    if _ROTATED:
        first, orientation = next(iter(_ROTATED.items()))
        print(f"warning: {len(_ROTATED)} image(s) carry an EXIF orientation tag, ignored: pixels "
              f"read as stored, since {ORIENTATION_RULE} (first: {first}, orientation "
              f"{orientation}); to use the displayed orientation, rotate the files and their "
              f"annotations together", file=sys.stderr)
        _ROTATED.clear()


def _decode_jpeg_fast(data):
    """OpenCV decode of an 8-bit grey or YCbCr/RGB JPEG: the same pixels as PIL, faster.

    Pixels as stored (EXIF orientation ignored, as on the PIL path); grey becomes RGB by
    replication as in PIL.
    """
    if _jpeg_components(data) not in (1, 3):
        return None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path):
    """Read `path` as an HxWx3 uint8 RGB array of the stored pixels (an EXIF orientation tag is
    ignored and counted); UserError if unreadable."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever
            raise UserError(f"{path}: not a regular file")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UserError(f"{path}: cannot read image ({e.strerror or e})") from None
    rgb = _decode_jpeg_fast(data)
    if rgb is not None:
        _note_orientation(path, _exif_orientation(data))
        return rgb
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # decodes fully: a truncated file fails here, not later
            _note_orientation(path, _exif_orientation(data, img))
            if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                gray = _to_uint8(np.asarray(img))
                return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
            rgb = np.array(img.convert("RGB"))  # writable: torch.from_numpy warns on read-only
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: cannot read image ({e})") from None
    return np.ascontiguousarray(rgb)


def read_size(path):
    """(height, width) of `path` as read_rgb returns it (stored pixels), from the file's header
    alone (no decoding); UserError if unreadable."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UserError(f"{path}: not a regular file")
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: cannot read image ({getattr(e, 'strerror', None) or e})") from None
    return height, width


def require_finite(values, what):
    """Raise a UserError unless every value of the array (or CPU tensor) is finite.

    Called where floats become pixels: an image holding NaN is never written.
    """
    if not np.isfinite(np.asarray(values, dtype=np.float32)).all():
        raise UserError(f"{what}: values are not finite (NaN or inf); nothing written")


def encode_image(rgb, ext, jpeg_quality=95):
    """Encode an HxWx3 uint8 RGB array in the format named by `ext` ('.png', '.jpg', ...)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise UserError(f"cannot encode an image as {ext}")
    return buf.tobytes()


def write_image(path, rgb, jpeg_quality=95):
    """Write an RGB image atomically: a killed run never leaves half a file at `path`.

    Float arrays in [0, 1] are accepted when finite.
    """
    if rgb.dtype.kind == "f":
        require_finite(rgb, path)
        rgb = _to_uint8(rgb)
    atomic_write_bytes(path, encode_image(rgb, os.path.splitext(path)[1], jpeg_quality))
