"""Dataset classes match detector classes by name and synonym, never by id alone."""
import json

import pytest

from torch_utils_lib.data.categories import load_category_map, match_categories, present_categories
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.models.detectors import COCO_CATEGORY_NAMES

# LIS numbers its VOC-named classes from 0: ids 1..7 are COCO's person..train under other names.
LIS = [{"id": i, "name": n} for i, n in enumerate(
    ["bicycle", "chair", "diningtable", "bottle", "motorbike", "car", "tvmonitor", "bus"])]
EXDARK = [{"id": i, "name": n} for i, n in enumerate(
    ["Bicycle", "Boat", "Bottle", "Bus", "Car", "Cat", "Chair", "Cup", "Dog", "Motorbike", "People",
     "Table"], 1)]


def coco_label(name):
    return COCO_CATEGORY_NAMES.index(name)


def test_lis_ids_colliding_with_coco_map_by_name():
    label_map = match_categories(LIS, COCO_CATEGORY_NAMES)
    assert label_map == {0: coco_label("bicycle"), 1: coco_label("chair"),
                         2: coco_label("dining table"), 3: coco_label("bottle"),
                         4: coco_label("motorcycle"), 5: coco_label("car"), 6: coco_label("tv"),
                         7: coco_label("bus")}
    assert label_map[1] != 1 and label_map[5] != 5  # not person, not airplane


def test_exdark_names_map_case_insensitively():
    label_map = match_categories(EXDARK, COCO_CATEGORY_NAMES)
    assert label_map[11] == coco_label("person") and label_map[12] == coco_label("dining table")
    assert label_map[8] == coco_label("cup") and label_map[10] == coco_label("motorcycle")
    assert len(set(label_map.values())) == 12


def test_unknown_class_is_one_line_naming_it_and_the_flag(tmp_path):
    with pytest.raises(UserError) as error:
        match_categories([{"id": 0, "name": "unicorn"}], COCO_CATEGORY_NAMES, source="a.json")
    message = str(error.value)
    assert "'unicorn'" in message and "--category_map" in message and "\n" not in message
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"unicorn": "horse", "Table": "bench"}))
    mapping = load_category_map(str(path))
    assert match_categories([{"id": 0, "name": "unicorn"}], COCO_CATEGORY_NAMES, mapping) == {
        0: coco_label("horse")}
    assert match_categories(EXDARK, COCO_CATEGORY_NAMES, mapping)[12] == coco_label("bench")


def test_two_classes_onto_one_detector_class_is_refused():
    with pytest.raises(UserError, match="both map"):
        match_categories([{"id": 0, "name": "table"}, {"id": 1, "name": "dining table"}],
                         COCO_CATEGORY_NAMES)


def test_bad_category_map_file(tmp_path):
    path = tmp_path / "map.json"
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="category map"):
        load_category_map(str(path))


def test_a_file_without_annotations_matches_every_listed_category_by_name(tmp_path):
    categories = [{"id": 0, "name": "chair"}, {"id": 1, "name": "car"}]
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
            "annotations": [], "categories": categories}
    assert present_categories(coco) == categories
    label_map = match_categories(present_categories(coco), COCO_CATEGORY_NAMES)
    assert label_map == {0: COCO_CATEGORY_NAMES.index("chair"), 1: COCO_CATEGORY_NAMES.index("car")}
    with pytest.raises(UserError, match="lists no categories"):
        match_categories([], COCO_CATEGORY_NAMES, source="x.json")
    (tmp_path / "a.json").write_text(json.dumps(coco))
    (tmp_path / "images").mkdir()
    assert CocoDetection(str(tmp_path / "images"), str(tmp_path / "a.json"), label_map={}).label_map == {}
