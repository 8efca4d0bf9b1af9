"""AP per real condition: a test set whose annotation gives its images a condition field
(ExDark's `lighting` and `scene`, dataset/convert_exdark.py; the sample set's `brightness`) gets, for every row, bbox AP with its
bootstrap interval and the paired difference against `none` on each value's images.

Each value's subset is resampled on its own (its images only, --bootstrap and --seed as the
whole set's), every row on the same resampled images, so the differences are paired.
"""
import numpy as np

from study.remedies import BASELINE
from study.sets import COLUMN, RGB
from torch_utils_lib.evaluation.coco_bootstrap import load_detections
from torch_utils_lib.evaluation.scoring import METRICS, paired_intervals

# image-level fields that name a condition of the image (ExDark's 10 lighting types; indoor or
# outdoor; the sample set's dim or bright images, dataset/make_sample.py); a field counts where
# every image of the set carries it
CONDITION_FIELDS = ("lighting", "scene", "brightness")
CONDITION_STATS = ("AP", "AP50")


def image_conditions(gt, fields=CONDITION_FIELDS):
    """{field: {value: [image ids]}} of the fields every image of `gt` carries (values in order
    of first appearance)."""
    found = {}
    for field in fields:
        if gt["images"] and all(image.get(field) is not None for image in gt["images"]):
            groups = found.setdefault(field, {})
            for image in gt["images"]:
                groups.setdefault(str(image[field]), []).append(image["id"])
    return found


def condition_stats(gt, results, n, seed, iou_type="bbox"):
    """{field: {value: {row: stats with intervals and vs_none}}} of every row's `results` (ids as
    `gt` numbers them) on the images of each condition value."""
    # one matching per row; a value's images are its columns (as scoring's strata, score.py --by)
    matches = {row: METRICS["coco"].match(gt, found, iou_type) for row, found in results.items()}
    image_ids = next(iter(matches.values())).image_ids
    column_of = {image_id: column for column, image_id in enumerate(image_ids)}
    baselines = {row: {BASELINE: BASELINE} for row in results
                 if BASELINE in results and row != BASELINE}
    tables = {}
    for field, groups in image_conditions(gt).items():
        for value, ids in groups.items():
            columns = sorted(column_of[image_id] for image_id in ids)
            weights = np.zeros((1, len(image_ids)), dtype=np.int64)
            weights[0, columns] = 1
            stats = {}
            for row, row_matches in matches.items():
                values = row_matches.stats(weights)[0]
                stats[row] = {s: float(values[row_matches.stat_names.index(s)])
                              for s in CONDITION_STATS}
            summary, _, _ = paired_intervals(stats, matches, n, seed, baselines, CONDITION_STATS,
                                             columns)
            tables.setdefault(field, {})[value] = {"images": len(ids), "rows": summary}
    return tables


def condition_tables(test_sets, rows, n=1000, seed=0):
    """{set name: condition_stats} for every RGB column set whose annotation carries a condition
    field ({} where none does, or with --bootstrap 0: every AP comes with its interval)."""
    out = {}
    if n <= 0:
        return out
    for test_set in test_sets:
        if test_set.kind != RGB or test_set.role != COLUMN:
            continue
        files = {row: cells[test_set.name]["detections"]["bbox"] for row, cells in rows.items()
                 if "bbox" in cells.get(test_set.name, {}).get("detections", {})}
        if not files:
            continue
        gt, results = load_detections(test_set.annotation_file, files)
        if image_conditions(gt):
            out[test_set.name] = condition_stats(gt, results, n, seed)
    return out
