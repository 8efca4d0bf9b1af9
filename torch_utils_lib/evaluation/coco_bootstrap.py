"""COCO AP with confidence intervals: a bootstrap over images on one matching (matching.ImageMatches).

A bootstrap over images draws each image's weight as multinomial counts (images resampled with
replacement); the weighted stats equal pycocotools' on the set with each image repeated that often.
Every result with intervals has one shape (`with_intervals`): `<stat>_ci` and `vs_<baseline>`.
"""
import numpy as np

from torch_utils_lib.toolkit.atomic_io import read_json
from torch_utils_lib.evaluation.matching import ImageMatches
from torch_utils_lib.evaluation.metrics import INTERVAL_STATS, STAT_NAMES
from torch_utils_lib.data.coco_json import load_coco_json, normalize_coco

LEVEL = 0.95
RESAMPLE_CHUNK = 500  # resamples whose weights are held at once


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


def resampled_stats_of_matches(matches_by_set, n=1000, seed=0, chunk=RESAMPLE_CHUNK, columns=None):
    """(full, draws) as resampled_stats from already built {set: ImageMatches} (one matching per
    set, e.g. the evaluation's own), streaming the resamples `chunk` at a time: memory holds one
    chunk's weights and work arrays, whatever `n`; the draws do not depend on `chunk`.
    `columns` (image indices): the set of these images only, and resamples of them (a stratum)."""
    image_ids = None
    for name, matches in matches_by_set.items():
        if image_ids is None:
            image_ids = matches.image_ids
        elif matches.image_ids != image_ids:
            raise ValueError(f"{name}: its images differ from the other sets' (pairing needs the same)")
    n_images = len(image_ids or [])
    columns = np.arange(n_images) if columns is None else np.asarray(columns, dtype=np.intp)
    ones = np.zeros((1, n_images), dtype=np.int64)
    ones[0, columns] = 1
    full = {name: m.stats(ones)[0] for name, m in matches_by_set.items()}
    draws = {name: np.empty((n, len(getattr(m, "stat_names", STAT_NAMES))))
             for name, m in matches_by_set.items()}
    for start in range(0, n, chunk):
        drawn = bootstrap_weights(len(columns), min(chunk, n - start), seed, start)
        weights = drawn if len(columns) == n_images else np.zeros((len(drawn), n_images), np.int64)
        weights[:, columns] = drawn
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


def interval_summary(full, draws, names=INTERVAL_STATS, stat_names=STAT_NAMES):
    """{stat: value, stat_ci: [low, high]} from one set's full stats and its resampled stats
    (columns named by `stat_names`: COCO's 12, or a VOC mAP)."""
    out = {}
    for name in names:
        j = stat_names.index(name)
        out[name] = float(full[j])
        out[f"{name}_ci"] = percentile_interval(draws[:, j])
    return out


def difference_summary(full_a, full_b, draws_a, draws_b, names=INTERVAL_STATS,
                       stat_names=STAT_NAMES):
    """{stat: {"delta": A - B, "ci": [low, high], "share_le_0": share of resamples with delta <= 0}}."""
    out = {}
    for name in names:
        j = stat_names.index(name)
        deltas = draws_a[:, j] - draws_b[:, j]
        out[name] = {"delta": float(full_a[j] - full_b[j]), "ci": percentile_interval(deltas),
                     "share_le_0": float(np.mean(deltas <= 0))}
    return out


def with_intervals(stats, full, draws, baselines=None, names=INTERVAL_STATS, stat_names=STAT_NAMES):
    """The one result shape of every bootstrap: {row: a copy of `stats[row]` with `<stat>_ci` and,
    for each (label, baseline row) in `baselines[row]`, `vs_<label>`: {stat: {"delta": row -
    baseline, "ci", "share_le_0"}}} on the same resampled images.

    `stats` holds the rows ({row: stats}) of one IoU type on one set of images, `full`/`draws`
    their resampled_stats (rows evaluated on one annotation: detectors, remedies or image sets).
    """
    out = {}
    for row, row_stats in stats.items():
        intervals = interval_summary(full[row], draws[row], names, stat_names)
        summary = {**row_stats, **{k: v for k, v in intervals.items() if k.endswith("_ci")}}
        for label, baseline in (baselines or {}).get(row, {}).items():
            summary[f"vs_{label}"] = difference_summary(full[row], full[baseline], draws[row],
                                                        draws[baseline], names, stat_names)
        out[row] = summary
    return out


def format_interval(value, interval, digits=3):
    """'0.412 [0.388, 0.437]'."""
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


NOT_SIGNIFICANT = " (n.s.)"
HIGHER, LOWER, WITHIN = "▲", "▼", "·"  # a paired difference's mark in tables


def difference_mark(interval):
    """▲ / ▼: a paired difference's interval lies above / below 0; ·: it holds 0 (n.s.)."""
    low, high = interval
    return HIGHER if low > 0 else LOWER if high < 0 else WITHIN


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
