"""voc.VocMatches equals mmdetection's eval_map (re-implemented here, plainly, from
mmdet/evaluation/functional/mean_ap.py: tpfp_default, average_precision, eval_map with
use_legacy_coordinate=True), 'area' and '11points', on sets with score ties, ignored (crowd)
ground truth, a class without detections and a class without ground truth; and on duplicated
image sets it equals the weighted scorer exactly."""
import numpy as np
import pytest

from torch_utils_lib.evaluation.voc import VocMatches


# ---------------------------------------------------------------- the independent implementation

def bbox_overlaps_legacy(b1, b2):
    ious = np.zeros((b1.shape[0], b2.shape[0]), dtype=np.float32)
    if b1.shape[0] * b2.shape[0] == 0:
        return ious
    area1 = (b1[:, 2] - b1[:, 0] + 1) * (b1[:, 3] - b1[:, 1] + 1)
    area2 = (b2[:, 2] - b2[:, 0] + 1) * (b2[:, 3] - b2[:, 1] + 1)
    for i in range(b1.shape[0]):
        x_start = np.maximum(b1[i, 0], b2[:, 0])
        y_start = np.maximum(b1[i, 1], b2[:, 1])
        x_end = np.minimum(b1[i, 2], b2[:, 2])
        y_end = np.minimum(b1[i, 3], b2[:, 3])
        overlap = np.maximum(x_end - x_start + 1, 0) * np.maximum(y_end - y_start + 1, 0)
        union = np.maximum(area1[i] + area2 - overlap, np.finfo(np.float32).eps)
        ious[i, :] = overlap / union
    return ious


def tpfp_default(det_bboxes, gt_bboxes, gt_bboxes_ignore, iou_thr=0.5):
    gt_ignore_inds = np.concatenate((np.zeros(gt_bboxes.shape[0], dtype=bool),
                                     np.ones(gt_bboxes_ignore.shape[0], dtype=bool)))
    gt_bboxes = np.vstack((gt_bboxes, gt_bboxes_ignore))
    num_dets = det_bboxes.shape[0]
    tp = np.zeros((1, num_dets), dtype=np.float32)
    fp = np.zeros((1, num_dets), dtype=np.float32)
    if gt_bboxes.shape[0] == 0:
        fp[...] = 1
        return tp, fp
    ious = bbox_overlaps_legacy(det_bboxes, gt_bboxes)
    ious_max = ious.max(axis=1)
    ious_argmax = ious.argmax(axis=1)
    sort_inds = np.argsort(-det_bboxes[:, -1], kind="stable")  # mmdet: np.argsort (ties: numpy's)
    gt_covered = np.zeros(gt_bboxes.shape[0], dtype=bool)
    for i in sort_inds:
        if ious_max[i] >= iou_thr:
            matched_gt = ious_argmax[i]
            if not gt_ignore_inds[matched_gt]:
                if not gt_covered[matched_gt]:
                    gt_covered[matched_gt] = True
                    tp[0, i] = 1
                else:
                    fp[0, i] = 1
        else:
            fp[0, i] = 1
    return tp, fp


def average_precision(recalls, precisions, mode):
    if mode == "area":
        mrec = np.hstack(([0.0], recalls, [1.0]))
        mpre = np.hstack(([0.0], precisions, [0.0]))
        for i in range(mpre.shape[0] - 1, 0, -1):
            mpre[i - 1] = max(mpre[i - 1], mpre[i])
        ind = np.where(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[ind + 1] - mrec[ind]) * mpre[ind + 1]))
    ap = 0.0
    for thr in np.arange(0, 1 + 1e-3, 0.1):
        precs = precisions[recalls >= thr]
        ap += precs.max() if precs.size > 0 else 0
    return ap / 11


def eval_map(det_results, annotations, mode):
    """det_results[image][class]: (n, 5) [x1, y1, x2, y2, score]; annotations[image]: bboxes,
    labels, bboxes_ignore, labels_ignore."""
    num_classes = len(det_results[0])
    aps = []
    for c in range(num_classes):
        cls_dets = [d[c] for d in det_results]
        cls_gts = [a["bboxes"][a["labels"] == c] for a in annotations]
        cls_ignore = [a["bboxes_ignore"][a["labels_ignore"] == c] for a in annotations]
        tpfp = [tpfp_default(d, g, i) for d, g, i in zip(cls_dets, cls_gts, cls_ignore)]
        tp, fp = tuple(zip(*tpfp))
        num_gts = sum(g.shape[0] for g in cls_gts)
        cls_dets = np.vstack(cls_dets)
        sort_inds = np.argsort(-cls_dets[:, -1], kind="stable")
        tp = np.cumsum(np.hstack(tp)[:, sort_inds], axis=1)[0]
        fp = np.cumsum(np.hstack(fp)[:, sort_inds], axis=1)[0]
        eps = np.finfo(np.float32).eps
        recalls = tp / np.maximum(num_gts, eps)
        precisions = tp / np.maximum(tp + fp, eps)
        if num_gts > 0:
            aps.append(average_precision(recalls, precisions, mode))
    return float(np.mean(aps)) if aps else 0.0


def to_mmdet(gt, results, image_order):
    """eval_map's inputs of a COCO gt dict and results list (images in `image_order`, repeats
    allowed), classes in sorted id order, crowd ground truth as ignored."""
    classes = sorted(c["id"] for c in gt["categories"])
    det_results, annotations = [], []
    for image_id in image_order:
        per_class = []
        for c in classes:
            rows = [[*xyxy(r["bbox"]), r["score"]] for r in results
                    if r["image_id"] == image_id and r["category_id"] == c]
            per_class.append(np.array(rows, dtype=np.float64).reshape(-1, 5))
        det_results.append(per_class)
        anns = [a for a in gt["annotations"] if a["image_id"] == image_id]
        kept = [a for a in anns if not a.get("iscrowd")]
        ignored = [a for a in anns if a.get("iscrowd")]
        annotations.append({
            "bboxes": np.array([xyxy(a["bbox"]) for a in kept], float).reshape(-1, 4),
            "labels": np.array([classes.index(a["category_id"]) for a in kept], int),
            "bboxes_ignore": np.array([xyxy(a["bbox"]) for a in ignored], float).reshape(-1, 4),
            "labels_ignore": np.array([classes.index(a["category_id"]) for a in ignored], int)})
    return det_results, annotations


def xyxy(b):
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


# ---------------------------------------------------------------- generated sets

def make_set(seed, n_images=12):
    """Boxes on integer-ish coordinates (legacy +1 matters), crowd ground truth, score ties,
    class 3 with ground truth and no detections, class 4 with detections and no ground truth."""
    rng = np.random.default_rng(seed)
    categories = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3, 4)]
    images = [{"id": 10 + i, "width": 200, "height": 150, "file_name": f"{i}.jpg"}
              for i in range(n_images)]
    anns, results = [], []
    for image in images:
        for _ in range(rng.integers(1, 5)):
            c = int(rng.choice([1, 2, 3]))
            x, y = rng.integers(0, 150), rng.integers(0, 100)
            w, h = rng.integers(5, 50), rng.integers(5, 50)
            crowd = int(rng.random() < 0.15)
            anns.append({"id": len(anns) + 1, "image_id": image["id"], "category_id": c,
                         "bbox": [float(x), float(y), float(w), float(h)], "iscrowd": crowd,
                         "area": float(w * h)})
            if c != 3:
                for _ in range(rng.integers(0, 3)):  # near copies: duplicates become false positives
                    j = rng.integers(-4, 5, 4)
                    results.append({"image_id": image["id"], "category_id": c,
                                    "bbox": [float(x + j[0]), float(y + j[1]),
                                             float(max(w + j[2], 1)), float(max(h + j[3], 1))],
                                    "score": float(rng.choice([0.9, 0.5, 0.3, rng.random()]))})
        for _ in range(rng.integers(0, 4)):
            results.append({"image_id": image["id"], "category_id": int(rng.choice([1, 2, 4])),
                            "bbox": [float(rng.integers(0, 150)), float(rng.integers(0, 100)),
                                     float(rng.integers(3, 40)), float(rng.integers(3, 40))],
                            "score": float(rng.choice([0.9, 0.5, rng.random()]))})
    return {"images": images, "annotations": anns, "categories": categories}, results


@pytest.mark.parametrize("metric, mode", [("voc", "area"), ("voc07", "11points")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_voc_equals_mmdetection_eval_map(metric, mode, seed):
    gt, results = make_set(seed)
    scores = [r["score"] for r in results]
    assert len(scores) > len(set(scores))  # ties
    assert any(a["iscrowd"] for a in gt["annotations"])
    matches = VocMatches(gt, results, metric)
    order = sorted(i["id"] for i in gt["images"])
    expected = eval_map(*to_mmdet(gt, results, order), mode)
    assert matches.stats(np.ones((1, len(order)), dtype=np.int64))[0, 0] == pytest.approx(expected, abs=1e-6)  # mmdet: float32 precision
    per_class = matches.category_stats({c["id"]: c["name"] for c in gt["categories"]})
    assert "c4" not in per_class and per_class["c3"][matches.stat_names[0]] == 0.0


@pytest.mark.parametrize("metric, mode", [("voc", "area"), ("voc07", "11points")])
def test_weighted_voc_equals_eval_map_on_duplicated_images(metric, mode):
    gt, results = make_set(5)
    # ties across images stay; ties inside one image and class would be ordered copy after copy
    # in the repeated list but detection after detection by the weights (documented in voc.py)
    seen = {}
    for r in results:
        seen[r["image_id"]] = seen.get(r["image_id"], 0) + 1
        r["score"] += 1e-9 * seen[r["image_id"]]
    matches = VocMatches(gt, results, metric)
    order = sorted(i["id"] for i in gt["images"])
    rng = np.random.default_rng(3)
    weights = rng.multinomial(len(order), np.full(len(order), 1 / len(order)), size=4)
    got = matches.stats(weights)[:, 0]
    for w, value in zip(weights, got):
        repeated = [image_id for image_id, k in zip(order, w) for _ in range(k)]
        assert value == pytest.approx(eval_map(*to_mmdet(gt, results, repeated), mode), abs=1e-6)


def test_no_ground_truth_at_all_scores_zero_as_eval_map():
    gt, results = make_set(0, 3)
    gt["annotations"] = []
    assert VocMatches(gt, results).stats(np.ones((1, 3), dtype=np.int64))[0, 0] == 0.0
