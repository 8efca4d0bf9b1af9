"""study/score.py and evaluation/scoring.py: COCO stats equal pycocotools (bbox, RLE and polygon
segm, crowd), --by strata equal pycocotools on the subset, --result_classes matches by name, the
JSON has the study's shape, and every bad input is one line with nothing written."""
import json
import math

import numpy as np
import pytest

from bench.bench_scale import make_coco
from tests.helpers import run_script
from torch_utils_lib.data.coco_json import normalize_coco, subset_coco
from torch_utils_lib.evaluation.coco_eval import coco_stats
from torch_utils_lib.evaluation.scoring import load_results, score


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    gt, a, b = make_coco(12, seed=3)
    for n, image in enumerate(gt["images"]):
        image["light"] = ["dark", "twilight"][n % 2]
    for r in a[::7]:  # some masks as polygons, as detectors may write them
        x, y, w, h = r["bbox"]
        r["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    paths = {"gt": root / "gt.json", "a": root / "a.json", "b": root / "b.json"}
    for key, value in (("gt", gt), ("a", a), ("b", b)):
        paths[key].write_text(json.dumps(value))
    return root, paths, gt, a, b


def test_coco_stats_equal_pycocotools_and_strata_equal_the_subset(files):
    root, paths, gt_raw, a, _ = files
    gt, results, iou_types = load_results(str(paths["gt"]), {"a": str(paths["a"]), "b": str(paths["b"])})
    assert iou_types == ("bbox", "segm")
    assert any(r.get("iscrowd") for r in gt["annotations"])
    out = score(gt, results, iou_types, n=20, seed=0, baseline="a", by="light")
    for iou_type in iou_types:
        for name in ("a", "b"):
            expected = coco_stats(gt, results[name][iou_type], iou_type)
            row = out["rows"][name][iou_type]
            for stat in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
                assert row[stat] == pytest.approx(expected[stat], abs=1e-12), (iou_type, name, stat)
                assert row[f"{stat}_ci"][0] <= row[f"{stat}_ci"][1]
        difference = out["rows"]["b"][iou_type]["vs_a"]["AP"]
        assert difference["delta"] == pytest.approx(out["rows"]["b"][iou_type]["AP"]
                                                    - out["rows"]["a"][iou_type]["AP"])
        assert 0 <= difference["share_le_0"] <= 1 and "vs_a" not in out["rows"]["a"][iou_type]
        dark = subset_coco(gt, [i["id"] for i in gt["images"] if i["light"] == "dark"])
        ids = {i["id"] for i in dark["images"]}
        expected = coco_stats(dark, [r for r in results["b"][iou_type] if r["image_id"] in ids], iou_type)
        assert out["strata"]["light"]["dark"]["b"][iou_type]["AP"] == pytest.approx(expected["AP"], abs=1e-12)
        assert "vs_a" in out["strata"]["light"]["twilight"]["b"][iou_type]
    per_category = out["per_category"]["a"]["bbox"]
    assert per_category and all(0 <= v["AP"] <= 1 for v in per_category.values())


def test_result_classes_match_by_name(files, tmp_path):
    root, paths, gt_raw, a, _ = files
    names = {c["id"]: c["name"] for c in gt_raw["categories"]}
    order = sorted(names.values(), reverse=True)  # another order than the annotation's ids
    (tmp_path / "classes.txt").write_text("\n".join(order) + "\n")
    indexed = [{**r, "category_id": order.index(names[r["category_id"]])} for r in a]
    (tmp_path / "yolo.json").write_text(json.dumps(indexed))
    by_id = run_script("study/score.py", "--annotation", paths["gt"], "--detections", f"a={paths['a']}",
                       "--iou_types", "bbox", "--bootstrap", "10", "--output_dir", tmp_path / "id")
    by_name = run_script("study/score.py", "--annotation", paths["gt"], "--detections",
                         f"a={tmp_path / 'yolo.json'}", "--iou_types", "bbox", "--bootstrap", "10",
                         "--result_classes", tmp_path / "classes.txt", "--output_dir", tmp_path / "name")
    assert by_id.returncode == 0 and by_name.returncode == 0, by_name.stderr[-2000:]
    first = json.loads((tmp_path / "id" / "score.json").read_text())["rows"]["a"]["bbox"]
    second = json.loads((tmp_path / "name" / "score.json").read_text())["rows"]["a"]["bbox"]
    assert first == second


def test_script_writes_the_study_shape_and_the_forest_plot(files, tmp_path):
    root, paths, *_ = files
    out = tmp_path / "out"
    result = run_script("study/score.py", "--annotation", paths["gt"], "--detections", f"a={paths['a']}",
                        "--detections", f"b={paths['b']}", "--baseline", "a", "--bootstrap", "20",
                        "--by", "light", "--output_dir", out)
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((out / "score.json").read_text())
    row = saved["rows"]["b"]["segm"]
    assert set(row["vs_a"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert set(row["vs_a"]["AP"]) == {"delta", "ci", "share_le_0"} and len(row["AP_ci"]) == 2
    assert set(saved["strata"]["light"]) == {"dark", "twilight"}
    assert (out / "score.png").stat().st_size > 1000 and (out / "score.md").exists()
    assert "Δ AP" in result.stdout and any(m in result.stdout for m in "▲▼·")


def test_voc_metric_names_its_stat(files, tmp_path):
    root, paths, *_ = files
    result = run_script("study/score.py", "--annotation", paths["gt"], "--detections", f"a={paths['a']}",
                        "--detections", f"b={paths['b']}", "--baseline", "a", "--bootstrap", "10",
                        "--metric", "voc07", "--output_dir", tmp_path / "voc")
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((tmp_path / "voc" / "score.json").read_text())
    assert saved["iou_types"] == ["bbox"]
    b = saved["rows"]["b"]["bbox"]
    assert 0 <= b["mAP_voc07"] <= 1 and "mAP_voc07" in b["vs_a"]


def bad(entry_change, files, tmp_path, name="bad.json"):
    root, paths, gt_raw, a, _ = files
    entries = [dict(r) for r in a]
    entry_change(entries)
    (tmp_path / name).write_text(json.dumps(entries))
    out = tmp_path / "never"
    result = run_script("study/score.py", "--annotation", paths["gt"], "--detections",
                        f"x={tmp_path / name}", "--output_dir", out)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not out.exists()
    return lines[0]


@pytest.mark.parametrize("change, fragments", [
    (lambda e: [r.update(image_id=999) for r in e[3:6]], ("entry 3", "image_id 999", "2 more")),
    (lambda e: e[5].update(category_id=12345), ("entry 5", "category_id 12345")),
    (lambda e: e[2].update(bbox=[1.0, float("nan"), 3.0, 4.0]), ("entry 2", "bbox")),
    (lambda e: e[4].update(bbox=[1.0, 2.0, -3.0, 4.0]), ("entry 4", "non-negative")),
    (lambda e: e[1].update(score=float("inf")), ("entry 1", "score")),
    (lambda e: e[0].update(segmentation={"size": [1, 1], "counts": "a"}), ("entry 0", "RLE")),
])
def test_bad_entries_are_one_line_naming_file_and_entry(files, tmp_path, change, fragments):
    line = bad(change, files, tmp_path)
    assert "bad.json" in line
    for fragment in fragments:
        assert fragment in line, line


def test_bad_flags_are_one_line(files, tmp_path):
    root, paths, *_ = files
    cases = [
        (["--detections", f"a={paths['a']}", "--baseline", "zzz"], "--baseline zzz"),
        (["--detections", f"a={paths['a']}", "--metric", "voc", "--iou_types", "segm"], "--iou_types segm"),
        (["--detections", f"a={paths['a']}", "--by", "nofield"], "nofield"),
        (["--detections", f"a={tmp_path / 'missing.json'}"], "missing.json"),
        (["--detections", f"a={paths['a']}", "--result_classes", tmp_path / "none.txt"], "none.txt"),
    ]
    for extra, fragment in cases:
        out = tmp_path / "never"
        result = run_script("study/score.py", "--annotation", paths["gt"], *extra, "--bootstrap", "5",
                            "--output_dir", out)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and fragment in lines[0], (extra, result.stderr)
        assert not out.exists()
