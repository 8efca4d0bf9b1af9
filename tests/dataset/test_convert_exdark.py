"""ExDark's per-image text files and class list become one COCO json per split."""
import hashlib
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


def _convert(exdark, out):
    return run_script("dataset/convert_exdark.py", "--image_dir", exdark / "images", "--annotation_dir",
                      exdark / "annotations", "--class_list", exdark / "imageclasslist.txt",
                      "--output_dir", out)


def _lines(exdark):
    return (exdark / "imageclasslist.txt").read_text().splitlines()


def _annotation(exdark, line):
    """The annotation file of the class list's line `line` (1: the header)."""
    name = _lines(exdark)[line - 1].split()[0]
    return next((exdark / "annotations").rglob(name + ".txt"))


def _digest(root):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _in_two_splits(exdark):
    with open(exdark / "imageclasslist.txt", "a") as f:
        f.write(_lines(exdark)[2].rsplit(" ", 1)[0] + " 2\n")  # line 3's image in val too
    return [f"{exdark / 'imageclasslist.txt'}:6:", "is listed in val but line 3 puts it in test",
            "delete one line"]


def _annotation_not_utf8(exdark):
    path = _annotation(exdark, 2)
    path.write_bytes(b"% bbGt version=3\nCup 1 2 3 4 0 0 0 \xe9t\xe9 0 0 0\n")
    return [f"{path}:2: the annotation is not UTF-8 text (byte 0xe9)", "re-save it as UTF-8"]


def _class_list_not_utf8(exdark):
    path = exdark / "imageclasslist.txt"
    path.write_bytes(path.read_bytes() + b"caf\xe9.png 8 1 1 3\n")
    return [f"{path}:6: the class list is not UTF-8 text (byte 0xe9)"]


def _three_problems(exdark):
    first, second = _annotation(exdark, 2), _annotation(exdark, 4)
    first.write_text("% bbGt version=3\nCup 1 2 three 4 0 0 0 0 0 0 0\n")
    second.write_text("% bbGt version=3\nUnicorn 1 2 3 4 0 0 0 0 0 0 0\n")
    (exdark / "imageclasslist.txt").write_text("\n".join(_lines(exdark) + ["gone.png 8 1 1 3"]) + "\n")
    return [f"{first}:2:",
            "(and 2 more problem(s), listed above); nothing written"]


# each case breaks an ExDark-style set of 4 images and returns fragments of the error line
REFUSED = {"an image in two splits": _in_two_splits, "non-UTF-8 annotation": _annotation_not_utf8,
           "non-UTF-8 class list": _class_list_not_utf8, "three problems at once": _three_problems}


@pytest.mark.parametrize("case", list(REFUSED))
def test_dataset_problems_are_all_listed_and_nothing_is_written(sample, tmp_path, case):
    make_exdark_style_set(str(sample), "val", str(tmp_path / "exdark"))
    exdark = tmp_path / "exdark"
    fragments = REFUSED[case](exdark)
    before = _digest(exdark)
    result = _convert(exdark, tmp_path / "coco")
    assert result.returncode == 2
    assert_user_error(result, *fragments)
    assert _digest(exdark) == before
    assert not (tmp_path / "coco").exists()
    if case == "three problems at once":
        listed = [l for l in result.stderr.splitlines() if l.startswith("problem: ")]
        assert len(listed) == 3 and "gone.png" in listed[2] and "Unicorn" in listed[1]


def _strict_json(path):
    def refuse(constant):
        raise AssertionError(f"{path}: {constant} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_bad_boxes_are_dropped_or_clipped_and_counted(sample, tmp_path):
    make_exdark_style_set(str(sample), "val", str(tmp_path / "exdark"))
    exdark = tmp_path / "exdark"
    path = _annotation(exdark, 3)  # a test image, 64x64
    path.write_text("% bbGt version=3\n" + "".join(
        f"Cup {box} 0 0 0 0 0 0 0\n" for box in
        ("NaN 2 3 4", "1 inf 3 4", "10 10 -5 4", "10 10 0 4", "70 2 5 5",  # dropped
         "-4 60 10 10",  # clipped to [0, 60, 6, 4]
         "5 6 7 8")))  # kept
    result = _convert(exdark, tmp_path / "coco")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: 5 boxes dropped" in result.stderr and "warning: 1 boxes clipped" in result.stderr
    test = _strict_json(tmp_path / "coco" / "instances_test.json")
    image = next(i for i in test["images"] if i["file_name"].endswith(path.name[:-4]))
    boxes = [(a["bbox"], a["area"]) for a in test["annotations"] if a["image_id"] == image["id"]]
    assert boxes == [([0.0, 60.0, 6.0, 4.0], 24.0), ([5.0, 6.0, 7.0, 8.0], 56.0)]
    report = json.loads((tmp_path / "coco" / "conversion.json").read_text())
    assert [line.split(": ")[0] for line in report["dropped_boxes"]] == [f"{path}:{n}" for n in range(2, 7)]
    assert report["clipped_boxes"] == [f"{path}:7: [-4.0, 60.0, 10.0, 10.0] to [0.0, 60.0, 6.0, 4.0]"]


def test_header_by_content_repeats_once_crlf_and_extension_case(sample, tmp_path):
    make_exdark_style_set(str(sample), "val", str(tmp_path / "exdark"))
    exdark = tmp_path / "exdark"
    lines = _lines(exdark)
    entries = lines[1:] + [lines[4]]  # no header; the last image listed twice in its split
    entries[1] = entries[1].replace(".png", ".PNG", 1)  # ExDark spells extensions five ways
    (exdark / "imageclasslist.txt").write_bytes(("\r\n".join(entries) + "\r\n").encode())
    result = _convert(exdark, tmp_path / "coco")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: 1 repeated lines of the class list, kept once" in result.stderr
    sets = {s: _strict_json(tmp_path / "coco" / f"instances_{s}.json") for s in ("train", "val", "test")}
    assert [len(sets[s]["images"]) for s in ("train", "val", "test")] == [1, 0, 3]  # line 1 kept
    names = [i["file_name"] for s in sets.values() for i in s["images"]]
    assert len(names) == len(set(names)) == 4


def test_lighting_type_and_scene_are_kept_by_name(sample, tmp_path):
    """imageclasslist.txt's light (1-10) and in/out (1-2) columns become images[].lighting and
    images[].scene; the list as ExDark ships it: a header line and CRLF endings."""
    make_exdark_style_set(str(sample), "val", str(tmp_path / "exdark"))
    exdark = tmp_path / "exdark"
    lines = _lines(exdark)
    conditions = [("10", "1"), ("4", "2"), ("1", "2"), ("9", "1")]
    entries = [lines[0]] + [" ".join([f[0], f[1], light, scene, f[4]])
                            for f, (light, scene) in zip((l.split() for l in lines[1:]), conditions)]
    (exdark / "imageclasslist.txt").write_bytes(("\r\n".join(entries) + "\r\n").encode())
    result = _convert(exdark, tmp_path / "coco")
    assert result.returncode == 0, result.stderr[-2000:]
    expected = {e.split()[0]: (name, scene) for e, name, scene in zip(
        entries[1:], ("Twilight", "Single", "Low", "Shadow"),
        ("indoor", "outdoor", "outdoor", "indoor"))}
    got = {}
    for split in ("train", "val", "test"):
        for image in _strict_json(tmp_path / "coco" / f"instances_{split}.json")["images"]:
            got[image["file_name"].split("/")[1]] = (image["lighting"], image["scene"])
    assert got == expected
    entries.append(entries[1].replace(" 10 1 ", " 11 1 ", 1))  # no 11th lighting type
    (exdark / "imageclasslist.txt").write_bytes(("\r\n".join(entries) + "\r\n").encode())
    assert_user_error(_convert(exdark, tmp_path / "coco2"), f"{exdark / 'imageclasslist.txt'}:6:",
                      "light 1-10")
    assert not (tmp_path / "coco2").exists()
