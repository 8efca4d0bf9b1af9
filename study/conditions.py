"""AP per real condition: a test set whose annotation gives its images a condition field
(ExDark's `lighting` and `scene`, dataset/convert_exdark.py; the sample set's `brightness`) gets, for every row, bbox AP with its
bootstrap interval and the paired difference against `none` on each value's images.

Each value's subset is resampled on its own (its images only, --bootstrap and --seed as the
whole set's), every row on the same resampled images, so the differences are paired.
"""
from study.remedies import BASELINE
from study.sets import COLUMN, RGB
from torch_utils_lib.data.coco_json import subset_coco
from torch_utils_lib.evaluation.coco_bootstrap import load_detections, resampled_stats, with_intervals
from torch_utils_lib.evaluation.metrics import STAT_NAMES

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
    tables = {}
    for field, groups in image_conditions(gt).items():
        for value, image_ids in groups.items():
            subset = subset_coco(gt, image_ids)
            keep = set(image_ids)
            full, draws = resampled_stats(subset, {row: [r for r in found if r["image_id"] in keep]
                                                   for row, found in results.items()},
                                          iou_type, n, seed)
            stats = {row: {s: float(full[row][STAT_NAMES.index(s)]) for s in CONDITION_STATS}
                     for row in results}
            baselines = {row: {BASELINE: BASELINE} for row in results
                         if BASELINE in results and row != BASELINE}
            summary = with_intervals(stats, full, draws, baselines, names=CONDITION_STATS)
            tables.setdefault(field, {})[value] = {
                "images": len(image_ids), "rows": summary}
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
