"""COCO loading: masks equal pycocotools' annToMask, id and label mapping, bad images and paths."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.coco_json import load_coco_json, normalize_coco
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.data.image_io import read_rgb
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images


def write_set(tmp_path, images, annotations, categories, sizes=None):
    """Write blank PNGs for `images` and an annotation file; returns (image_dir, annotation)."""
    image_dir = tmp_path / "images"
    image_dir.mkdir(exist_ok=True)
    for image in images:
        h, w = image.get("height", 40), image.get("width", 50)
        Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(image_dir / image["file_name"])
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return str(image_dir), str(path)


def mixed_segmentations(h=40, w=50):
    square = np.zeros((h, w), np.uint8)
    square[5:20, 10:30] = 1
    compressed = mask_utils.encode(np.asfortranarray(square))
    compressed["counts"] = compressed["counts"].decode()
    # uncompressed RLE: column-major run lengths starting with zeros
    flat = np.zeros((h, w), np.uint8)
    flat[25:35, 2:8] = 1
    runs, current, count = [], 0, 0
    for value in flat.flatten(order="F"):
        if value == current:
            count += 1
        else:
            runs.append(count)
            current, count = value, 1
    runs.append(count)
    return [
        [[30.0, 22.0, 45.0, 22.0, 45.0, 38.0, 30.0, 38.0], [40, 2, 48, 2, 44, 10]],  # two polygons
        {"size": [h, w], "counts": runs},
        compressed,
    ]


def test_masks_equal_pycocotools_ann_to_mask(tmp_path):
    segs = mixed_segmentations()
    anns = [{"id": i + 1, "image_id": 7, "category_id": 3, "segmentation": s, "bbox": [1, 1, 5, 5],
             "area": 25.0, "iscrowd": int(isinstance(s, dict) and isinstance(s["counts"], list))}
            for i, s in enumerate(segs)]
    image_dir, ann_path = write_set(tmp_path, [{"id": 7, "file_name": "a.png", "height": 40, "width": 50}],
                                    anns, [{"id": 3, "name": "thing"}])
    reference = COCO(ann_path)
    image, target = CocoDetection(image_dir, ann_path)[0]
    assert image.shape == (3, 40, 50) and image.dtype == torch.float32
    expected = np.stack([reference.annToMask(a) for a in reference.loadAnns([1, 2, 3])])
    assert target["masks"].shape == (3, 40, 50)
    assert np.array_equal(target["masks"].numpy(), expected)
    assert expected.sum() > 0 and target["labels"].tolist() == [1, 1, 1]


def test_sample_set_targets_match_annotations():
    dataset = CocoDetection(sample_images("val"), sample_annotation("val"))
    reference = COCO(sample_annotation("val"))
    image, target = dataset[3]
    anns = reference.loadAnns(reference.getAnnIds(imgIds=[dataset.image_ids[3]]))
    assert torch.equal(target["masks"], torch.from_numpy(np.stack([reference.annToMask(a) for a in anns])))
    boxes = np.array([a["bbox"] for a in anns], np.float32)
    boxes[:, 2:] += boxes[:, :2]
    assert np.allclose(target["boxes"].numpy(), boxes)
    assert dataset.num_classes == 4 and image.shape == (3, 128, 128)


def test_string_ids_map_to_integers_and_back(tmp_path):
    images = [{"id": "DSC01316", "file_name": "DSC01316.png"}, {"id": "DSC00007", "file_name": "DSC00007.png"}]
    anns = [{"id": 0, "image_id": "DSC00007", "category_id": 2, "bbox": [1, 2, 10, 12], "isextreme": True}]
    image_dir, ann_path = write_set(tmp_path, images, anns, [{"id": 2, "name": "bicycle"}])
    dataset = CocoDetection(image_dir, ann_path)
    assert dataset.image_ids == [1, 2]
    assert [dataset.original_id(i) for i in dataset.image_ids] == ["DSC01316", "DSC00007"]
    _, target = dataset[1]
    assert target["image_id"] == 2 and target["boxes"].tolist() == [[1, 2, 11, 14]]
    assert target["area"].tolist() == [120.0] and "masks" not in target  # box-only set


def test_category_zero_does_not_collide_with_background(tmp_path):
    anns = [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 1, "category_id": 5, "bbox": [2, 2, 5, 5]}]
    image_dir, ann_path = write_set(tmp_path, [{"id": 1, "file_name": "a.png"}], anns,
                                    [{"id": 5, "name": "b"}, {"id": 0, "name": "a"}])
    dataset = CocoDetection(image_dir, ann_path)
    assert dataset.label_map == {0: 1, 5: 2}
    assert dataset[0][1]["labels"].tolist() == [1, 2] and dataset.num_classes == 3


def test_degenerate_boxes_dropped_in_training_and_empty_images_kept(tmp_path, capsys):
    images = [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [3, 3, 0, 9]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [3, 3, 9, 9]},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "iscrowd": 1}]
    image_dir, ann_path = write_set(tmp_path, images, anns, [{"id": 1, "name": "x"}])
    train = CocoDetection(image_dir, ann_path, train=True)
    assert "dropped 1 degenerate boxes" in capsys.readouterr().out
    assert train[0][1]["boxes"].tolist() == [[3, 3, 12, 12]]
    evaluation = CocoDetection(image_dir, ann_path)
    assert len(evaluation) == 2 and evaluation[1][1]["boxes"].shape == (0, 4)
    assert len(evaluation[0][1]["boxes"]) == 3


def test_file_name_escaping_the_image_dir_is_refused(tmp_path):
    image_dir, ann_path = write_set(tmp_path, [{"id": 1, "file_name": "a.png"}], [], [{"id": 1, "name": "x"}])
    (tmp_path / "secret.png").write_bytes((tmp_path / "images" / "a.png").read_bytes())
    data = json.loads(open(ann_path).read())
    data["images"][0]["file_name"] = "../secret.png"
    open(ann_path, "w").write(json.dumps(data))
    with pytest.raises(UserError, match="points outside"):
        CocoDetection(image_dir, ann_path)[0]


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"images": []}', "no 'categories'"),
    ('{"images": [{"id": 1}], "categories": [{"id": 1}]}', "'file_name'"),
    ('{"images": [{"id": 1, "file_name": "a"}], "categories": [{"id": 1}], '
     '"annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}]}', "unknown image"),
])
def test_bad_annotation_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as info:
        load_coco_json(str(path))
    assert str(path) in str(info.value)


def test_rawnod_annotations_load(shared_data):
    path = os.path.join(shared_data, "rawnod", "Nikon", "raw_new_Nikon750_test.json")
    normalized, original = normalize_coco(load_coco_json(path))
    assert len(normalized["images"]) == 400 and len(normalized["annotations"]) == 2852
    assert all(isinstance(i["id"], int) for i in normalized["images"])
    assert isinstance(original[1], str) and original[1].endswith(("", ))
    assert len(normalized["categories"]) == 80
    used = {a["category_id"] for a in normalized["annotations"]}
    assert used <= {1, 2, 3}


# ------------------------------------------------------------------ image kinds

def make_image_kinds(folder):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb[:, :, 0]).save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full((12, 16), 128, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray((rgb[:, :, 0].astype(np.uint16) * 257)).save(folder / "gray16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    ramp = np.dstack(list(np.meshgrid(np.arange(16) * 16, np.arange(12) * 20)) + [np.full((12, 16), 60)])
    Image.fromarray(ramp.astype(np.uint8)).save(folder / "rotated.jpg", exif=exif, quality=100)
    return rgb, ramp


def test_every_image_kind_loads_as_rgb(tmp_path):
    rgb, ramp = make_image_kinds(tmp_path)
    for name in ("gray.png", "rgba.png", "palette.png", "cmyk.jpg", "gray16.png"):
        image = read_rgb(str(tmp_path / name))
        assert image.shape == (12, 16, 3) and image.dtype == np.uint8, name
    assert np.array_equal(read_rgb(str(tmp_path / "gray.png"))[:, :, 1], rgb[:, :, 0])
    assert np.array_equal(read_rgb(str(tmp_path / "gray16.png"))[:, :, 2], rgb[:, :, 0])
    assert np.array_equal(read_rgb(str(tmp_path / "rgba.png")), rgb)
    rotated = read_rgb(str(tmp_path / "rotated.jpg"))
    assert rotated.shape == (12, 16, 3)  # as stored: the orientation tag is ignored
    expected = ramp.astype(int)
    assert np.abs(rotated.astype(int) - expected).mean() < 3  # JPEG loss only


def test_truncated_and_non_images_fail_naming_the_file(tmp_path):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    for name in ("truncated.jpg", "text.png"):
        with pytest.raises(UserError, match="cannot read image") as info:
            read_rgb(str(tmp_path / name))
        assert name in str(info.value)
