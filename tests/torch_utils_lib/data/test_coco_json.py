"""COCO annotation files: one line for every malformed file, parsed once, subsets, bad boxes, box-only sets."""
import copy
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tests.helpers import assert_user_error, run_script
from torch_utils_lib.data import coco_json
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.coco_json import (index_coco, load_coco_json, normalize_coco,
                                       rle_string_counts, subset_coco)
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images

H, W = 40, 50


def runs_of(mask):
    """Uncompressed COCO RLE counts of a mask: column-major run lengths starting with zeros."""
    flat = mask.flatten(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return ([0] + runs) if flat[0] else runs


def valid_coco():
    square = np.zeros((H, W), np.uint8)
    square[5:20, 10:30] = 1
    rle = mask_utils.encode(np.asfortranarray(square))
    crowd = np.zeros((H, W), np.uint8)
    crowd[20:24, 20:24] = 1
    return {
        "images": [{"id": 1, "file_name": "a.png", "height": H, "width": W},
                   {"id": 2, "file_name": "b.png", "height": H, "width": W}],
        "categories": [{"id": 0, "name": "zero"}, {"id": 3, "name": "three"}],  # id 0 is valid
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 0, "bbox": [10, 5, 20, 15],
             "segmentation": {"size": [H, W], "counts": rle["counts"].decode()}},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": [1, 1, 8, 8],
             "segmentation": [[1, 1, 9, 1, 9, 9, 1, 9]]},
            {"id": 3, "image_id": 2, "category_id": 3, "bbox": [20, 20, 4, 4], "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": runs_of(crowd)}},
        ],
    }


def write(tmp_path, coco, name="ann.json"):
    path = tmp_path / name
    path.write_text(coco if isinstance(coco, str) else json.dumps(coco))
    return str(path)


def write_images(folder, coco):
    folder.mkdir(exist_ok=True)
    for image in coco["images"]:
        Image.fromarray(np.full((image.get("height", H), image.get("width", W), 3), 90, np.uint8)).save(
            folder / image["file_name"])
    return str(folder)


def changed(change):
    coco = valid_coco()
    change(coco)
    return coco


def _set(path, value):
    """A change that sets coco[path[0]][path[1]]...[path[-1]] = value."""
    def change(coco):
        target = coco
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _ann(key, value):
    return _set(("annotations", 0, key), value)


BAD_FILES = [  # (change of a valid file, fragment of the one-line message)
    (_set(("annotations",), {"1": {}}), "'annotations' must be a list of objects, not dict"),
    (_set(("categories",), {"1": "x"}), "'categories' must be a list of objects, not dict"),
    (_set(("images",), {"1": "a.png"}), "'images' must be a list of objects, not dict"),
    (_set(("categories",), [1, 2]), "categories[0] is '1', expected an object"),
    (_set(("annotations",), [1, 2]), "annotations[0] is '1', expected an object"),
    (_set(("images",), ["a.png"]), "images[0] is 'a.png', expected an object"),
    (_set(("images", 1, "file_name"), 7), "images[1] file_name 7 is not a file name"),
    (_set(("images", 0, "id"), [1]), "images[0] id [1] is not an integer or string"),
    (_set(("images", 0, "id"), {"n": 1}), "is not an integer or string"),
    (_set(("images", 0, "id"), 1.0), "images[0] id 1.0 is not an integer or string"),
    (_set(("images", 0, "id"), True), "images[0] id True is not an integer or string"),
    (_set(("images", 0, "width"), -5), "images[0] width -5 is not a positive integer"),
    (_set(("categories", 1, "id"), "3"), "category ids mix integers and strings"),
    (_set(("categories", 1, "id"), 0), "category id 0 appears twice"),
    (_set(("categories", 1, "name"), ""), "categories[1] (id 3) has no 'name'"),
    (lambda c: c["categories"][0].pop("name"), "categories[0] (id 0) has no 'name'"),
    (_ann("image_id", [1]), "refers to unknown image [1]"),
    (_ann("image_id", True), "refers to unknown image True"),
    (_ann("category_id", 0.0), "has unknown category 0.0"),
    (_ann("bbox", [1, 2, "3", 4]), "no valid 'bbox'"),
    (_ann("bbox", [1, 2, 3]), "no valid 'bbox'"),
    (_ann("bbox", [1, 2, float("nan"), 4]), "bbox [1, 2, nan, 4] is not finite"),
    (_ann("bbox", [1, 2, 3, float("inf")]), "is not finite"),
    (_ann("iscrowd", "no"), "iscrowd 'no' is not a number"),
    (_ann("segmentation", "mask.png"), "segmentation is neither polygons nor RLE"),
    (_ann("segmentation", {"size": [H], "counts": "PP"}), "RLE size [40] is not [height, width]"),
    (_ann("segmentation", {"size": [0, W], "counts": []}), "RLE size [0, 50] is not"),
    (_ann("segmentation", {"size": [H, W], "counts": 12}), "neither a string nor a list of integers"),
    (_ann("segmentation", {"size": [H, W], "counts": [5, "7"]}), "neither a string nor a list"),
    (_ann("segmentation", {"size": [H, W], "counts": [5, 7]}), "RLE counts cover 12 pixels, not 40x50"),
    (_ann("segmentation", {"size": [H, W], "counts": "0i"}), "compressed RLE counts cannot be decoded"),
    (_ann("segmentation", {"size": [H, W], "counts": "\u00ff"}), "cannot be decoded"),
    (_ann("segmentation", {"size": [H, W], "counts": "52"}), "RLE counts cover 7 pixels"),
    (_ann("segmentation", [[1, 2, 3, 4, 5, 6, 7]]), "a polygon has an odd number of coordinates (7)"),
    (_ann("segmentation", [[1, 2, 3, "4", 5, 6]]), "a polygon holds values that are not finite"),
    (_ann("segmentation", [[1, 2, 3, None, 5, 6]]), "not finite numbers"),
    (_ann("segmentation", [[1, 2, 3, float("nan"), 5, 6]]), "not finite numbers"),
    (_ann("segmentation", [1, 2, 3, 4, 5, 6]), "a polygon is '1', expected a list"),
]


@pytest.mark.parametrize("change, message", BAD_FILES)
def test_malformed_files_are_one_line_naming_file_and_problem(tmp_path, change, message):
    path = write(tmp_path, changed(change))
    with pytest.raises(UserError) as info:
        load_coco_json(path, finite_boxes=True)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "not a COCO annotation file"),
    ('{"images": [], "categories": []}', "no 'categories' list"),
    ('{"images": [], "categories": [{"id": 1, "name": "x"}], "annotations": 3}',
     "'annotations' must be a list of objects, not int"),
])
def test_wrong_top_level_is_one_line(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(UserError, match=message) as info:
        load_coco_json(path)
    assert str(info.value).startswith(path)


def test_scripts_report_a_malformed_file_in_one_line(tmp_path):
    cases = [(_set(("categories", 1, "id"), "3"), "category ids mix integers and strings"),
             (_ann("segmentation", {"size": [H, W], "counts": [5, 7]}), "RLE counts cover 12"),
             (_ann("bbox", [1, 2, float("nan"), 4]), "is not finite")]
    for n, (change, message) in enumerate(cases):
        path = write(tmp_path, changed(change), f"bad{n}.json")
        result = run_script("dataset/make_subset.py", "--annotation", path, "--no_copy",
                            "--num_images", "1", "--output_dir", tmp_path / "out")
        assert_user_error(result, path, message)
    assert not (tmp_path / "out").exists()
    # the detector's evaluation refuses NaN boxes (they cannot be scored)
    images = write_images(tmp_path / "images", valid_coco())
    path = write(tmp_path, changed(_ann("bbox", [1, 2, 3, float("inf")])), "inf.json")
    with pytest.raises(UserError, match="is not finite"):
        CocoDetection(images, path)


def test_data_preprocessing_validates_the_annotation_before_writing(tmp_path):
    coco = valid_coco()
    images = write_images(tmp_path / "images", coco)
    bad = write(tmp_path, changed(_ann("segmentation", [[1, 2, 3]])), "bad.json")
    result = run_script("dataset/data_preprocessing.py", "--input_dir", images, "--annotation", bad,
                        "--output_dir", tmp_path / "out", "--quiet", "--metrics", "none")
    assert_user_error(result, bad, "odd number of coordinates")
    elsewhere = changed(lambda c: [i.update(file_name="x_" + i["file_name"]) for i in c["images"]])
    other = write(tmp_path, elsewhere, "other.json")
    result = run_script("dataset/data_preprocessing.py", "--input_dir", images, "--annotation", other,
                        "--output_dir", tmp_path / "out", "--quiet", "--metrics", "none")
    assert_user_error(result, other, f"none of its 2 images is in {images} (first: x_a.png)")
    assert not (tmp_path / "out").exists()
    # one image absent: said once, left out; file names with folders are written as stored here
    os.unlink(os.path.join(images, "a.png"))
    nested = write(tmp_path, changed(lambda c: c["images"][1].update(file_name="sub/b.png")), "n.json")
    result = run_script("dataset/data_preprocessing.py", "--input_dir", images, "--annotation", nested,
                        "--output_dir", tmp_path / "out", "--quiet", "--metrics", "none")
    assert result.returncode == 0, result.stderr
    assert f"{nested}: 1 listed image(s) not in {images} (first: a.png)" in result.stdout
    written = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert written["images"] == [{**coco["images"][1], "file_name": "b.png"}]
    assert written["annotations"] == coco["annotations"][1:]


def test_rle_of_another_size_than_its_image_is_refused_when_decoded(tmp_path):
    coco = changed(_ann("segmentation", {"size": [W, H], "counts": [H * W]}))
    images = write_images(tmp_path / "images", coco)
    dataset = CocoDetection(images, write(tmp_path, coco))
    assert dataset.with_masks and dataset[1][1]["masks"].shape == (2, H, W)
    with pytest.raises(UserError, match=r"the RLE size \[50, 40\] of an annotation of a.png differs "
                                        r"from the image's \[height, width\] \[40, 50\]"):
        dataset[0]


# ------------------------------------------------------------------ parsed once

def test_a_file_is_parsed_once_per_process(tmp_path, monkeypatch):
    reads = []
    real = coco_json.read_json
    monkeypatch.setattr(coco_json, "read_json", lambda *a: reads.append(a[0]) or real(*a))
    coco = valid_coco()
    path = write(tmp_path, coco)
    images = write_images(tmp_path / "images", coco)
    first = load_coco_json(path)
    assert load_coco_json(os.path.join(str(tmp_path), ".", "ann.json")) is first
    evaluation, training = CocoDetection(images, path), CocoDetection(images, path, train=True)
    assert reads == [path]
    assert first == coco and len(evaluation) == len(training) == 2
    # the datasets' normalized copies leave the cached dict as it was in the file
    assert json.loads(open(path).read()) == first
    # a changed file is read again
    coco["categories"][1]["name"] = "a longer name"
    write(tmp_path, coco)
    assert load_coco_json(path)["categories"][1]["name"] == "a longer name"
    assert len(reads) == 2


# ------------------------------------------------------------------ normalize, subset, index

def test_subset_keeps_file_order_and_leaves_the_input_alone(tmp_path):
    coco = valid_coco()
    coco["images"] = [{"id": "DSC2", "file_name": "raw/DSC2.ARW"}, {"id": "DSC1", "file_name": "DSC1.ARW"},
                      {"id": "DSC3", "file_name": "DSC3.ARW"}]
    for ann, image_id in zip(coco["annotations"], ("DSC1", "DSC3", "DSC2")):
        ann["image_id"] = image_id
        ann.pop("segmentation")
    before = copy.deepcopy(coco)
    part = subset_coco(coco, {"DSC1", "DSC2"}, rename=lambda name: os.path.basename(name) + ".png")
    assert [i["id"] for i in part["images"]] == ["DSC2", "DSC1"]
    assert [i["file_name"] for i in part["images"]] == ["DSC2.ARW.png", "DSC1.ARW.png"]
    assert [a["id"] for a in part["annotations"]] == [1, 3]
    assert part["categories"] is coco["categories"] and coco == before
    images, anns = index_coco(coco)
    assert list(images) == ["DSC2", "DSC1", "DSC3"]
    assert {k: [a["id"] for a in v] for k, v in anns.items()} == {"DSC2": [3], "DSC1": [1], "DSC3": [2]}
    normalized, original = normalize_coco(coco)
    assert [i["id"] for i in normalized["images"]] == [1, 2, 3] and original[1] == "DSC2"
    assert [a["image_id"] for a in normalized["annotations"]] == [2, 3, 1]
    assert normalized["annotations"][0]["area"] == 300.0 and coco == before


def test_compressed_rle_counts_match_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(1, 30, 2)
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(mask))
        assert rle_string_counts(rle["counts"].decode()) == runs_of(mask)


def test_sample_annotation_loads_unchanged():
    with open(sample_annotation("val")) as f:
        raw = json.load(f)
    assert load_coco_json(sample_annotation("val"), finite_boxes=True) == raw


# ------------------------------------------------------------------ bad boxes in training

def test_degenerate_nan_inf_boxes_dropped_and_counted_once(tmp_path, capsys):
    coco = valid_coco()
    for ann in coco["annotations"]:
        ann.pop("segmentation")
    coco["annotations"][2]["iscrowd"] = 0
    extra = [[3, 3, 0, 9], [float("nan"), 1, 5, 5], [1, 1, float("inf"), 5], [60, 1, 5, 5],
             [1, 1, -4, 5]]
    coco["annotations"] += [{"id": 10 + n, "image_id": 1, "category_id": 3, "bbox": b}
                            for n, b in enumerate(extra)]
    coco["annotations"].append({"id": 20, "image_id": 2, "category_id": 0, "bbox": [2, 2, 3, 3],
                                "iscrowd": 1})
    images = write_images(tmp_path / "images", coco)
    path = write(tmp_path, coco)
    train = CocoDetection(images, path, train=True)
    CocoDetection(images, path, train=True)  # built again: said once
    out = capsys.readouterr().out
    assert out.count("dropped 5 degenerate boxes") == 1 and path in out, out
    assert train.num_degenerate == 5
    _, first = train[0]
    _, second = train[1]
    assert first["boxes"].tolist() == [[10, 5, 30, 20]] and first["labels"].tolist() == [1]
    assert second["boxes"].tolist() == [[1, 1, 9, 9], [20, 20, 24, 24]]
    with pytest.raises(UserError, match=r"annotations\[4\] \(id 11\): bbox \[nan, 1, 5, 5\] is not "
                                        r"finite \(2 such box"):
        CocoDetection(images, path)


@pytest.mark.parametrize("annotations, message", [
    ([{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 0, 4]},
      {"id": 2, "image_id": 2, "category_id": 3, "bbox": [1, 1, float("nan"), 4]},
      {"id": 3, "image_id": 2, "category_id": 3, "bbox": [1, 1, 4, 4], "iscrowd": 1}],
     "nothing to train on: all 3 annotations are crowd regions or degenerate boxes (2 degenerate"),
    ([], "nothing to train on: no annotations"),
])
def test_nothing_to_train_on_is_refused(tmp_path, annotations, message):
    coco = {**valid_coco(), "annotations": annotations}
    images = write_images(tmp_path / "images", coco)
    path = write(tmp_path, coco)
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as info:
        CocoDetection(images, path, train=True)
    assert str(info.value).startswith(path)


# ------------------------------------------------------------------ box-only sets and Mask R-CNN

def box_only_set(tmp_path, keep_masks=0, count=2):
    """`count` sample val images; annotations keep their masks on the first `keep_masks` images."""
    with open(sample_annotation("val")) as f:
        coco = json.load(f)
    coco["images"] = coco["images"][:count]
    ids = [i["id"] for i in coco["images"]]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    for ann in coco["annotations"]:
        if ann["image_id"] not in ids[:keep_masks]:
            ann["segmentation"] = [] if ann["id"] % 2 else [[1, 2, 3, 4]]  # empty or too short
    return write(tmp_path, coco, f"box_{keep_masks}.json"), coco


def test_box_only_and_mixed_sets_are_scored_for_bbox_only(tmp_path):
    from mask_rcnn.evaluation import evaluate_model_on_sets
    from torch_utils_lib.models.detectors import build_detector, detector_config
    torch.manual_seed(0)
    model = build_detector("maskrcnn_resnet18_fpn", 4, "none", min_size=64, max_size=64).eval()
    names = ["__background__", "circle", "square", "triangle"]
    config = detector_config("maskrcnn_resnet18_fpn", names, 64, 64, [None, 1, 2, 3])
    box_only, _ = box_only_set(tmp_path)
    mixed, _ = box_only_set(tmp_path, keep_masks=1)
    with_masks, _ = box_only_set(tmp_path, keep_masks=2)
    stats = {name: evaluate_model_on_sets(model, config, path, {"val": sample_images("val")}, "cpu",
                                          batch_size=2, results_dir=str(tmp_path / name))["val"]
             for name, path in (("box", box_only), ("mixed", mixed), ("masks", with_masks))}
    assert set(stats["box"]) == set(stats["mixed"]) == {"bbox"}
    assert set(stats["masks"]) == {"bbox", "segm"}
    assert stats["box"]["bbox"] == stats["mixed"]["bbox"] == stats["masks"]["bbox"]
    assert os.listdir(tmp_path / "box") == ["detections_val_bbox.json"]
    # the same numbers as pycocotools' own bbox evaluation of the detections written
    detections = json.loads((tmp_path / "box" / "detections_val_bbox.json").read_text())
    assert len(detections) > 0
    ground_truth = COCO(box_only)
    direct = COCOeval(ground_truth, ground_truth.loadRes(detections), "bbox")
    direct.evaluate()
    direct.accumulate()
    direct.summarize()
    assert list(stats["box"]["bbox"].values()) == pytest.approx(direct.stats.tolist())


def test_mask_rcnn_training_refuses_box_only_sets_naming_the_way_out(tmp_path):
    box_only, coco = box_only_set(tmp_path, keep_masks=1)
    without = sum(1 for a in coco["annotations"] if a["image_id"] != coco["images"][0]["id"])
    result = run_script("mask_rcnn/train.py", "--annotation", box_only, "--image_dir",
                        sample_images("val"), "--checkpoint_dir", tmp_path / "run", "--epoch", "1",
                        "--device", "cpu")
    assert_user_error(result, box_only, f"{without} of the {len(coco['annotations'])} annotations "
                                        "trained on have no mask", "--model fasterrcnn_resnet50_fpn")
    assert not (tmp_path / "run" / "last.pth").exists()


def test_box_detector_trains_and_validates_on_a_box_only_set(tmp_path):
    from mask_rcnn.train import build_parser
    from mask_rcnn.training import train
    box_only, _ = box_only_set(tmp_path, keep_masks=0)
    masks, _ = box_only_set(tmp_path, keep_masks=2)  # validation may have masks: scored for bbox
    args = build_parser().parse_args([
        "--annotation", box_only, "--image_dir", sample_images("val"), "--val_annotation", masks,
        "--val_image_dir", sample_images("val"), "--model", "fasterrcnn_resnet50_fpn",
        "--min_size", "64", "--max_size", "64", "--epoch", "1", "--batch_size", "2",
        "--eval_every", "1", "--checkpoint_dir", str(tmp_path / "run"), "--device", "cpu"])
    stats = train(args)
    assert set(stats) == {"bbox"} and 0 <= stats["bbox"]["AR100"] <= 1
    assert (tmp_path / "run" / "last.pth").is_file()
