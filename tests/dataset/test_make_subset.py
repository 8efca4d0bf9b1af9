"""dataset/make_subset.py: seeded COCO subsets by count, id list and exact size."""
import json
import os
import subprocess
import sys

import pytest

from dataset.make_subset import main as subset_main
from dataset.make_subset import parse_ids, parse_size, select_images
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.paths import REPO_ROOT, sample_annotation, sample_images


def _full():
    """The sample train annotation with a few image sizes changed, to exercise --size."""
    with open(sample_annotation("train")) as f:
        dataset = json.load(f)
    for image in dataset["images"][::4]:
        image["width"], image["height"] = 640, 480
    return dataset


def test_count_selection_is_seeded_and_complete(tmp_path):
    dataset = _full()
    a = select_images(dataset, num_images=10, seed=3)
    assert [i["id"] for i in a] == [i["id"] for i in select_images(dataset, num_images=10, seed=3)]
    assert [i["id"] for i in a] != [i["id"] for i in select_images(dataset, num_images=10, seed=4)]
    assert len({i["id"] for i in a}) == 10 and [i["id"] for i in a] == sorted(i["id"] for i in a)
    sized = select_images(dataset, num_images=16, size=(640, 480), seed=0)
    assert len(sized) == 16 and all((i["width"], i["height"]) == (640, 480) for i in sized)
    with pytest.raises(UserError, match="only 16 image"):
        select_images(dataset, num_images=17, size=(640, 480))


def test_cli_writes_annotation_and_copies_images(tmp_path):
    out = tmp_path / "subset"
    subset_main(["--num_images", "5", "--output_dir", str(out), "--seed", "1"])
    result = json.loads((out / "annotations.json").read_text())
    with open(sample_annotation("train")) as f:
        full = json.load(f)
    ids = {i["id"] for i in result["images"]}
    assert len(ids) == 5 and result["categories"] == full["categories"]
    assert result["annotations"] == [a for a in full["annotations"] if a["image_id"] in ids]
    copied = sorted(os.listdir(out / "images"))
    assert copied == sorted(i["file_name"] for i in result["images"])
    for name in copied:
        assert (out / "images" / name).read_bytes() == open(os.path.join(sample_images("train"), name), "rb").read()
    assert (out / "run.json").is_file()
    # by ids, from a file
    (tmp_path / "ids.txt").write_text("7\n3, 12\n")
    subset_main(["--image_ids", f"@{tmp_path / 'ids.txt'}", "--output_dir", str(tmp_path / "b"), "--no_copy"])
    assert [i["id"] for i in json.loads((tmp_path / "b" / "annotations.json").read_text())["images"]] == [3, 7, 12]
    assert not (tmp_path / "b" / "images").exists()


def test_parsers_and_errors(tmp_path):
    assert parse_size("640x480") == (640, 480)
    assert parse_ids("1, 2,3") == [1, 2, 3]
    with pytest.raises(UserError, match="WIDTHxHEIGHT"):
        parse_size("640")
    with pytest.raises(UserError, match="not an integer"):
        parse_ids("1,b")
    (tmp_path / "bad.json").write_text("{")
    for args, message in ((["--annotation", str(tmp_path / "bad.json")], "not valid JSON"),
                          (["--image_ids", "999999"], "not among the eligible"),
                          (["--num_images", "65"], "only 64 image")):
        result = subprocess.run([sys.executable, "dataset/make_subset.py", "--output_dir",
                                 str(tmp_path / "o"), *args], capture_output=True, text=True,
                                cwd=REPO_ROOT)
        assert result.returncode == 2 and result.stderr.startswith("error:") and message in result.stderr
        assert "Traceback" not in result.stderr
