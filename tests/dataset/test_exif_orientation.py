"""Pixels as stored, EXIF orientation ignored: boxes stay on their objects in every reader.

A real JPEG stored 80 wide and 60 high, tagged Orientation=6 (shown rotated to 60x80), holds a
bright square exactly where its box says; the box must still frame the square in the detector's
dataset, after synthesis and after the ExDark conversion, and each run says once how many files
carried a tag.
"""
import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_script
from torch_utils_lib.data.image_io import read_rgb

BOX = [50, 10, 20, 20]  # x, y, w, h in the stored pixels
CATEGORIES = [{"id": 1, "name": "Cup"}]


def write_tagged_jpeg(path):
    rgb = np.full((60, 80, 3), 20, np.uint8)
    x, y, w, h = BOX
    rgb[y:y + h, x:x + w] = 230
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, "JPEG", quality=100, exif=exif.tobytes())
    assert Image.open(path).getexif()[0x0112] == 6


def assert_box_frames_the_square(rgb, box):
    x, y, w, h = (int(round(v)) for v in box)
    assert rgb.shape[:2] == (60, 80)  # as stored, not 80x60
    inside = rgb[y:y + h, x:x + w].mean()
    outside = np.delete(rgb.reshape(-1, 3), [r * 80 + c for r in range(y, y + h)
                                              for c in range(x, x + w)], axis=0).mean()
    assert inside > outside + 40, (inside, outside)


@pytest.fixture
def tagged_set(tmp_path):
    write_tagged_jpeg(tmp_path / "images" / "tagged.jpg")
    coco = {"images": [{"id": 1, "file_name": "tagged.jpg", "width": 80, "height": 60}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": BOX, "area": 400,
                             "iscrowd": 0}], "categories": CATEGORIES}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    return tmp_path


def test_detector_dataset_keeps_box_and_pixels_aligned(tagged_set):
    from torch_utils_lib.data.coco_utils import CocoDetection
    image, target = CocoDetection(str(tagged_set / "images"), str(tagged_set / "coco.json"))[0]
    assert tuple(image.shape) == (3, 60, 80)  # the annotation's 80x60: no size mismatch
    assert target["boxes"].tolist() == [[50.0, 10.0, 70.0, 30.0]]
    assert_box_frames_the_square((image.permute(1, 2, 0).numpy() * 255), BOX)


def test_synthesis_keeps_box_and_pixels_aligned_and_warns_once(tagged_set):
    write_tagged_jpeg(tagged_set / "images" / "tagged_too.jpg")
    out = tagged_set / "dark"
    result = run_script("dataset/data_preprocessing.py", "--input_dir", tagged_set / "images",
                        "--annotation", tagged_set / "coco.json", "--output_dir", out, "--quiet",
                        "--level", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [l for l in result.stderr.splitlines() if "EXIF orientation" in l]
    assert len(warnings) == 1 and warnings[0].startswith("warning: 2 image(s) carry an EXIF "
                                                         "orientation tag, ignored"), result.stderr
    written = json.loads((out / "annotations.json").read_text())
    assert written["images"][0]["width"] == 80 and written["annotations"][0]["bbox"] == BOX
    assert_box_frames_the_square(read_rgb(str(out / "tagged.jpg")), BOX)


def test_exdark_conversion_keeps_box_and_pixels_aligned(tmp_path):
    write_tagged_jpeg(tmp_path / "ExDark" / "Cup" / "tagged.JPG")
    (tmp_path / "Annno" / "Cup").mkdir(parents=True)
    (tmp_path / "Annno" / "Cup" / "tagged.JPG.txt").write_text(
        "% bbGt version=3\nCup " + " ".join(map(str, BOX)) + " 0 0 0 0 0 0 0\n")
    (tmp_path / "list.txt").write_text("Name Class Light In/Out Train/Val/Test\ntagged.JPG 8 1 1 3\n")
    result = run_script("dataset/convert_exdark.py", "--image_dir", tmp_path / "ExDark",
                        "--annotation_dir", tmp_path / "Annno", "--class_list", tmp_path / "list.txt",
                        "--output_dir", tmp_path / "coco")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: 1 image(s) carry an EXIF orientation tag" in result.stderr
    test = json.loads((tmp_path / "coco" / "instances_test.json").read_text())
    assert (test["images"][0]["width"], test["images"][0]["height"]) == (80, 60)
    assert test["annotations"][0]["bbox"] == [float(v) for v in BOX]  # neither clipped nor dropped
    assert "clipped" not in result.stderr and "dropped" not in result.stderr
    assert_box_frames_the_square(read_rgb(str(tmp_path / "ExDark" / "Cup" / "tagged.JPG")), BOX)
