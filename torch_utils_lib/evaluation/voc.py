"""mmdetection's VOC mAP (`VOCMetric` -> `eval_map` with `tpfp_default`), matched once per image and
re-accumulated for any integer image weights (the bootstrap), like matching.ImageMatches for COCO.

The protocol, as YOLA and FRBNet configure it: IoU 0.5 with legacy pixel coordinates (a box
[x1, y1, x2, y2] is x2 - x1 + 1 wide); per image and class the detections, by score, take the
ground truth they overlap most (crowd/ignored ground truth included); a detection whose best
ground truth is ignored is neither a true nor a false positive, one whose best is already taken is
a false positive. Per class the detections of all images are sorted by score and AP is the area
under the interpolated precision-recall curve ('area') or the mean of the 11 precisions at recall
0, 0.1, .., 1 ('11points', VOC2007); mAP averages the classes that have ground truth (0 if none).

Weighted accumulation: an image of weight w counts w times. A true positive's w copies end at
the same interpolated precision (the largest precision at or after them), so the area is
sum(w * tp * envelope) / weighted ground truth, and each 11-point precision is the envelope at the
first true positive whose recall reaches the point: exact for any weights where no two
detections of one image and class tie in score (a repeated image lists such ties copy after
copy, the weights detection after detection). Ties in score keep input order (a stable sort;
mmdetection's np.argsort leaves exact ties to numpy's sort).
"""
import numpy as np

from torch_utils_lib.evaluation.metrics import VOC_STAT_NAMES

MODES = {"voc": "area", "voc07": "11points"}
IOU_THRESHOLD = 0.5
_CHUNK_ELEMENTS = 4_000_000
_POINTS = np.arange(0, 1 + 1e-3, 0.1)  # mmdetection's 11 recall points, as it computes them


def legacy_ious(dets, gts):
    """(D, G) IoU of [x1, y1, x2, y2] boxes with mmdetection's legacy +1 widths."""
    area_d = (dets[:, 2] - dets[:, 0] + 1) * (dets[:, 3] - dets[:, 1] + 1)
    area_g = (gts[:, 2] - gts[:, 0] + 1) * (gts[:, 3] - gts[:, 1] + 1)
    w = np.maximum(np.minimum(dets[:, None, 2], gts[None, :, 2])
                   - np.maximum(dets[:, None, 0], gts[None, :, 0]) + 1, 0)
    h = np.maximum(np.minimum(dets[:, None, 3], gts[None, :, 3])
                   - np.maximum(dets[:, None, 1], gts[None, :, 1]) + 1, 0)
    overlap = w * h
    union = np.maximum(area_d[:, None] + area_g[None, :] - overlap, np.finfo(np.float32).eps)
    return overlap / union


def xyxy(bbox):
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def match_image(det_boxes, det_scores, gt_boxes, gt_ignored):
    """(tp, fp) booleans of one image's detections of one class, in their given order
    (tpfp_default without area ranges)."""
    n = len(det_boxes)
    tp, fp = np.zeros(n, bool), np.zeros(n, bool)
    if len(gt_boxes) == 0:
        fp[:] = True
        return tp, fp
    ious = legacy_ious(det_boxes, gt_boxes)
    best, best_gt = ious.max(axis=1), ious.argmax(axis=1)
    covered = np.zeros(len(gt_boxes), bool)
    for i in np.argsort(-det_scores, kind="stable"):
        if best[i] >= IOU_THRESHOLD:
            g = best_gt[i]
            if not gt_ignored[g]:
                if covered[g]:
                    fp[i] = True
                else:
                    covered[g] = tp[i] = True
        else:
            fp[i] = True
    return tp, fp


class VocMatches:
    """One detection set matched to the ground truth under eval_map's rules, arranged for weighted
    accumulation. `image_ids` orders the columns of the weights (sorted, as ImageMatches)."""

    def __init__(self, gt_dict, results, metric="voc"):
        self.mode, self.stat_names = MODES[metric], VOC_STAT_NAMES[metric]
        self.image_ids = sorted(image["id"] for image in gt_dict["images"])
        self.category_ids = sorted(c["id"] for c in gt_dict["categories"])
        column = {image_id: i for i, image_id in enumerate(self.image_ids)}
        row = {c: k for k, c in enumerate(self.category_ids)}
        K, I = len(self.category_ids), len(self.image_ids)
        gts, dets = {}, {}
        gt_counts = np.zeros((K, I))
        for ann in gt_dict["annotations"]:
            ignored = bool(ann.get("iscrowd", 0) or ann.get("ignore", 0))
            key = (row[ann["category_id"]], column[ann["image_id"]])
            gts.setdefault(key, []).append((xyxy(ann["bbox"]), ignored))
            gt_counts[key] += not ignored
        for r in results:
            key = (row[r["category_id"]], column[r["image_id"]])
            dets.setdefault(key, []).append((xyxy(r["bbox"]), r["score"]))
        per_class = {k: ([], [], [], []) for k in range(K)}  # images, scores, tp, counted
        for (k, i) in sorted(dets):  # images in order, detections in input order
            boxes = np.array([d[0] for d in dets[k, i]], dtype=float)
            scores = np.array([d[1] for d in dets[k, i]], dtype=float)
            pairs = gts.get((k, i), [])
            tp, fp = match_image(boxes, scores, np.array([g[0] for g in pairs], float).reshape(-1, 4),
                                 np.array([g[1] for g in pairs], bool))
            for part, values in zip(per_class[k], (np.full(len(scores), i), scores, tp, tp | fp)):
                part.append(values)
        self.gt_counts = gt_counts  # (K, I) ground truth that counts, per image
        self.curves = {}
        for k, (images, scores, tp, counted) in per_class.items():
            if not images:
                continue
            order = np.argsort(-np.concatenate(scores), kind="stable")
            counted = np.concatenate(counted)[order]
            keep = counted  # ignored detections change no count: no point of the curve
            self.curves[k] = (np.concatenate(images)[order][keep].astype(np.intp),
                              np.concatenate(tp)[order][keep])

    def class_ap(self, weights):
        """(R, K) AP per class and (R, K) weighted ground truth, for R weight vectors."""
        weights = np.atleast_2d(np.asarray(weights, dtype=np.int64))
        R = len(weights)
        gt = weights.astype(float) @ self.gt_counts.T
        ap = np.zeros((R, len(self.category_ids)))
        weights_t = np.ascontiguousarray(weights.T)
        for k, (images, tp) in self.curves.items():
            step = max(1, _CHUNK_ELEMENTS // max(len(images), 1))
            for start in range(0, R, step):
                ap[start:start + step, k] = _class_ap(weights_t[images, start:start + step], tp,
                                                      gt[start:start + step, k], self.mode)
        return ap, gt

    def stats(self, weights):
        """(R, 1) mAP: the mean AP of the classes with (weighted) ground truth, 0 where none."""
        ap, gt = self.class_ap(weights)
        valid = gt > 0
        n = valid.sum(1)
        return np.where(n > 0, (ap * valid).sum(1) / np.maximum(n, 1), 0.0)[:, None]

    def category_stats(self, names):
        """{class name: {stat: AP}} of the classes with ground truth, on the set as it is."""
        ap, gt = self.class_ap(np.ones((1, len(self.image_ids)), dtype=np.int64))
        return {names[c]: {self.stat_names[0]: float(ap[0, k])}
                for k, c in enumerate(self.category_ids) if gt[0, k] > 0}


def _class_ap(drawn, tp, gt, mode):
    """(r,) AP of one class: `drawn` (n, r) the weight of each counted detection in score order,
    `tp` (n,) whether it is a true positive, `gt` (r,) weighted ground truth."""
    r = drawn.shape[1]
    positions = np.nonzero(tp)[0]
    if len(positions) == 0:
        return np.zeros(r)
    counted = np.cumsum(drawn, axis=0)[positions].astype(float)
    tp_drawn = drawn[positions]
    tp_sum = np.cumsum(tp_drawn, axis=0).astype(float)
    precision = np.where(counted > 0, tp_sum / np.maximum(counted, 1), 0.0)
    envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
    gt_safe = np.maximum(gt, np.finfo(np.float32).eps)[None, :]
    if mode == "area":
        return (tp_drawn * envelope).sum(0) / gt_safe[0]
    recall = tp_sum / gt_safe
    padded = np.vstack([envelope, np.zeros((1, r))])
    total = np.zeros(r)
    for point in _POINTS:
        first = (recall < point).sum(0)  # recall rises along the true positives
        total += padded[first, np.arange(r)]
    return total / len(_POINTS)
