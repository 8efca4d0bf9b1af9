"""The study checks what each selected row's steps need of the train set before its first step
(Remedy.needs): certain failures are one line, legitimate sets (mixed sizes) are accepted."""
import json

import numpy as np
import pytest

from tests.helpers import make_sample_set
from tests.test_user_errors import tree_digest
from torch_utils_lib.data.image_io import write_image
from torch_utils_lib.toolkit.errors import UserError


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    data = make_sample_set(tmp_path_factory.mktemp("needs"), train=3, val=2, size=32)
    return data, data / "annotations" / "instances_train.json", data / "annotations" / "instances_val.json"


def plan(data, train, val, out, *remedies, extra=()):
    from study.pipeline import Study
    from study.run import build_parser, check_args
    args = build_parser().parse_args(list(map(str, [
        "--train_image_dir", data / "train", "--train_annotation", train, "--val_image_dir",
        data / "val", "--val_annotation", val, "--output_dir", out, "--device", "cpu",
        "--remedies", *remedies, *extra])))
    check_args(args)
    return Study(args).plan()


def with_image(train, data, out, side, boxes=True):
    """The train annotation plus one side x side image (mixed sizes); without boxes: none left."""
    coco = json.loads(train.read_text())
    name = f"side_{side}.png"
    write_image(str(data / "train" / name), np.full((side, side, 3), 20, np.uint8))
    coco["images"].append({"id": 999, "file_name": name, "width": side, "height": side})
    if not boxes:
        coco["annotations"] = [{**a, "iscrowd": 1} for a in coco["annotations"]]
    out.write_text(json.dumps(coco))
    return out


def test_rows_needs_are_checked_before_the_first_step(small_set, tmp_path):
    data, train, val = small_set
    tiny = with_image(train, data, tmp_path / "tiny.json", 8)
    mixed = with_image(train, data, tmp_path / "mixed.json", 20)
    crowd = with_image(train, data, tmp_path / "crowd.json", 20, boxes=False)
    before = tree_digest(data)
    with pytest.raises(UserError, match=r"--remedies zero_dce: .*side_8.png: 8x8, smaller than the "
                                        r"16x16 Zero-DCE\+\+ trains on"):
        plan(data, tiny, val, tmp_path / "s1", "none", "zero_dce")
    plan(data, tiny, val, tmp_path / "s2", "none", "gamma")  # only zero_dce needs 16 px
    plan(data, mixed, val, tmp_path / "s3", "none", "zero_dce")  # mixed sizes: accepted
    with pytest.raises(UserError, match="--remedies none: .*crowd.json: no usable box"):
        plan(data, crowd, val, tmp_path / "s4", "none")
    assert not any((tmp_path / f"s{n}").exists() for n in range(1, 5))  # nothing written
    assert tree_digest(data) == before


def edited(annotation, out, change):
    coco = json.loads(annotation.read_text())
    change(coco)
    out.write_text(json.dumps(coco))
    return out


def test_detector_needs_and_test_classes_are_checked_before_the_first_step(small_set, tmp_path):
    """Masks for a Mask R-CNN, images its resize can take, test classes it can score."""
    data, train, val = small_set
    boxes_only = edited(train, tmp_path / "boxes.json", lambda coco: [
        a.pop("segmentation") for a in coco["annotations"][:1]])
    wire = edited(train, tmp_path / "wire.json", lambda coco: coco["images"][0].update(
        width=1, height=600))
    renamed = edited(val, tmp_path / "renamed.json", lambda coco: [  # a class its boxes use
        c.update(name="zebra") for c in coco["categories"]
        if c["id"] == coco["annotations"][0]["category_id"]])
    before = tree_digest(data)
    with pytest.raises(UserError, match=r"--remedies none: .*boxes.json: 1 of the \d+ boxes trained "
                                        r"on have no mask and maskrcnn_resnet18_fpn trains on masks"):
        plan(data, boxes_only, val, tmp_path / "s1", "none")
    with pytest.raises(UserError, match=r"--remedies none: .*: 1x600: the detector resizes its long "
                                        r"side to 512 px.*up to 512:1"):
        plan(data, wire, val, tmp_path / "s2", "none")
    with pytest.raises(UserError, match=r"renamed.json \(test set normal\): class 'zebra' matches "
                                        r"none of the detector's 3 classes"):
        plan(data, train, renamed, tmp_path / "s3", "none")
    with pytest.raises(UserError, match=r"renamed.json \(test set lis\): class 'zebra'"):
        plan(data, train, val, tmp_path / "s4", "none",
             extra=["--real_test", f"lis={data / 'val'},{renamed}"])
    # a box detector needs no masks; a category map names the renamed class
    plan(data, boxes_only, val, tmp_path / "s5", "none", extra=["--model", "fasterrcnn_resnet50_fpn"])
    (tmp_path / "map.json").write_text(json.dumps({"zebra": "square"}))
    plan(data, train, renamed, tmp_path / "s6", "none", extra=["--category_map", tmp_path / "map.json"])
    assert not any((tmp_path / f"s{n}").exists() for n in range(1, 7))
    assert tree_digest(data) == before


def test_genisp_needs_raw_sized_train_images_unless_given_raw(small_set, tmp_path):
    """GenISP's RAW comes from the physics synthesis' DNGs, which LibRaw reads from 22 px a side."""
    data, train, val = small_set
    small = with_image(train, data, tmp_path / "small.json", 20)
    before = tree_digest(data)
    with pytest.raises(UserError, match=r"--remedies genisp: .*side_20.png: 20x20, smaller than the "
                                        r"22x22 DNG LibRaw reads"):
        plan(data, small, val, tmp_path / "s1", "none", "genisp")
    plan(data, small, val, tmp_path / "s2", "none")  # no RAW: 20 px serves the detector
    assert not any((tmp_path / f"s{n}").exists() for n in range(1, 3))
    assert tree_digest(data) == before
