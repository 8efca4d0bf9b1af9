"""COCOeval's per-image matching (`evaluate_images`) and its arrangement for weighted accumulation
(`ImageMatches`).

COCOeval.evaluate() matches detections to ground truth image by image; accumulate() then sorts
each category's detections by score and integrates precision over recall. Giving each image an
integer weight w (the image counted w times) changes only the accumulation: every detection and
ground-truth object counts w times. `ImageMatches.stats(weights)` recomputes the 12 stats for many
weight vectors at once from one matching: the detections are sorted once per (category, area
range); each weight vector is a weighted cumulative sum of true and false positives, followed by
COCO's 101-point interpolated precision exactly as accumulate() computes it.
"""
import contextlib
import io

import numpy as np

from torch_utils_lib.evaluation.metrics import STAT_NAMES
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.flag_choices import COCO_BACKENDS

_CHUNK_ELEMENTS = 4_000_000  # resamples x detections of one category per step (bounds memory)


def backend_modules(backend):
    if backend == "pycocotools":  # the chosen backend only: the other may not be installed
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        return COCO, COCOeval
    if backend == "faster_coco_eval":
        try:
            from faster_coco_eval import COCO, COCOeval_faster
        except ImportError:
            raise UserError("--coco_backend faster_coco_eval: package not installed "
                            "(pip install faster-coco-eval)") from None
        return COCO, COCOeval_faster
    raise UserError(f"--coco_backend {backend}: choose one of {', '.join(COCO_BACKENDS)}")


def _ground_truth(COCO, gt_dict):
    """An indexed COCO object over `gt_dict`; COCOeval rewrites the annotations it reads (RLE masks,
    ignore flags), so it gets its own shallow copy of each annotation and `gt_dict` stays as it is."""
    gt = COCO()
    gt.dataset = {**gt_dict, "annotations": [dict(a) for a in gt_dict["annotations"]]}
    gt.createIndex()
    return gt


def _detections(COCO, gt, gt_dict, results):
    if not results:
        dt = COCO()
        dt.dataset = {"images": gt_dict["images"], "categories": gt_dict["categories"], "annotations": []}
        dt.createIndex()
        return dt
    return gt.loadRes([dict(r) for r in results])  # loadRes adds id/area/iscrowd to each dict


def evaluate_images(gt_dict, results_by_type, backend="pycocotools"):
    """{iou_type: COCOeval after evaluate()} for {iou_type: COCO results list} against `gt_dict`.

    The ground-truth index is built once for all IoU types; each evaluator holds the per-image
    matching (`evalImgs`) that accumulate() and the bootstrap (coco_bootstrap) read.
    """
    COCO, COCOeval = backend_modules(backend)
    evaluators = {}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = _ground_truth(COCO, gt_dict)
        for iou_type, results in results_by_type.items():
            evaluators[iou_type] = COCOeval(gt, _detections(COCO, gt, gt_dict, results), iou_type)
            evaluators[iou_type].evaluate()
    return evaluators



class ImageMatches:
    """The per-image matching of one COCOeval, arranged for weighted accumulation.

    Build it with `ImageMatches.from_coco(gt_dict, results, iou_type)` or from a COCOeval
    (pycocotools) whose evaluate() has run. `image_ids` orders the columns of the weights.
    """

    def __init__(self, evaluator):
        p = evaluator.params
        if list(p.maxDets) != [1, 10, 100] or len(p.areaRng) != 4 or not p.useCats:
            raise ValueError("ImageMatches needs COCOeval's default params (maxDets 1/10/100, 4 areas)")
        K, A, I = len(p.catIds), len(p.areaRng), len(p.imgIds)
        # ground truth that counts (not crowd, inside the area range) per (category, area, image)
        gt_counts = np.zeros((K, A, I), dtype=np.int32)
        # true positives per image among its top 1, 10, 100 detections, summed over IoU thresholds
        tp_top = np.zeros((K, A, 3, I), dtype=np.int32)
        parts = {}  # (k, a) -> (scores, images, tp, fp), images in order, each by score
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
                if scores:
                    parts[k, a] = (np.concatenate(scores), np.concatenate(images),
                                   np.concatenate(tps, axis=1), np.concatenate(fps, axis=1))
        self._build(list(p.imgIds), list(p.catIds), p.iouThrs, p.recThrs, gt_counts, tp_top, parts)

    def _build(self, image_ids, category_ids, iou_thrs, rec_thrs, gt_counts, tp_top, parts):
        """The arrays every weight vector reads: `parts` {(k, a): (scores, images, tp (T, n),
        fp (T, n))}, detections image after image (each image's by score, at most 100)."""
        self.image_ids, self.category_ids, self.stat_names = list(image_ids), list(category_ids), STAT_NAMES
        self.rec_thrs = np.asarray(rec_thrs, dtype=float)
        iou_thrs = np.asarray(iou_thrs)
        self.t50, self.t75 = int(np.where(iou_thrs == 0.5)[0][0]), int(np.where(iou_thrs == 0.75)[0][0])
        K, A, I = gt_counts.shape
        self.shape = (K, A, I, len(iou_thrs))
        self.curves = {}  # (k, a) -> _Curve
        for (k, a), (scores, images, tp, fp) in parts.items():
            order = np.argsort(-scores, kind="mergesort")  # as accumulate()
            tp, fp = tp[:, order], fp[:, order]
            self.curves[k, a] = _Curve(images[order], tp, tp | fp)
        # (K*A, I) and (K*A*3, I): weighted sums over images are one matrix product
        self.gt_counts = gt_counts.reshape(K * A, I).astype(float)
        self.tp_top = tp_top.reshape(K * A * 3, I).astype(float)

    @classmethod
    def from_parts(cls, image_ids, category_ids, iou_thrs, rec_thrs, gt_counts, tp_top, parts):
        """An ImageMatches from a matching made elsewhere (coco_match: vectorised, equal to
        pycocotools), given as _build's arrays."""
        matches = cls.__new__(cls)
        matches._build(image_ids, category_ids, iou_thrs, rec_thrs, gt_counts, tp_top, parts)
        return matches

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
        weights, w_float, gt, precision_sums = self._precision_sums(weights)
        K, A, I, T = self.shape
        R = len(weights)
        valid = gt > 0
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


    def _precision_sums(self, weights):
        """(weights, as float, (R, K, A) weighted ground truth, (R, K, A, T) precision summed over
        the recall thresholds)."""
        weights = np.atleast_2d(np.asarray(weights, dtype=np.int64))
        K, A, I, T = self.shape
        if weights.shape[1] != I or (weights < 0).any():
            raise ValueError(f"weights must be non-negative, one per image ({I})")
        R = len(weights)
        w_float = weights.astype(float)  # integer counts: sums are exact in float64
        gt = (w_float @ self.gt_counts.T).reshape(R, K, A)  # weighted ground truth
        precision_sums = np.zeros((R, K, A, T))  # sum over the 101 recall thresholds
        weights_t = np.ascontiguousarray(weights.T, dtype=np.int32)
        for (k, a), curve in self.curves.items():
            precision_sums[:, k, a] = curve.precision_sums(weights_t, gt[:, k, a], self.rec_thrs)
        return weights, w_float, gt, precision_sums

    def category_stats(self, names):
        """{class name: {AP, AP50, AP75}} on the set as it is, of the categories with ground
        truth: coco_eval.per_category_stats' values from this matching. `names` maps ids to names."""
        _, _, gt, sums = self._precision_sums(np.ones((1, self.shape[2]), dtype=np.int64))
        n_rec = len(self.rec_thrs)
        out = {}
        for k, category_id in enumerate(self.category_ids):
            if gt[0, k, 0] > 0:
                out[names[category_id]] = {
                    "AP": float(sums[0, k, 0].sum() / (self.shape[3] * n_rec)),
                    "AP50": float(sums[0, k, 0, self.t50] / n_rec),
                    "AP75": float(sums[0, k, 0, self.t75] / n_rec)}
        return out


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
