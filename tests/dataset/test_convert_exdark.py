"""ExDark's per-image text files and class list become one COCO json per split."""
import json

import pytest

from tests.helpers import (EXDARK_NAMES, assert_user_error, make_exdark_style_set, make_sample_set,
                           run_script)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample_set(tmp_path_factory.mktemp("sample"), train=1, val=4, size=64)


def test_convert_exdark_writes_coco_per_split_with_boxes_and_sizes(sample, tmp_path):
    images, annotations, class_list = make_exdark_style_set(str(sample), "val", str(tmp_path / "exdark"))
    out = tmp_path / "coco"
    result = run_script("dataset/convert_exdark.py", "--image_dir", images, "--annotation_dir",
                        annotations, "--class_list", class_list, "--output_dir", out)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(sample / "annotations" / "instances_val.json") as f:
        source = json.load(f)
    test = json.loads((out / "instances_test.json").read_text())
    train = json.loads((out / "instances_train.json").read_text())
    assert len(train["images"]) == 1 and len(test["images"]) == 3
    assert json.loads((out / "instances_val.json").read_text())["images"] == []
    assert [c["name"] for c in test["categories"]][:3] == ["Bicycle", "Boat", "Bottle"]
    assert len(test["categories"]) == 12
    names = {c["id"]: c["name"] for c in test["categories"]}
    first = test["images"][0]
    assert (first["width"], first["height"]) == (64, 64)
    original = next(i for i in source["images"] if i["file_name"] == first["file_name"].split("/")[1])
    expected = sorted((EXDARK_NAMES[a["category_id"]], [float(round(v)) for v in a["bbox"]])
                      for a in source["annotations"] if a["image_id"] == original["id"])
    got = sorted((names[a["category_id"]], a["bbox"]) for a in test["annotations"]
                 if a["image_id"] == first["id"])
    assert got == expected
    assert all(a["iscrowd"] == 0 and "segmentation" not in a for a in test["annotations"])


def test_malformed_line_names_file_and_line(sample, tmp_path):
    images, annotations, class_list = make_exdark_style_set(str(sample), "val", str(tmp_path / "exdark"))
    with open(class_list) as f:
        first = f.read().splitlines()[1].split()[0]
    broken = next((tmp_path / "exdark" / "annotations").rglob(first + ".txt"))
    broken.write_text("% bbGt version=3\nCup 1 2 three 4 0 0 0 0 0 0 0\n")
    result = run_script("dataset/convert_exdark.py", "--image_dir", images, "--annotation_dir",
                        annotations, "--class_list", class_list, "--output_dir", tmp_path / "coco")
    assert_user_error(result, f"{broken}:2:")
    with open(class_list, "a") as f:
        f.write("x.png 13 1 1 3\n")
    broken.write_text("% bbGt version=3\n")
    result = run_script("dataset/convert_exdark.py", "--image_dir", images, "--annotation_dir",
                        annotations, "--class_list", class_list, "--output_dir", tmp_path / "coco")
    assert_user_error(result, f"{class_list}:6:")
