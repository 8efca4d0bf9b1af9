"""COCO AP with confidence intervals: weighted COCO stats from one per-image matching, bootstrap.

COCOeval.evaluate() matches detections to ground truth image by image; accumulate() then sorts
each category's detections by score and integrates precision over recall. Giving each image an
integer weight w (the image counted w times) changes only the accumulation: every detection and
ground-truth object counts w times. `ImageMatches.stats(weights)` recomputes the 12 stats for many
weight vectors at once from one matching: the detections are sorted once per (category, area
range); each weight vector is a weighted cumulative sum of true and false positives, followed by
COCO's 101-point interpolated precision exactly as accumulate() computes it. A bootstrap over
images draws the weights as multinomial counts (images resampled with replacement).
"""
import numpy as np

from torch_utils_lib.atomic_io import read_json
from torch_utils_lib.coco_eval import STAT_NAMES, evaluate_images
from torch_utils_lib.coco_json import load_coco_json, normalize_coco

CI_STATS = ("AP", "AP50", "AP75")
LEVEL = 0.95
_CHUNK_ELEMENTS = 2_000_000  # resamples x IoU thresholds x detections per step (bounds memory)


class ImageMatches:
    """The per-image matching of one COCOeval, arranged for weighted accumulation.

    Build it with `ImageMatches.from_coco(gt_dict, results, iou_type)` or from a COCOeval
    (pycocotools) whose evaluate() has run. `image_ids` orders the columns of the weights.
    """

    def __init__(self, evaluator):
        p = evaluator.params
        if list(p.maxDets) != [1, 10, 100] or len(p.areaRng) != 4 or not p.useCats:
            raise ValueError("ImageMatches needs COCOeval's default params (maxDets 1/10/100, 4 areas)")
        self.image_ids = list(p.imgIds)
        self.rec_thrs = np.asarray(p.recThrs, dtype=float)
        iou_thrs = np.asarray(p.iouThrs)
        self.t50, self.t75 = int(np.where(iou_thrs == 0.5)[0][0]), int(np.where(iou_thrs == 0.75)[0][0])
        K, A, I, T = len(p.catIds), len(p.areaRng), len(self.image_ids), len(iou_thrs)
        self.shape = (K, A, I, T)
        # ground truth that counts (not crowd, inside the area range) per (category, area, image)
        self.gt_counts = np.zeros((K, A, I), dtype=np.int64)
        # true positives per image among its top 1, 10, 100 detections, summed over IoU thresholds
        self.tp_top = np.zeros((K, A, 3, I), dtype=np.int64)
        self.curves = {}  # (k, a) -> (image index per detection, tp (T, nd), fp (T, nd)), score order
        for k in range(K):
            for a in range(A):
                scores, images, tps, fps = [], [], [], []
                for i in range(I):
                    e = evaluator.evalImgs[(k * A + a) * I + i]
                    if e is None:
                        continue
                    self.gt_counts[k, a, i] = np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
                    matched = np.asarray(e["dtMatches"]) > 0
                    ignored = np.asarray(e["dtIgnore"]).astype(bool)
                    tp, fp = matched & ~ignored, ~matched & ~ignored
                    for m, max_det in enumerate((1, 10, 100)):
                        self.tp_top[k, a, m, i] = tp[:, :max_det].sum()
                    scores.append(np.asarray(e["dtScores"], dtype=float))
                    images.append(np.full(len(e["dtScores"]), i))
                    tps.append(tp), fps.append(fp)
                if not scores:
                    continue
                order = np.argsort(-np.concatenate(scores), kind="mergesort")  # as accumulate()
                tp = np.concatenate(tps, axis=1)[:, order]
                fp = np.concatenate(fps, axis=1)[:, order]
                counted = (tp | fp).any(axis=0)  # detections ignored at every IoU add no point
                self.curves[k, a] = (np.concatenate(images)[order][counted], tp[:, counted], fp[:, counted])

    @classmethod
    def from_coco(cls, gt_dict, results, iou_type):
        """Match `results` (COCO results list) to `gt_dict` once with pycocotools."""
        return cls(evaluate_images(gt_dict, {iou_type: results}, "pycocotools")[iou_type])

    def stats(self, weights):
        """(R, 12) COCO stats (STAT_NAMES order) for R integer weight vectors over `image_ids`.

        Weights of all ones give pycocotools' stats; weight k for an image gives the stats of the
        set in which that image appears k times. A stat with no ground truth is -1 as in COCOeval.
        """
        weights = np.atleast_2d(np.asarray(weights, dtype=np.int64))
        K, A, I, T = self.shape
        if weights.shape[1] != I or (weights < 0).any():
            raise ValueError(f"weights must be non-negative, one per image ({I})")
        R = len(weights)
        gt = np.einsum("ri,kai->rka", weights, self.gt_counts)  # (R, K, A) weighted ground truth
        valid = gt > 0
        precision_sums = np.zeros((R, K, A, T))  # sum over the 101 recall thresholds
        for (k, a), curve in self.curves.items():
            precision_sums[:, k, a] = self._precision_sums(weights, gt[:, k, a], *curve)
        stats = np.empty((R, len(STAT_NAMES)))
        n_rec = len(self.rec_thrs)
        for column, (a, t) in enumerate([(0, None), (0, self.t50), (0, self.t75), (1, None), (2, None),
                                         (3, None)]):
            sums = precision_sums[:, :, a] if t is None else precision_sums[:, :, a, t:t + 1]
            stats[:, column] = _mean_over_categories(sums, valid[:, :, a], sums.shape[2] * n_rec)
        tp_top = np.einsum("ri,kami->rkam", weights, self.tp_top)
        recall = tp_top / np.maximum(gt, 1)[:, :, :, None]  # summed over IoU thresholds
        for column, (a, m) in enumerate([(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (3, 2)], start=6):
            stats[:, column] = _mean_over_categories(recall[:, :, a, m][:, :, None], valid[:, :, a], T)
        return stats

    def _precision_sums(self, weights, gt, images, tp, fp):
        """(R, T): COCO's interpolated precision summed over the recall thresholds, per weight vector.

        accumulate() reads, for each recall threshold, the interpolated precision at the first
        detection whose recall reaches it; so detection i contributes its interpolated precision
        times the number of thresholds in (recall[i-1], recall[i]].
        """
        R, T, nd = len(weights), tp.shape[0], tp.shape[1]
        sums = np.zeros((R, T))
        if nd == 0:
            return sums
        step = max(1, _CHUNK_ELEMENTS // (T * nd))
        tp_f, counted = tp.astype(float), (tp | fp).astype(float)
        if (counted == counted[:1]).all():  # ignore flags agree across IoU thresholds: count once
            counted = counted[:1]
        gt = np.maximum(gt, 1).astype(float)
        thresholds = np.append(self.rec_thrs, np.inf)
        for start in range(0, R, step):
            w = weights[start:start + step, images][:, None, :].astype(float)  # (r, 1, nd)
            tp_sum = np.cumsum(w * tp_f, axis=2)  # integer counts, exact in float64
            precision = tp_sum / (np.cumsum(w * counted, axis=2) + np.spacing(1))  # tp / (tp + fp)
            precision = np.maximum.accumulate(precision[:, :, ::-1], axis=2)[:, :, ::-1]
            recall = tp_sum / gt[start:start + step, None, None]
            # thresholds <= recall: searchsorted(rec_thrs, recall, "right") in a few array operations
            reached = np.minimum((recall * (len(thresholds) - 2)).astype(np.intp) + 1, len(thresholds) - 1)
            reached -= thresholds[reached - 1] > recall
            reached += thresholds[reached] <= recall
            reached[:, :, 1:] -= reached[:, :, :-1].copy()
            sums[start:start + step] = np.einsum("rtn,rtn->rt", reached.astype(float), precision)
        return sums


def _mean_over_categories(sums, valid, count):
    """(R,): sums (R, K, X) over the valid categories divided by their number times `count` (the
    values summed per category); -1 where no category is valid, as COCOeval.summarize()."""
    n = valid.sum(1) * count
    return np.where(n > 0, (sums * valid[:, :, None]).sum((1, 2)) / np.maximum(n, 1), -1.0)


def bootstrap_weights(n_images, n=1000, seed=0):
    """(n, n_images) multinomial counts: each row resamples the images with replacement."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=n)


def percentile_interval(values, level=LEVEL):
    """[low, high] percentile interval of bootstrap values (along the first axis)."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(np.asarray(values, dtype=float), [tail, 100 - tail], axis=0)
    return [float(low), float(high)] if np.ndim(low) == 0 else [low, high]


def resampled_stats(gt_dict, results_by_set, iou_type, n=1000, seed=0):
    """Stats of several detection sets on the same ground truth and the same resampled images.

    Returns (full, draws): {set: (12,) stats on the test set as it is} and {set: (n, 12) stats per
    resample}; row r of every set uses the same image counts, so differences are paired. Each
    set is matched once (COCOeval.evaluate()); the resamples only re-accumulate.
    """
    full, draws, weights = {}, {}, None
    for name, results in results_by_set.items():
        matches = ImageMatches.from_coco(gt_dict, results, iou_type)
        if weights is None:
            weights = bootstrap_weights(len(matches.image_ids), n, seed)
        full[name] = matches.stats(np.ones((1, len(matches.image_ids)), dtype=np.int64))[0]
        draws[name] = matches.stats(weights) if n > 0 else np.empty((0, len(STAT_NAMES)))
    return full, draws


def load_detections(annotation, detection_files):
    """(gt dict, {set: results}) for resampled_stats from an annotation file and dumped COCO
    results files ({set: path}), image ids as normalize_coco numbers the annotation's.

    A COCO results list carries the annotation's own image ids and is renumbered; a RAW
    evaluation's {"settings", "results"} (genisp/evaluate.py) already carries the numbered ids.
    """
    gt, original_ids = normalize_coco(load_coco_json(annotation))
    to_int = {original: i for i, original in original_ids.items()}
    results = {}
    for name, path in detection_files.items():
        saved = read_json(path, "detections")
        if isinstance(saved, dict):
            results[name] = saved["results"]
        else:
            results[name] = [{**r, "image_id": to_int[r["image_id"]]} for r in saved]
    return gt, results


def interval_summary(full, draws, names=CI_STATS):
    """{stat: value, stat_ci: [low, high]} from one set's full stats and its resampled stats."""
    out = {}
    for name in names:
        j = STAT_NAMES.index(name)
        out[name] = float(full[j])
        out[f"{name}_ci"] = percentile_interval(draws[:, j])
    return out


def difference_summary(full_a, full_b, draws_a, draws_b, names=CI_STATS):
    """{stat: {"delta": A - B, "ci": [low, high], "share_le_0": share of resamples with delta <= 0}}."""
    out = {}
    for name in names:
        j = STAT_NAMES.index(name)
        deltas = draws_a[:, j] - draws_b[:, j]
        out[name] = {"delta": float(full_a[j] - full_b[j]), "ci": percentile_interval(deltas),
                     "share_le_0": float(np.mean(deltas <= 0))}
    return out


def bootstrap_stats(gt_dict, results, iou_type, n=1000, seed=0, names=CI_STATS):
    """{stat: value, stat_ci: [low, high]}: a 95% bootstrap interval over images for each stat."""
    full, draws = resampled_stats(gt_dict, {"set": results}, iou_type, n, seed)
    return interval_summary(full["set"], draws["set"], names)


def paired_difference(gt_dict, results_a, results_b, iou_type, n=1000, seed=0, names=CI_STATS):
    """{stat: {"delta": A - B, "ci": [low, high], "share_le_0": ...}} by a paired bootstrap.

    Both detection sets are scored on the same resampled images, so the interval is that of the
    difference, narrower than the two separate intervals suggest.
    """
    full, draws = resampled_stats(gt_dict, {"a": results_a, "b": results_b}, iou_type, n, seed)
    return difference_summary(full["a"], full["b"], draws["a"], draws["b"], names)


def format_interval(value, interval, digits=3):
    """'0.412 [0.388, 0.437]'."""
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


NOT_SIGNIFICANT = " (n.s.)"


def fold_intervals(rows, is_difference=lambda column: False):
    """The rows {name: {column: value, "<column>_ci": [low, high]}} with each interval folded into
    its column as '0.412 [0.388, 0.437]'; a difference column (`is_difference(column)`) whose
    interval includes 0 is marked ' (n.s.)'."""
    out = {}
    for name, row in rows.items():
        out[name] = {}
        for column, value in row.items():
            interval = row.get(f"{column}_ci")
            if column.endswith("_ci"):
                continue
            if interval is None:
                out[name][column] = value
                continue
            text = format_interval(value, interval)
            if is_difference(column) and interval[0] <= 0 <= interval[1]:
                text += NOT_SIGNIFICANT
            out[name][column] = text
    return out
