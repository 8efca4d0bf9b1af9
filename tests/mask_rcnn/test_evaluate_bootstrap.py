"""mask_rcnn/evaluate.py --bootstrap: AP with its 95% interval, the paired drop, `_ci` and
`vs_normal` in the JSON."""
import json
import re

import pytest
import torch

from tests.helpers import run_script
from torch_utils_lib.runtime.checkpoint import save_checkpoint
from torch_utils_lib.evaluation.coco_bootstrap import difference_summary, interval_summary, resampled_stats
from torch_utils_lib.models.detectors import build_detector, detector_config
from torch_utils_lib.toolkit.paths import sample_annotation


def untrained_checkpoint(path):
    """A light Mask R-CNN at 64 px with random heads: many low-confidence detections, fast."""
    with open(sample_annotation("val")) as f:
        categories = sorted(json.load(f)["categories"], key=lambda c: c["id"])
    torch.manual_seed(0)
    model = build_detector("maskrcnn_resnet18_fpn", len(categories) + 1, "none", min_size=64, max_size=64)
    config = detector_config("maskrcnn_resnet18_fpn", ["__background__"] + [c["name"] for c in categories],
                             64, 64, [None] + [c["id"] for c in categories])
    save_checkpoint(path, model, config)
    return path


def val_subset(path, count=10):
    with open(sample_annotation("val")) as f:
        coco = json.load(f)
    coco["images"] = coco["images"][:count]
    ids = {image["id"] for image in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    path.write_text(json.dumps(coco))
    return coco


def test_evaluate_prints_intervals_and_keeps_them_in_the_json(tmp_path):
    weights = untrained_checkpoint(tmp_path / "untrained.pth")
    gt = val_subset(tmp_path / "val10.json")
    out = tmp_path / "eval"
    result = run_script("mask_rcnn/evaluate.py", "--weight_path", weights, "--output_dir", out,
                        "--annotation", tmp_path / "val10.json",
                        "--count", 0, "--pretrained", "none", "--bootstrap", 200, "--seed", 7,
                        "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    table = json.loads((out / "ap_table.json").read_text())
    stats, row = table["stats"]["checkpoint"], table["rows"]["checkpoint"]
    detections = {s: json.loads((out / "checkpoint" / f"detections_{s}_bbox.json").read_text())
                  for s in ("normal", "low_light")}
    assert sum(len(d) for d in detections.values()) > 0
    full, draws = resampled_stats(gt, detections, "bbox", n=200, seed=7)
    expected = interval_summary(full["normal"], draws["normal"])
    change = difference_summary(full["low_light"], full["normal"], draws["low_light"], draws["normal"])
    for stat in ("AP", "AP50", "AP75"):
        assert stats["normal"]["bbox"][f"{stat}_ci"] == pytest.approx(expected[f"{stat}_ci"], abs=1e-12)
        assert stats["normal"]["bbox"][stat] == pytest.approx(expected[stat], abs=1e-12)
        low, high = stats["low_light"]["segm"][f"{stat}_ci"]
        assert low <= stats["low_light"]["segm"][stat] <= high
        vs_normal = stats["low_light"]["bbox"]["vs_normal"][stat]
        assert vs_normal["ci"] == pytest.approx(change[stat]["ci"], abs=1e-12)
        assert vs_normal["delta"] == pytest.approx(-row[f"bbox {stat} drop"], abs=1e-12)
        assert row[f"bbox {stat} drop_ci"] == pytest.approx([-vs_normal["ci"][1], -vs_normal["ci"][0]], abs=1e-15)
        assert "vs_normal" not in stats["normal"]["bbox"]
    ap, (low, high) = stats["normal"]["bbox"]["AP"], stats["normal"]["bbox"]["AP_ci"]
    assert f"{ap:.3f} [{low:.3f}, {high:.3f}]" in result.stdout
    low, high = row["bbox AP drop_ci"]
    assert f"{row['bbox AP drop']:.3f} [{low:.3f}, {high:.3f}]" in result.stdout
    assert re.search(r"\| checkpoint \| -?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\] \|", result.stdout)


def test_image_sets_print_the_paired_difference_against_normal(tmp_path):
    from torch_utils_lib.toolkit.paths import sample_images, sample_low_light
    weights = untrained_checkpoint(tmp_path / "untrained.pth")
    val_subset(tmp_path / "val10.json")
    out = tmp_path / "eval"
    result = run_script("mask_rcnn/evaluate.py", "--weight_path", weights, "--output_dir", out,
                        "--annotation", tmp_path / "val10.json",
                        "--image_set", f"normal={sample_images('val')}",
                        "--image_set", f"dark={sample_low_light('val')}",
                        "--count", 0, "--pretrained", "none", "--bootstrap", 200, "--seed", 7,
                        "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    table = json.loads((out / "ap_table.json").read_text())
    stats, rows = table["stats"]["checkpoint"], table["rows"]
    assert "bbox ΔAP vs normal" not in rows["checkpoint | normal"]
    for iou_type in ("bbox", "segm"):
        for stat in ("AP", "AP50", "AP75"):
            difference = stats["dark"][iou_type]["vs_normal"][stat]
            column = f"{iou_type} Δ{stat} vs normal"
            assert rows["checkpoint | dark"][column] == difference["delta"]
            assert rows["checkpoint | dark"][column + "_ci"] == difference["ci"]
    difference = stats["dark"]["bbox"]["vs_normal"]["AP"]
    low, high = difference["ci"]
    printed = f"{difference['delta']:.3f} [{low:.3f}, {high:.3f}]"
    printed += " (n.s.)" if low <= 0 <= high else ""
    header = next(line for line in result.stdout.splitlines() if line.startswith("| model"))
    dark = next(line for line in result.stdout.splitlines() if line.startswith("| checkpoint \\| dark"))
    cells = dict(zip(header.split(" | "), dark.split(" | ")))
    assert cells["bbox ΔAP vs normal"] == printed
