"""Score detection sets from their COCO results files: the field's metric, exact bootstrap intervals,
paired differences, per-category AP and strata of an image field (study/score.py's library).

The flow: `load_results` (read and check every file before anything is written) -> one matching
per set and IoU type (the metric's matcher: COCO's ImageMatches or voc.VocMatches) ->
`paired_intervals` (the one paired bootstrap of every `add_intervals`: resampled stats and
coco_bootstrap.with_intervals' result shape) -> per-category AP -> strata (the same matchings,
the images of one field value resampled). A metric is a `METRICS` entry, not a branch.
"""
import math
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from torch_utils_lib.data.categories import detector_name_for, match_categories, present_categories
from torch_utils_lib.data.coco_json import load_coco_json, normalize_coco
from torch_utils_lib.evaluation.coco_bootstrap import (difference_mark, format_interval,
                                                       load_detections,
                                                       resampled_stats_of_matches, with_intervals)
from torch_utils_lib.evaluation import coco_match
from torch_utils_lib.evaluation.metrics import (BOX_TYPES, COCO_SCORED, INTERVAL_STATS, IOU_TYPES,
                                                STAT_NAMES, VOC_STAT_NAMES)
from torch_utils_lib.evaluation.voc import VocMatches
from torch_utils_lib.toolkit.atomic_io import read_json
from torch_utils_lib.toolkit.errors import UserError


@dataclass(frozen=True)
class Metric:
    stat_names: tuple  # the columns of its stats (draws)
    scored: tuple  # the stats shown with intervals and paired differences
    iou_types: tuple  # what it can score
    match: object  # (gt dict, results, iou type) -> matches with image_ids, stat_names, stats(weights)


def coco_matches(gt, results, iou_type):
    """The vectorised matching (coco_match), equal to pycocotools' array for array."""
    return coco_match.match(gt, results, iou_type)


METRICS = {
    "coco": Metric(STAT_NAMES, COCO_SCORED, IOU_TYPES, coco_matches),
    **{name: Metric(names, names, BOX_TYPES,
                    lambda gt, results, iou_type, name=name: VocMatches(gt, results, name))
       for name, names in VOC_STAT_NAMES.items()},
}


# ---------------------------------------------------------------- the one paired bootstrap

def paired_intervals(stats, matches, n=1000, seed=0, baselines=None, names=INTERVAL_STATS,
                     columns=None):
    """(with_intervals' rows, full, draws) of the sets `matches` ({row: matches}, one matching
    each, same images) resampled together: row r of every set draws the same images, so each
    `vs_<baseline>` is paired. `columns` (image indices): resample these images only (a stratum)."""
    full, draws = resampled_stats_of_matches(matches, n, seed, columns=columns)
    stat_names = next(iter(matches.values())).stat_names if matches else STAT_NAMES
    return with_intervals(stats, full, draws, baselines, names, stat_names), full, draws


def matches_of_files(annotation, files, iou_type, metric="coco"):
    """{row: matches} of dumped detection files ({row: path}) on `annotation`
    (coco_bootstrap.load_detections' formats)."""
    gt, results = load_detections(annotation, files)
    return {row: METRICS[metric].match(gt, dets, iou_type) for row, dets in results.items()}


# ---------------------------------------------------------------- reading results files

def _bad_box(bbox):
    return (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)
            or bbox[2] < 0 or bbox[3] < 0)


def _mask_problem(segmentation, image):
    size = [image.get("height"), image.get("width")]
    if isinstance(segmentation, dict):
        if not isinstance(segmentation.get("counts"), (str, list)) or segmentation.get("size") != size:
            return f"segmentation is not an RLE of the image's size {size}"
        return None
    if (isinstance(segmentation, list) and segmentation
            and all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)
                    for p in segmentation)):
        return None
    return "segmentation is neither an RLE nor polygons"


def class_lookup(gt, result_classes, category_map, source):
    """{value of an entry's category_id: annotation category id}: the annotation's ids, or with
    `result_classes` (class names, 0-based index per line) the index matched by name."""
    if result_classes is None:
        return {c["id"]: c["id"] for c in gt["categories"]}
    detector_names = ["__background__", *result_classes]
    # every class the annotation uses must match (one line otherwise); the rest match if they can
    label_map = match_categories(present_categories(gt), detector_names, category_map, source)
    for category in gt["categories"]:
        target = detector_name_for(category["name"], detector_names, category_map)
        if category["id"] not in label_map and target is not None:
            label_map[category["id"]] = detector_names.index(target)
    return {label - 1: category_id for category_id, label in label_map.items()}


def read_result_classes(path):
    """Class names of a --result_classes file, one a line (blank lines ignored)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the class list ({e.__class__.__name__})") from None
    if not names:
        raise UserError(f"{path}: lists no class")
    return names


def check_entries(path, entries, images, classes, iou_types):
    """Refuse, in one line naming `path` and the first bad entry (and a count of the rest), entries
    on images the annotation lacks, unknown classes, non-finite scores, non-finite or
    negative-size boxes and masks that are not the image's."""
    if not isinstance(entries, list):
        raise UserError(f"{path}: expected a COCO results list ([{{image_id, category_id, bbox, "
                        f"score}}, ...]), got a JSON {type(entries).__name__}")
    first, count = None, 0
    for n, r in enumerate(entries):
        problem = None
        if not isinstance(r, dict):
            problem = "is not an object"
        elif r.get("image_id") not in images:
            problem = f"image_id {r.get('image_id')!r} is not in the annotation"
        elif r.get("category_id") not in classes:
            problem = f"category_id {r.get('category_id')!r} is not a known class"
        elif not (isinstance(r.get("score"), (int, float)) and math.isfinite(r["score"])):
            problem = f"score {r.get('score')!r} is not a finite number"
        elif ("bbox" in iou_types or "bbox" in r) and _bad_box(r.get("bbox")):
            problem = f"bbox {r.get('bbox')!r} is not 4 finite numbers of non-negative size"
        elif "segm" in iou_types:
            problem = ("has no segmentation (--iou_types segm needs masks)" if "segmentation" not in r
                       else _mask_problem(r["segmentation"], images[r["image_id"]]))
        if problem:
            first = first or f"entry {n}: {problem}"
            count += 1
    if first:
        rest = f" ({count - 1} more bad entr{'y' if count == 2 else 'ies'})" if count > 1 else ""
        raise UserError(f"{path}: {first}{rest}")


def load_results(annotation, files, iou_types=None, metric="coco", result_classes=None,
                 category_map=None):
    """(gt, {set: {iou type: results}}, iou types) of results files ({set: path}) on `annotation`,
    every entry checked (check_entries) before anything is scored; image and category ids become
    normalize_coco's. `iou_types` None: bbox, and segm when every file's entries carry masks
    (COCO metric). Polygon masks become RLE."""
    if iou_types is not None:
        unknown = [t for t in iou_types if t not in METRICS[metric].iou_types]
        if unknown:
            raise UserError(f"--iou_types {' '.join(unknown)}: --metric {metric} scores "
                            f"{' '.join(METRICS[metric].iou_types)} only")
    gt, original_ids = normalize_coco(load_coco_json(annotation, finite_boxes=True))
    to_int = {original: i for i, original in original_ids.items()}
    images = {original: image for original, image in
              zip((original_ids[i["id"]] for i in gt["images"]), gt["images"])}
    classes = class_lookup(gt, result_classes, category_map, annotation)
    saved = {name: read_json(path, "detections") for name, path in files.items()}
    if iou_types is None:
        masks = all(isinstance(s, list) and s and all(isinstance(r, dict) and "segmentation" in r
                                                      for r in s) for s in saved.values())
        iou_types = tuple(t for t in METRICS[metric].iou_types if t == "bbox" or masks)
    results = {}
    for name, path in files.items():
        check_entries(path, saved[name], images, classes, iou_types)
        results[name] = {}
        for iou_type in iou_types:
            out = []
            for r in saved[name]:
                image = images[r["image_id"]]
                entry = {"image_id": to_int[r["image_id"]], "category_id": classes[r["category_id"]],
                         "score": float(r["score"])}
                if iou_type == "bbox":
                    entry["bbox"] = [float(v) for v in r["bbox"]]
                else:
                    segmentation = r["segmentation"]
                    if isinstance(segmentation, list):
                        rle = mask_utils.merge(mask_utils.frPyObjects(
                            segmentation, image["height"], image["width"]))
                        segmentation = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
                    entry["segmentation"] = segmentation
                out.append(entry)
            results[name][iou_type] = out
    return gt, results, tuple(iou_types)


# ---------------------------------------------------------------- scoring

def strata_of(gt, field, annotation):
    """{value: image column indices} of an image-level field (images sorted by id, the matchings'
    order); UserError when an image lacks it."""
    by_value = {}
    for column, image in enumerate(sorted(gt["images"], key=lambda i: i["id"])):
        if field not in image:
            raise UserError(f"{annotation}: image {image.get('file_name', image['id'])!r} has no "
                            f"{field!r} (--by {field} needs it on every image)")
        by_value.setdefault(str(image[field]), []).append(column)
    return {value: np.asarray(columns) for value, columns in sorted(by_value.items())}


def _rows(matches_by_set, metric, n, seed, baseline, columns=None):
    names = METRICS[metric].scored
    stats = {}
    for name, matches in matches_by_set.items():
        weights = np.zeros((1, len(matches.image_ids)), dtype=np.int64)
        weights[0, columns if columns is not None else slice(None)] = 1
        values = matches.stats(weights)[0]
        stats[name] = {s: float(values[matches.stat_names.index(s)]) for s in names}
    if n <= 0:
        return stats
    baselines = {name: {baseline: baseline} for name in matches_by_set
                 if baseline is not None and name != baseline}
    rows, _, _ = paired_intervals(stats, matches_by_set, n, seed, baselines, names, columns)
    return rows


def score(gt, results, iou_types, metric="coco", n=1000, seed=0, baseline=None, by=None,
          annotation="annotation"):
    """{"rows": {set: {iou type: stats with <stat>_ci and vs_<baseline>}}, "per_category":
    {set: {iou type: {class: stats}}}, "strata": {field: {value: {set: {iou type: ...}}}}}:
    one matching per set and IoU type, every table from it."""
    metric_ = METRICS[metric]
    strata = strata_of(gt, by, annotation) if by else {}
    names = {c["id"]: c["name"] for c in gt["categories"]}
    out = {"rows": {name: {} for name in results}, "per_category": {name: {} for name in results},
           "strata": {by: {value: {name: {} for name in results} for value in strata}} if by else {}}
    for iou_type in iou_types:
        matches = {name: metric_.match(gt, by_type[iou_type], iou_type)
                   for name, by_type in results.items()}
        for name, row in _rows(matches, metric, n, seed, baseline).items():
            out["rows"][name][iou_type] = row
            out["per_category"][name][iou_type] = matches[name].category_stats(names)
        for value, columns in strata.items():
            for name, row in _rows(matches, metric, n, seed, baseline, columns).items():
                out["strata"][by][value][name][iou_type] = row
    return out


# ---------------------------------------------------------------- tables

def table_rows(rows, iou_type, names, baseline=None):
    """{set: {column: text}}: each stat with its interval and, against `baseline`, 'Δ <stat>':
    '+0.012 [0.003, 0.021] ▲ (≤0: 0.4%)'."""
    table = {}
    for name, by_type in rows.items():
        stats = by_type.get(iou_type)
        if stats is None:
            continue
        cells = {s: format_interval(stats[s], stats[f"{s}_ci"]) if f"{s}_ci" in stats
                 else f"{stats[s]:.3f}" for s in names}
        for s in names:
            difference = stats.get(f"vs_{baseline}", {}).get(s)
            if difference:
                low, high = difference["ci"]
                cells[f"Δ {s}"] = (f"{difference['delta']:+.3f} [{low:+.3f}, {high:+.3f}] "
                                   f"{difference_mark(difference['ci'])} (≤0: {100 * difference['share_le_0']:.1f}%)")
            elif baseline is not None:
                cells[f"Δ {s}"] = "baseline" if name == baseline else ""
        table[name] = cells
    return table


def category_rows(per_category, iou_type, stat):
    """{class: {set: AP}} of every set's per-category `stat`."""
    rows = {}
    for name, by_type in per_category.items():
        for category, stats in by_type.get(iou_type, {}).items():
            rows.setdefault(category, {})[name] = round(stats[stat], 4)
    return rows
