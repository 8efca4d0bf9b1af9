"""The bundled sample set is exactly what dataset/make_sample.py builds (byte for byte)."""
import json
import os

import numpy as np
from pycocotools.coco import COCO

from tests.helpers import run_script
from torch_utils_lib.toolkit.paths import SAMPLE_DIR, sample_annotation


def test_make_sample_rebuilds_the_bundled_set_byte_identically(tmp_path):
    result = run_script("dataset/make_sample.py", "--output_dir", tmp_path)
    assert result.returncode == 0, result.stderr
    for split in ("train", "val"):
        names = sorted(os.listdir(tmp_path / split))
        assert names == sorted(os.listdir(os.path.join(SAMPLE_DIR, split)))
        for name in names:
            with open(os.path.join(SAMPLE_DIR, split, name), "rb") as f:
                assert (tmp_path / split / name).read_bytes() == f.read(), name
        with open(sample_annotation(split), "rb") as f:
            assert (tmp_path / "annotations" / f"instances_{split}.json").read_bytes() == f.read()
    record = json.loads((tmp_path / "run.json").read_text())  # every writing script records its run
    assert record["args"]["output_dir"] == str(tmp_path) and record["args"]["train"] == 64


def test_sample_masks_are_exact_and_boxes_tight():
    coco = COCO(sample_annotation("train"))
    assert len(coco.imgs) == 64 and len(coco.cats) == 3
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        ys, xs = np.nonzero(mask)
        assert ann["area"] == mask.sum() >= 40
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_make_sample_rejects_bad_sizes(tmp_path):
    result = run_script("dataset/make_sample.py", "--output_dir", tmp_path, "--size", 8)
    assert result.returncode == 2 and "--size" in result.stderr and "Traceback" not in result.stderr


def test_sample_images_carry_their_brightness_condition():
    """images[].brightness: the condition field the study's per-condition table reads."""
    from dataset.make_sample import DIM_BELOW
    from torch_utils_lib.data.image_io import read_rgb
    for split in ("train", "val"):
        coco = COCO(sample_annotation(split))
        values = []
        for image in coco.dataset["images"]:
            mean = read_rgb(os.path.join(SAMPLE_DIR, split, image["file_name"])).mean()
            assert image["brightness"] == ("dim" if mean < DIM_BELOW else "bright"), image
            values.append(image["brightness"])
        assert {"dim", "bright"} == set(values)
