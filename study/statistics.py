"""The study's uncertainty: bootstrap intervals on every AP, paired differences against `none`, and
AP against darkness (P, mPC, rPC, EV50) per remedy.

Computed from the detections every evaluation saved, so the evaluation steps run without their
own bootstrap. On each (test set, IoU type) every row's detections are resampled together
(coco_bootstrap.resampled_stats), so each difference is paired. The resample weights depend only
on the number of images, --bootstrap and --seed; the level sets and the normal-light set share
the val annotation, so their resamples are the same images too and a darkness curve's intervals
are paired across levels (robustness.robustness_summary).
"""
import numpy as np

from torch_utils_lib.evaluation.metrics import BOX_TYPES, IOU_TYPES, STAT_NAMES
from torch_utils_lib.evaluation.scoring import matches_of_files, paired_intervals
from study.remedies import BASELINE
from study.sets import COLUMN, LEVEL, RAW, RGB
from torch_utils_lib.evaluation.robustness import robustness_summary

BEST_CLASSICAL = "best_classical"
FROZEN = "frozen"  # a REMEDY+ft row against REMEDY's row (study/retrain.py)


def add_intervals(test_sets, rows, n=1000, seed=0, remedies=()):
    """Add to every cell's stats `<stat>_ci`, `vs_none` ({stat: {delta, ci, share_le_0}}: the row
    minus `none` on the same resampled images, where `none` has a cell) and, for each learned
    remedy, `vs_best_classical` (the same against the classical enhancement with the highest
    AP on that set and IoU type, named in `remedy`), in place: coco_bootstrap.with_intervals'
    result shape. Choosing the best classical row on the same images favours it, so a learned
    remedy that beats it has cleared a high bar.
    Bbox only on the darkness levels, which serve the bbox curves, and on RAW sets, which are
    scored for boxes. Returns the resampled stats {(set name, iou type): {row: (n, 12) draws}}.
    """
    draws_by_set = {}
    if n <= 0:
        return draws_by_set
    classical = [r.name for r in remedies if r.classical]
    learned = {r.name for r in remedies if r.learned}
    frozen = {r.name: r.frozen for r in remedies if r.frozen}
    ap = STAT_NAMES.index("AP")
    for test_set in test_sets:
        cells = {row: cells[test_set.name] for row, cells in rows.items() if test_set.name in cells}
        full_cell = test_set.kind == RGB and test_set.role == COLUMN
        for iou_type in IOU_TYPES if full_cell else BOX_TYPES:
            files = {row: cell["detections"][iou_type] for row, cell in cells.items()
                     if iou_type in cell.get("detections", {})}
            if not files:
                continue
            matches = matches_of_files(test_set.annotation_file, files, iou_type)
            full = {row: m.stats(np.ones((1, len(m.image_ids)), dtype=np.int64))[0]
                    for row, m in matches.items()}
            best = max((row for row in classical if row in full), key=lambda row: full[row][ap],
                       default=None)
            baselines = {row: {**({BASELINE: BASELINE} if BASELINE in full else {}),
                               **({BEST_CLASSICAL: best} if best and row in learned else {}),
                               **({FROZEN: frozen[row]} if frozen.get(row) in full else {})}
                         for row in files}
            summaries, full, draws = paired_intervals({row: cells[row][iou_type] for row in files},
                                                      matches, n, seed, baselines)
            for row, stats in summaries.items():
                if BEST_CLASSICAL in baselines[row]:
                    stats[f"vs_{BEST_CLASSICAL}"] = {"remedy": best, **stats[f"vs_{BEST_CLASSICAL}"]}
                if FROZEN in baselines[row]:
                    stats[f"vs_{FROZEN}"] = {"remedy": frozen[row], **stats[f"vs_{FROZEN}"]}
                # a new cell: one evaluation's cells may be one dict shared by several sets (the
                # reference row's on every synthesis), whose paired differences differ per set
                cells[row] = rows[row][test_set.name] = {**cells[row], iou_type: stats}
            draws_by_set[test_set.name, iou_type] = draws
    return draws_by_set


def darkness_curves(test_sets, rows, draws_by_set, iou_type="bbox", stat="AP"):
    """{method: {remedy: robustness_summary}} over the level sets of each synthesis method.

    P is the remedy's AP on the normal-light set; a remedy scored on low light only (restoration,
    enhancement, RAW pipelines) starts from the normal-light detector's P, what it would see at 0 EV.
    A remedy's levels are the RGB level sets, or the RAW ones where it has no RGB cells (a
    remedy that reads RAW). The RAW levels list the same val images in the same order, so their resamples are the
    normal-light set's images too.
    """
    normal = next((t.name for t in test_sets if t.kind == RGB and not t.low_light), None)
    j = STAT_NAMES.index(stat)
    curves = {}
    for method in dict.fromkeys(t.method for t in test_sets if t.role == LEVEL):
        by_kind = {kind: sorted((t for t in test_sets if t.method == method and t.role == LEVEL
                                 and t.kind == kind), key=lambda t: t.severity)
                   for kind in (RGB, RAW)}
        for remedy, cells in rows.items():
            levels = next((sets for sets in by_kind.values() if sets and all(
                t.name in cells and iou_type in cells[t.name] for t in sets)), None)
            if levels is None:
                continue
            clean_row = remedy if normal in cells else BASELINE
            if iou_type not in rows.get(clean_row, {}).get(normal, {}):
                continue
            draws = [draws_by_set.get((name, iou_type), {}).get(row)
                     for name, row in [(normal, clean_row)] + [(t.name, remedy) for t in levels]]
            paired = all(d is not None for d in draws)
            curves.setdefault(method, {})[remedy] = robustness_summary(
                [t.severity for t in levels], rows[clean_row][normal][iou_type][stat],
                [cells[t.name][iou_type][stat] for t in levels],
                draws[0][:, j] if paired else None,
                np.stack([d[:, j] for d in draws[1:]]) if paired else None)
    return curves
