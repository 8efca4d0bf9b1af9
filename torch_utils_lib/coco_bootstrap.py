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
_CHUNK_ELEMENTS = 4_000_000  # resamples x detections of one category per step (bounds memory)
RESAMPLE_CHUNK = 500  # resamples whose weights are held at once


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
        gt_counts = np.zeros((K, A, I), dtype=np.int32)
        # true positives per image among its top 1, 10, 100 detections, summed over IoU thresholds
        tp_top = np.zeros((K, A, 3, I), dtype=np.int32)
        self.curves = {}  # (k, a) -> _Curve
        for k in range(K):
            for a in range(A):
                scores, images, tps, fps = [], [], [], []
                for i in range(I):
                    e = evaluator.evalImgs[(k * A + a) * I + i]
                    if e is None:
                        continue
                    gt_counts[k, a, i] = np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
                    matched = np.asarray(e["dtMatches"]) > 0
                    ignored = np.asarray(e["dtIgnore"]).astype(bool)
                    tp, fp = matched & ~ignored, ~matched & ~ignored
                    for m, max_det in enumerate((1, 10, 100)):
                        tp_top[k, a, m, i] = tp[:, :max_det].sum()
                    scores.append(np.asarray(e["dtScores"], dtype=float))
                    images.append(np.full(len(e["dtScores"]), i))
                    tps.append(tp), fps.append(fp)
                if not scores:
                    continue
                order = np.argsort(-np.concatenate(scores), kind="mergesort")  # as accumulate()
                tp = np.concatenate(tps, axis=1)[:, order]
                fp = np.concatenate(fps, axis=1)[:, order]
                self.curves[k, a] = _Curve(np.concatenate(images)[order], tp, tp | fp)
        # (K*A, I) and (K*A*3, I): weighted sums over images are one matrix product
        self.gt_counts = gt_counts.reshape(K * A, I).astype(float)
        self.tp_top = tp_top.reshape(K * A * 3, I).astype(float)

    @classmethod
    def from_coco(cls, gt_dict, results, iou_type):
        """Match `results` (COCO results list) to `gt_dict` once with pycocotools."""
        return cls(evaluate_images(gt_dict, {iou_type: results}, "pycocotools")[iou_type])

    def stats(self, weights):
        """(R, 12) COCO stats (STAT_NAMES order) for R integer weight vectors over `image_ids`.

        Weights of all ones give pycocotools' stats; weight k for an image gives the stats of the
        set in which that image appears k times. A stat with no ground truth is -1 as in COCOeval.
        Memory grows with R times the largest category's detections at most (kept below
        _CHUNK_ELEMENTS per step); stream many resamples through it in chunks (resampled_stats).
        """
        weights = np.atleast_2d(np.asarray(weights, dtype=np.int64))
        K, A, I, T = self.shape
        if weights.shape[1] != I or (weights < 0).any():
            raise ValueError(f"weights must be non-negative, one per image ({I})")
        R = len(weights)
        w_float = weights.astype(float)  # integer counts: sums are exact in float64
        gt = (w_float @ self.gt_counts.T).reshape(R, K, A)  # weighted ground truth
        valid = gt > 0
        precision_sums = np.zeros((R, K, A, T))  # sum over the 101 recall thresholds
        weights_t = np.ascontiguousarray(weights.T, dtype=np.int32)
        for (k, a), curve in self.curves.items():
            precision_sums[:, k, a] = curve.precision_sums(weights_t, gt[:, k, a], self.rec_thrs)
        stats = np.empty((R, len(STAT_NAMES)))
        n_rec = len(self.rec_thrs)
        for column, (a, t) in enumerate([(0, None), (0, self.t50), (0, self.t75), (1, None), (2, None),
                                         (3, None)]):
            sums = precision_sums[:, :, a] if t is None else precision_sums[:, :, a, t:t + 1]
            stats[:, column] = _mean_over_categories(sums, valid[:, :, a], sums.shape[2] * n_rec)
        tp_top = (w_float @ self.tp_top.T).reshape(R, K, A, 3)
        recall = tp_top / np.maximum(gt, 1)[:, :, :, None]  # summed over IoU thresholds
        for column, (a, m) in enumerate([(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (3, 2)], start=6):
            stats[:, column] = _mean_over_categories(recall[:, :, a, m][:, :, None], valid[:, :, a], T)
        return stats


class _Curve:
    """One (category, area range)'s detections in score order, reduced to what the weighted
    precision needs: accumulate() reads, for each recall threshold, the interpolated precision
    (the largest precision at or after it) at the first detection whose recall reaches it.
    Recall rises and precision peaks only at true positives, so the precision is needed there
    only: at true positive j of IoU threshold t it is tp_t(j) / counted_t(j), both weighted
    cumulative counts. counted_t(j) is the weighted count of detections counted at any threshold
    up to j, less those not counted at t (few: detections matched to crowd or out-of-range ground
    truth), so the one pass over every detection is shared by the thresholds."""

    def __init__(self, images, tp, counted):
        T = tp.shape[0]
        any_tp = tp.any(axis=0)
        end = int(np.nonzero(any_tp)[0][-1]) + 1 if any_tp.any() else 0
        keep = counted[:, :end].any(axis=0)  # detections ignored at every IoU add no point
        tp, counted = tp[:, :end][:, keep], counted[:, :end][:, keep]
        self.images = images[:end][keep].astype(np.intp)
        # the true positives of every threshold in one array, threshold after threshold
        positions = [np.nonzero(tp[t])[0] for t in range(T)]
        self.T = T
        self.sizes = np.array([len(p) for p in positions])
        self.positions = np.concatenate(positions)
        self.segment_starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.thresholds_of = np.repeat(np.arange(T), self.sizes)
        starts = np.repeat(self.segment_starts, self.sizes)
        self.first = self.positions.size and (np.arange(len(self.positions)) == starts)
        # rank of each segment counted from the last: offsets keep a running maximum in its segment
        self.offsets = 2.0 * (T - self.thresholds_of)
        missing = [np.nonzero(~counted[t])[0] for t in range(T)]
        self.missing = np.concatenate(missing).astype(np.intp)
        missing_starts = np.concatenate([[0], np.cumsum([len(m) for m in missing])])
        # for each true positive: index (into self.missing, plus one) of the last missing detection
        # of its threshold before it, 0 when none
        before = np.concatenate([np.searchsorted(m, p, "right") for m, p in zip(missing, positions)])
        self.lost_index = np.where(before > 0, missing_starts[self.thresholds_of] + before, 0)
        self.lost_base = missing_starts[self.thresholds_of]  # lost counts before the threshold's own
        # the true positives of any threshold, in order: detections are summed between them
        unique = np.unique(self.positions)
        self.segment_idx = np.concatenate([[0], unique[:-1] + 1]).astype(np.intp)
        self.unique_index = np.searchsorted(unique, self.positions)

    def precision_sums(self, weights_t, gt, rec_thrs):
        """(R, T): COCO's interpolated precision summed over the recall thresholds, per weight
        vector (the int32 columns of `weights_t`, (images, R)) with weighted ground truth `gt` (R,).
        Arrays run along detections x resamples, so every cumulative sum adds whole rows."""
        R, T, nd = weights_t.shape[1], self.T, len(self.images)
        sums = np.zeros((R, T))
        if nd == 0 or len(self.positions) == 0:
            return sums
        gt = np.maximum(gt, 1)
        thresholds = np.append(rec_thrs, np.inf)
        nonempty = self.sizes > 0
        offsets = self.offsets[:, None]
        step = max(1, _CHUNK_ELEMENTS // (nd + len(self.positions)))
        for start in range(0, R, step):
            w = weights_t[:, start:start + step]
            drawn = w[self.images]  # (nd, r) weight of each detection's image
            # counted detections up to each true positive: sums between true positives, accumulated
            counted = np.cumsum(np.add.reduceat(drawn, self.segment_idx, axis=0), axis=0,
                                dtype=np.int64)[self.unique_index]
            tp_drawn = drawn[self.positions]
            tp_sum = np.cumsum(tp_drawn, axis=0, dtype=np.int64)
            tp_sum -= np.repeat((tp_sum - tp_drawn)[self.segment_starts[nonempty]],
                                self.sizes[nonempty], axis=0)  # cumulative within each threshold
            if len(self.missing):
                lost = np.zeros((len(self.missing) + 1, w.shape[1]), np.int64)
                lost[1:] = np.cumsum(drawn[self.missing], axis=0)
                counted -= lost[self.lost_index] - lost[self.lost_base] * (self.lost_index > 0)[:, None]
            tp_sum = tp_sum.astype(float)
            precision = tp_sum / (counted + np.spacing(1))  # tp / (tp + fp) as accumulate()
            # the largest precision at or after each point, within its threshold
            precision = np.maximum.accumulate((precision + offsets)[::-1], axis=0)[::-1] - offsets
            recall = tp_sum / gt[None, start:start + step]
            # thresholds <= recall: searchsorted(rec_thrs, recall, "right") in a few operations
            reached = np.minimum((recall * (len(thresholds) - 2)).astype(np.intp) + 1,
                                 len(thresholds) - 1)
            reached -= thresholds[reached - 1] > recall
            reached += thresholds[reached] <= recall
            reached[1:] -= np.where(self.first[1:, None], 0, reached[:-1])
            sums[start:start + step, nonempty] = np.add.reduceat(
                reached * precision, self.segment_starts[nonempty], axis=0).T
        return sums


def _mean_over_categories(sums, valid, count):
    """(R,): sums (R, K, X) over the valid categories divided by their number times `count` (the
    values summed per category); -1 where no category is valid, as COCOeval.summarize()."""
    n = valid.sum(1) * count
    return np.where(n > 0, (sums * valid[:, :, None]).sum((1, 2)) / np.maximum(n, 1), -1.0)


def bootstrap_weights(n_images, n=1000, seed=0, start=0):
    """(n, n_images) multinomial counts, resamples start .. start + n - 1: each row resamples the
    images with replacement. Row r comes from its own generator seeded (seed, r), so any chunk of
    rows is the same whichever chunks they are drawn in."""
    p = np.full(n_images, 1.0 / n_images)
    out = np.empty((n, n_images), dtype=np.int64)
    for row in range(n):
        out[row] = np.random.default_rng([seed, start + row]).multinomial(n_images, p)
    return out


def percentile_interval(values, level=LEVEL):
    """[low, high] percentile interval of bootstrap values (along the first axis).

    The bounds are widened outwards to a multiple of ROUNDING: resampled stats are sums taken
    in another order than pycocotools' own, so a bound that equals the point estimate (every
    resample scoring the same) would otherwise miss it by a rounding error."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(np.asarray(values, dtype=float), [tail, 100 - tail], axis=0)
    low, high = np.floor(low / ROUNDING) * ROUNDING, np.ceil(high / ROUNDING) * ROUNDING
    return [float(low), float(high)] if np.ndim(low) == 0 else [low, high]


ROUNDING = 1e-12


def resampled_stats_of_matches(matches_by_set, n=1000, seed=0, chunk=RESAMPLE_CHUNK):
    """(full, draws) as resampled_stats from already built {set: ImageMatches} (one matching per
    set, e.g. the evaluation's own), streaming the resamples `chunk` at a time: memory holds one
    chunk's weights and work arrays, whatever `n`; the draws do not depend on `chunk`."""
    image_ids = None
    for name, matches in matches_by_set.items():
        if image_ids is None:
            image_ids = matches.image_ids
        elif matches.image_ids != image_ids:
            raise ValueError(f"{name}: its images differ from the other sets' (pairing needs the same)")
    n_images = len(image_ids or [])
    full = {name: m.stats(np.ones((1, n_images), dtype=np.int64))[0] for name, m in matches_by_set.items()}
    draws = {name: np.empty((n, len(STAT_NAMES))) for name in matches_by_set}
    for start in range(0, n, chunk):
        weights = bootstrap_weights(n_images, min(chunk, n - start), seed, start)
        for name, matches in matches_by_set.items():
            draws[name][start:start + len(weights)] = matches.stats(weights)
    return full, draws


def resampled_stats(gt_dict, results_by_set, iou_type, n=1000, seed=0, chunk=RESAMPLE_CHUNK):
    """Stats of several detection sets on the same ground truth and the same resampled images.

    Returns (full, draws): {set: (12,) stats on the test set as it is} and {set: (n, 12) stats per
    resample}; row r of every set uses the same image counts, so differences are paired. Each
    set is matched once (COCOeval.evaluate()); the resamples only re-accumulate, `chunk` at a time.
    """
    matches = {name: ImageMatches.from_coco(gt_dict, results, iou_type)
               for name, results in results_by_set.items()}
    return resampled_stats_of_matches(matches, n, seed, chunk)


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


def with_intervals(stats, full, draws, baselines=None, names=CI_STATS):
    """The one result shape of every bootstrap: {row: a copy of `stats[row]` with `<stat>_ci` and,
    for each (label, baseline row) in `baselines[row]`, `vs_<label>`: {stat: {"delta": row -
    baseline, "ci", "share_le_0"}}} on the same resampled images.

    `stats` holds the rows ({row: stats}) of one IoU type on one set of images, `full`/`draws`
    their resampled_stats (rows evaluated on one annotation: detectors, remedies or image sets).
    """
    out = {}
    for row, row_stats in stats.items():
        intervals = interval_summary(full[row], draws[row], names)
        summary = {**row_stats, **{k: v for k, v in intervals.items() if k.endswith("_ci")}}
        for label, baseline in (baselines or {}).get(row, {}).items():
            summary[f"vs_{label}"] = difference_summary(full[row], full[baseline], draws[row],
                                                        draws[baseline], names)
        out[row] = summary
    return out


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
