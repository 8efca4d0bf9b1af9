"""read_rgb's OpenCV fast path for JPEGs gives exactly PIL's pixels, and leaves odd files to PIL."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from torch_utils_lib.data import image_io
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.paths import sample_images


def _photo():
    bgr = cv2.imread(f"{sample_images('val')}/val_0003.png")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[:48, :64]


def _pil_reference(data):
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return np.asarray(img.convert("RGB"))  # pixels as stored: orientation tags are ignored


@pytest.mark.parametrize("orientation", range(1, 9))
def test_fast_path_matches_pil_for_every_exif_orientation(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, "JPEG", quality=90, exif=exif.tobytes(),
                                   progressive=orientation % 2 == 0)
    data = buf.getvalue()
    assert image_io._jpeg_components(data) == 3  # takes the fast path
    path = tmp_path / "o.jpg"
    path.write_bytes(data)
    fast = image_io.read_rgb(str(path))
    assert fast.shape == (48, 64, 3)  # as stored, whatever the tag (boxes refer to these pixels)
    assert np.array_equal(fast, _pil_reference(data))


def test_grey_cmyk_and_truncated_jpegs(tmp_path):
    photo = _photo()
    grey, cmyk = io.BytesIO(), io.BytesIO()
    Image.fromarray(photo[..., 1]).save(grey, "JPEG")
    Image.fromarray(photo).convert("CMYK").save(cmyk, "JPEG")
    assert image_io._jpeg_components(grey.getvalue()) == 1
    assert image_io._jpeg_components(cmyk.getvalue()) == 4  # PIL path: OpenCV converts differently
    for name, data in (("grey.jpg", grey.getvalue()), ("cmyk.jpg", cmyk.getvalue())):
        (tmp_path / name).write_bytes(data)
        out = image_io.read_rgb(str(tmp_path / name))
        assert out.shape == (48, 64, 3) and out.dtype == np.uint8
        assert np.array_equal(out, _pil_reference(data))
    # cut before the end: no EOI marker, so PIL decides, and it refuses
    data = grey.getvalue()
    assert image_io._jpeg_components(data[:-200]) is None
    (tmp_path / "cut.jpg").write_bytes(data[:-200])
    with pytest.raises(UserError, match="cut.jpg: cannot read image"):
        image_io.read_rgb(str(tmp_path / "cut.jpg"))
    with pytest.raises(UserError, match="missing.jpg: cannot read image"):
        image_io.read_rgb(str(tmp_path / "missing.jpg"))
