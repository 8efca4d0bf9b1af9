"""AP per real condition (study/conditions.py): each lighting value's images scored on their own,
every row with its interval and the paired difference against none, and the report's table."""
import json

from study.conditions import condition_tables, image_conditions
from study.report import condition_rows, condition_text
from study import sets

LIGHTING = ["Low", "Low", "Twilight", "Twilight", "Low"]


def write_set(tmp_path):
    """5 images with one box each and a lighting field; none finds the Low boxes only, gamma
    finds every box."""
    images = [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 64, "lighting": light,
               "scene": "indoor"} for i, light in enumerate(LIGHTING, 1)]
    boxes = {i: [4.0 + i, 6.0, 20.0, 24.0] for i in range(1, 6)}
    annotation = {"images": images, "categories": [{"id": 1, "name": "circle"}],
                  "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": box,
                                   "area": box[2] * box[3], "iscrowd": 0}
                                  for i, box in boxes.items()]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(annotation))
    rows = {}
    for row, found in (("none", [1, 2, 5]), ("gamma", [1, 2, 3, 4, 5])):
        detections = tmp_path / f"{row}.json"
        detections.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": boxes[i],
                                           "score": 0.9} for i in found]))
        rows[row] = {"exdark": {"bbox": {}, "detections": {"bbox": str(detections)}}}
    return path, rows


def test_each_condition_is_scored_on_its_own_images_with_paired_differences(tmp_path):
    annotation, rows = write_set(tmp_path)
    test_set = sets.TestSet("exdark", str(tmp_path), str(annotation))
    assert image_conditions(json.loads(annotation.read_text())) == {
        "lighting": {"Low": [1, 2, 5], "Twilight": [3, 4]}, "scene": {"indoor": [1, 2, 3, 4, 5]}}
    tables = condition_tables([test_set], rows, n=50, seed=1)["exdark"]
    low, twilight = tables["lighting"]["Low"], tables["lighting"]["Twilight"]
    assert (low["images"], twilight["images"]) == (3, 2)
    assert low["rows"]["none"]["AP"] == low["rows"]["gamma"]["AP"] == 1.0
    assert low["rows"]["none"]["AP_ci"] == [1.0, 1.0]
    assert twilight["rows"]["none"]["AP"] == 0.0 and twilight["rows"]["gamma"]["AP"] == 1.0
    assert twilight["rows"]["gamma"]["vs_none"]["AP"]["delta"] == 1.0
    assert twilight["rows"]["gamma"]["vs_none"]["AP"]["ci"] == [1.0, 1.0]
    assert "vs_none" not in twilight["rows"]["none"]
    whole = tables["scene"]["indoor"]["rows"]["none"]["AP"]
    assert 0.0 < whole < 1.0  # 3 of the 5 boxes
    table = condition_rows(tables["lighting"])
    assert table["gamma"]["Twilight (2 images)"] == "1.000 [1.000, 1.000] ▲"
    assert table["none"]["Low (3 images)"] == "1.000 [1.000, 1.000]"
    text = "\n".join(condition_text({"exdark": tables}))
    assert "### exdark: lighting" in text and "### exdark: scene" in text
    assert condition_tables([test_set], rows, n=0) == {}  # no intervals, no table


def test_a_set_without_condition_fields_gets_no_table(tmp_path):
    annotation, rows = write_set(tmp_path)
    coco = json.loads(annotation.read_text())
    for image in coco["images"][1:]:  # only one image carries the fields: no condition
        image.pop("lighting"), image.pop("scene")
    annotation.write_text(json.dumps(coco))
    assert condition_tables([sets.TestSet("exdark", str(tmp_path), str(annotation))], rows, n=20) == {}
