"""COCOeval's per-image matching, vectorised: the same matches as pycocotools' evaluate() (greedy by
score, crowd ground truth matchable many times, ignored ground truth last, area ranges, 100
detections per image and category), as a matching.ImageMatches, in a fraction of the time.

pycocotools matches each (image, category, area range) on its own, detection after detection in
score order, per IoU threshold. Here the detections of a given rank in every (image, category)
are matched together, all thresholds at once: step r takes the r-th detection of every group, its
IoU with its group's ground truth (ignored last, stable), and picks, per threshold, the
not-yet-taken ground truth of highest IoU >= the threshold (ties: the later one, as pycocotools'
`<` comparison), a non-ignored one first. Box IoU is pycocotools' formula in numpy; mask IoU is
pycocotools' own (maskUtils.iou per group). tests/torch_utils_lib/evaluation/test_coco_match.py
compares every array with pycocotools'.
"""
import numpy as np
from pycocotools import mask as mask_utils

from torch_utils_lib.evaluation.matching import ImageMatches

IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES = ((0, 1e10), (0, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e10))
MAX_DETS = (1, 10, 100)


def _rle(segmentation, height, width):
    """pycocotools' annToRLE."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def _box_ious(d, g, crowd):
    """(n,) IoU of box pairs [x, y, w, h] as pycocotools' bbIou (crowd: over the detection)."""
    w = np.minimum(d[:, 0] + d[:, 2], g[:, 0] + g[:, 2]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 1] + d[:, 3], g[:, 1] + g[:, 3]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    da, ga = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
    union = np.where(crowd, da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = inter / union
    return np.where((w > 0) & (h > 0), out, 0.0)


def match(gt_dict, results, iou_type):
    """ImageMatches of `results` (COCO results list, ids of `gt_dict`) as pycocotools would give."""
    image_ids = sorted(image["id"] for image in gt_dict["images"])
    category_ids = sorted(c["id"] for c in gt_dict["categories"])
    I, K, T = len(image_ids), len(category_ids), len(IOU_THRS)
    column = {image_id: i for i, image_id in enumerate(image_ids)}
    row = {c: k for k, c in enumerate(category_ids)}
    images = {image["id"]: image for image in gt_dict["images"]}
    anns = [a for a in gt_dict["annotations"] if a["category_id"] in row and a["image_id"] in column]
    segm = iou_type == "segm"
    # ground truth, by group (category * I + image), annotation order within a group
    g_key = np.array([row[a["category_id"]] * I + column[a["image_id"]] for a in anns], dtype=np.int64)
    g_order = np.argsort(g_key, kind="stable")
    anns = [anns[j] for j in g_order]
    g_key = g_key[g_order]
    g_area = np.array([a["area"] for a in anns], dtype=float)
    g_crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns])
    # detections: by group, then score (stable), at most 100 a group
    d_key = np.array([row[r["category_id"]] * I + column[r["image_id"]] for r in results], dtype=np.int64)
    d_score = np.array([r["score"] for r in results], dtype=float)
    d_order = np.lexsort((-d_score, d_key))
    d_key, d_score = d_key[d_order], d_score[d_order]
    d_start = np.searchsorted(d_key, d_key, "left")
    d_rank = np.arange(len(d_key)) - d_start
    keep = d_rank < MAX_DETS[-1]
    d_order, d_key, d_score, d_rank = d_order[keep], d_key[keep], d_score[keep], d_rank[keep]
    dets = [results[j] for j in d_order]
    box_areas = bool(results) and "bbox" in results[0] and results[0]["bbox"] != []  # as loadRes
    if segm:
        g_rle = [_rle(a["segmentation"], images[a["image_id"]]["height"],
                      images[a["image_id"]]["width"]) for a in anns]
        d_rle = [_rle(r["segmentation"], images[r["image_id"]]["height"],
                      images[r["image_id"]]["width"]) for r in dets]
    if box_areas or not segm:
        d_area = np.array([r["bbox"][2] * r["bbox"][3] for r in dets], dtype=float)
    else:
        d_area = np.array([mask_utils.area(rle) for rle in d_rle], dtype=float)  # as loadRes
    # groups with both: their pairs (detection rank-major, ground truth in annotation order)
    groups, g_start, g_count = np.unique(g_key, return_index=True, return_counts=True)
    gt_of_group = dict(zip(groups.tolist(), range(len(groups))))
    d_group = np.array([gt_of_group.get(k, -1) for k in d_key.tolist()], dtype=np.int64)
    paired = d_group >= 0
    n_gt = np.where(paired, g_count[np.maximum(d_group, 0)], 0)
    pair_start = np.concatenate([[0], np.cumsum(n_gt)])[:-1]
    total = int(n_gt.sum())
    pair_det = np.repeat(np.arange(len(d_key)), n_gt)
    pair_gt = (g_start[d_group[pair_det]] + np.arange(total) - pair_start[pair_det]).astype(np.int64)
    if segm:
        ious = np.zeros(total)
        det_groups = np.unique(d_group[paired])
        first = np.searchsorted(d_group[paired], det_groups)  # paired detections are grouped
        paired_index = np.nonzero(paired)[0]
        counts = np.diff(np.append(first, paired.sum()))
        for q, f, c in zip(det_groups.tolist(), first.tolist(), counts.tolist()):
            ds = paired_index[f:f + c]
            gs = range(g_start[q], g_start[q] + g_count[q])
            block = np.asarray(mask_utils.iou([d_rle[j] for j in ds], [g_rle[j] for j in gs],
                                              [int(g_crowd[j]) for j in gs]), dtype=float)
            ious[pair_start[ds[0]]:pair_start[ds[0]] + block.size] = block.reshape(-1)
    else:
        d_box = np.array([r["bbox"] for r in dets], dtype=float).reshape(-1, 4)
        g_box = np.array([a["bbox"] for a in anns], dtype=float).reshape(-1, 4)
        ious = _box_ious(d_box[pair_det], g_box[pair_gt], g_crowd[pair_gt])
    thresholds = np.minimum(IOU_THRS, 1 - 1e-10)

    gt_counts = np.zeros((K, len(AREA_RANGES), I), dtype=np.int32)
    tp_top = np.zeros((K, len(AREA_RANGES), 3, I), dtype=np.int32)
    parts = {}
    d_k, d_i = d_key // I, d_key % I
    g_k, g_i = g_key // I, g_key % I
    for a, (low, high) in enumerate(AREA_RANGES):
        g_ignore = g_crowd | (g_area < low) | (g_area > high)
        np.add.at(gt_counts[:, a], (g_k[~g_ignore], g_i[~g_ignore]), 1)
        # within each group, ignored ground truth last (stable): slot -> annotation index
        slot_gt = np.lexsort((g_ignore, g_key))
        dtm = np.zeros((T, len(d_key)), dtype=bool)
        dt_ig = np.zeros((T, len(d_key)), dtype=bool)
        taken = np.zeros((T, len(anns)), dtype=bool)  # by slot
        local_of_slot = slot_gt - g_start[np.searchsorted(groups, g_key[slot_gt])]
        max_rank = int(d_rank[paired].max()) + 1 if paired.any() else 0
        for r in range(max_rank):
            active = np.nonzero(paired & (d_rank == r))[0]
            q = d_group[active]
            width = int(g_count[q].max())
            j = np.arange(width)[None, :]
            valid = j < g_count[q][:, None]
            slot = np.where(valid, g_start[q][:, None] + j, 0)
            iou = np.where(valid, ious[pair_start[active][:, None] + local_of_slot[slot]], -1.0)
            ignored = g_ignore[slot_gt[slot]]
            crowd = g_crowd[slot_gt[slot]]
            free = valid[None] & ~(taken[:, slot] & ~crowd[None])
            ok = free & (iou[None] >= thresholds[:, None, None])
            best = np.full((T, len(active)), -1)
            for stage in (~ignored, ignored):  # non-ignored ground truth first, as pycocotools
                candidate = ok & stage[None]
                value = np.where(candidate, iou[None], -np.inf)
                last = width - 1 - np.argmax(value[:, :, ::-1], axis=2)  # ties: the later one
                found = candidate.any(axis=2) & (best < 0)
                best = np.where(found, last, best)
            matched = best >= 0
            t_idx, n_idx = np.nonzero(matched)
            chosen = slot[n_idx, best[t_idx, n_idx]]
            taken[t_idx, chosen] = True
            dtm[:, active] = matched
            dt_ig[t_idx, active[n_idx]] = g_ignore[slot_gt[chosen]]
        outside = (d_area < low) | (d_area > high)
        dt_ig |= ~dtm & outside[None]
        tp, fp = dtm & ~dt_ig, ~dtm & ~dt_ig
        tp_count = tp.sum(0)
        for m, max_det in enumerate(MAX_DETS):
            top = d_rank < max_det
            np.add.at(tp_top[:, a, m], (d_k[top], d_i[top]), tp_count[top])
        bounds = np.searchsorted(d_k, np.arange(K + 1))
        for k in range(K):
            s, e = bounds[k], bounds[k + 1]
            if e > s:
                parts[k, a] = (d_score[s:e], d_i[s:e], tp[:, s:e], fp[:, s:e])
    return ImageMatches.from_parts(image_ids, category_ids, IOU_THRS, REC_THRS, gt_counts, tp_top,
                                   parts)
