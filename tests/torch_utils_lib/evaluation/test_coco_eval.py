"""Our evaluator's 12 stats equal a direct COCOeval on the same detections; GT scores AP 1.0."""
import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from torch_utils_lib.evaluation.metrics import STAT_NAMES

from torch_utils_lib.evaluation.coco_eval import CocoEvaluator
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images


def fake_outputs(dataset, rng, noise=3.0, drop=0.2, extra=1):
    """Detector-like outputs: jittered ground truth, some misses, some false positives."""
    targets, outputs = [], []
    for index in range(len(dataset)):
        _, target = dataset[index]
        n = len(target["boxes"])
        keep = rng.random(n) > drop
        boxes = target["boxes"][keep] + torch.from_numpy(rng.normal(0, noise, (int(keep.sum()), 4))).float()
        masks = target["masks"][keep].float()[:, None]
        labels = target["labels"][keep]
        fp_boxes = torch.from_numpy(rng.uniform(0, 100, (extra, 2))).float()
        fp_boxes = torch.cat([fp_boxes, fp_boxes + 20], 1)
        fp_masks = torch.zeros(extra, 1, *target["masks"].shape[-2:])
        for j, b in enumerate(fp_boxes.int().tolist()):
            fp_masks[j, 0, b[1]:b[3], b[0]:b[2]] = 1
        outputs.append({"boxes": torch.cat([boxes, fp_boxes]),
                        "labels": torch.cat([labels, torch.from_numpy(rng.integers(1, 4, extra))]),
                        "scores": torch.from_numpy(rng.uniform(0.05, 1, len(boxes) + extra)).float(),
                        "masks": torch.cat([masks, fp_masks])})
        targets.append(target)
    return targets, outputs


@pytest.fixture(scope="module")
def val_set():
    return CocoDetection(sample_images("val"), sample_annotation("val"))


def direct_cocoeval(annotation, results_file, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotation)
        dt = gt.loadRes(results_file)
        e = COCOeval(gt, dt, iou_type)
        e.evaluate(), e.accumulate(), e.summarize()
    return dict(zip(STAT_NAMES, e.stats))


def test_stats_equal_direct_cocoeval_on_dumped_detections(val_set, tmp_path):
    targets, outputs = fake_outputs(val_set, np.random.default_rng(0))
    evaluator = CocoEvaluator(val_set, ("bbox", "segm"))
    evaluator.update(targets, outputs)
    stats = evaluator.summarize()
    paths = evaluator.dump(str(tmp_path / "det"), "val")
    for iou_type in ("bbox", "segm"):
        reference = direct_cocoeval(sample_annotation("val"), paths[iou_type], iou_type)
        assert set(stats[iou_type]) == set(STAT_NAMES)
        for name in STAT_NAMES:
            assert stats[iou_type][name] == pytest.approx(reference[name], abs=1e-12), (iou_type, name)
        assert 0.2 < stats[iou_type]["AP50"] < 0.95  # a real, imperfect score


def test_faster_coco_eval_backend_gives_the_same_stats(val_set):
    targets, outputs = fake_outputs(val_set, np.random.default_rng(1))
    results, per_category = {}, {}
    for backend in ("pycocotools", "faster_coco_eval"):
        evaluator = CocoEvaluator(val_set, ("bbox", "segm"), backend=backend)
        evaluator.update(targets, outputs)
        results[backend] = evaluator.summarize()
        per_category[backend] = {}
        assert evaluator.summarize(per_category=per_category[backend]) == results[backend]
    for iou_type in ("bbox", "segm"):
        for name in STAT_NAMES:
            assert results["faster_coco_eval"][iou_type][name] == pytest.approx(
                results["pycocotools"][iou_type][name], abs=1e-6), (iou_type, name)
        reference = per_category["pycocotools"][iou_type]
        assert list(per_category["faster_coco_eval"][iou_type]) == list(reference)
        for name, stats in per_category["faster_coco_eval"][iou_type].items():
            assert stats == pytest.approx(reference[name], abs=1e-6), (iou_type, name)


def test_ground_truth_as_detections_scores_one(val_set):
    targets, outputs = fake_outputs(val_set, np.random.default_rng(2), noise=0.0, drop=0.0, extra=0)
    evaluator = CocoEvaluator(val_set, ("bbox", "segm"))
    evaluator.update(targets, outputs)
    stats = evaluator.summarize()
    for iou_type in ("bbox", "segm"):
        assert stats[iou_type]["AP"] == pytest.approx(1.0)
        assert stats[iou_type]["AR100"] == pytest.approx(1.0)


def test_no_detections_scores_zero(val_set):
    evaluator = CocoEvaluator(val_set, ("bbox",))
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}
    evaluator.update([{"image_id": i} for i in val_set.image_ids], [empty] * len(val_set))
    assert evaluator.summarize()["bbox"]["AP"] == 0.0


def test_string_image_ids_are_written_back(tmp_path):
    from PIL import Image
    (tmp_path / "im").mkdir()
    Image.new("RGB", (30, 20)).save(tmp_path / "im" / "DSC1.png")
    ann = {"images": [{"id": "DSC1", "file_name": "DSC1.png", "width": 30, "height": 20}],
           "annotations": [{"id": 5, "image_id": "DSC1", "category_id": 3, "bbox": [2, 3, 10, 8]}],
           "categories": [{"id": 3, "name": "car"}]}
    (tmp_path / "a.json").write_text(json.dumps(ann))
    dataset = CocoDetection(str(tmp_path / "im"), str(tmp_path / "a.json"))
    evaluator = CocoEvaluator(dataset, ("bbox", "segm"))
    assert evaluator.iou_types == ("bbox",)  # no masks in a box-only set
    evaluator.update([{"image_id": 1}], [{"boxes": torch.tensor([[2., 3., 12., 11.]]),
                                          "labels": torch.tensor([1]), "scores": torch.tensor([0.9])}])
    assert evaluator.summarize()["bbox"]["AP"] == pytest.approx(1.0)
    dumped = json.loads(open(evaluator.dump(str(tmp_path / "r"), "val")["bbox"]).read())
    assert dumped == [{"image_id": "DSC1", "category_id": 3, "bbox": [2.0, 3.0, 10.0, 8.0], "score": pytest.approx(0.9)}]


def direct_cocoeval_of_one_category(annotation, results_file, iou_type, category_id):
    """pycocotools' own summary with params.catIds restricted to one category."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotation)
        e = COCOeval(gt, gt.loadRes(results_file), iou_type)
        e.params.catIds = [category_id]
        e.evaluate(), e.accumulate(), e.summarize()
    return dict(zip(STAT_NAMES, e.stats))


def test_per_category_ap_equals_cocoeval_restricted_to_that_category(tmp_path):
    coco = json.load(open(sample_annotation("val")))
    coco["images"] = coco["images"][:4]  # a tiny set
    kept = {i["id"] for i in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in kept]
    coco["categories"].append({"id": 9, "name": "never annotated"})
    annotation = tmp_path / "tiny.json"
    annotation.write_text(json.dumps(coco))
    dataset = CocoDetection(sample_images("val"), str(annotation))
    targets, outputs = fake_outputs(dataset, np.random.default_rng(3), noise=4.0)
    evaluator = CocoEvaluator(dataset, ("bbox", "segm"))
    evaluator.update(targets, outputs)
    per_category = {}
    stats = evaluator.summarize(per_category=per_category)
    assert stats == evaluator.summarize()
    paths = evaluator.dump(str(tmp_path / "det"), "val")
    names = {c["id"]: c["name"] for c in coco["categories"]}
    used = sorted({a["category_id"] for a in coco["annotations"]})
    assert len(used) >= 2
    for iou_type in ("bbox", "segm"):
        assert list(per_category[iou_type]) == [names[c] for c in used]  # no ground truth: left out
        for category_id in used:
            direct = direct_cocoeval_of_one_category(str(annotation), paths[iou_type], iou_type,
                                                     category_id)
            for stat in ("AP", "AP50", "AP75"):
                assert per_category[iou_type][names[category_id]][stat] == direct[stat], (
                    iou_type, category_id, stat)
        values = [v["AP"] for v in per_category[iou_type].values()]
        assert 0 < min(values) < 1 and len(set(values)) > 1  # real, distinct scores
