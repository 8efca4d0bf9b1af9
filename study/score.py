"""Check a detector's claim from its COCO results files: every system's AP (COCO) or mAP (VOC, as
mmdetection's VOCMetric) with its 95% bootstrap interval, paired differences against a baseline,
per-category AP and, with --by, the same per value of an image field of the annotation.

Reads COCO results lists (mmdetection --format-only, detectron2's coco_instances_results.json,
ultralytics' predictions.json): bbox, and segm where entries carry masks. Writes score.json,
score.md and score.png (a forest plot) to --output_dir.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.data.categories import load_category_map
from torch_utils_lib.evaluation.metrics import IOU_TYPES
from torch_utils_lib.toolkit.atomic_io import atomic_write_json, atomic_write_text
from torch_utils_lib.toolkit.cli import ArgumentParser, bootstrap_resamples
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_file
from torch_utils_lib.toolkit.names import parse_named_values
from torch_utils_lib.toolkit.runinfo import write_run_metadata
from torch_utils_lib.toolkit.tables import markdown_table

METRIC_NAMES = ("coco", "voc", "voc07")


def build_parser():
    p = ArgumentParser(
        example="python study/score.py --annotation data/sample/annotations/instances_val.json "
                "--detections none=runs/demo/eval/normal/checkpoint/detections_none.gamma_noise_bbox.json "
                "--detections gamma=runs/demo/eval/normal/checkpoint/detections_gamma.gamma_noise_bbox.json "
                "--baseline none",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--annotation", required=True, help="ground truth (COCO json)")
    p.add_argument("--detections", action="append", required=True, metavar="NAME=FILE",
                   help="repeatable: a system's COCO results file")
    p.add_argument("--baseline", default=None, metavar="NAME",
                   help="paired differences of every other system against this one")
    p.add_argument("--iou_types", nargs="+", choices=IOU_TYPES, default=None,
                   help="default: bbox, and segm when every file carries masks")
    p.add_argument("--metric", choices=METRIC_NAMES, default="coco",
                   help="coco: AP..APl; voc / voc07: mmdetection's VOCMetric (area / 11points)")
    p.add_argument("--bootstrap", type=bootstrap_resamples, default=1000, metavar="N",
                   help="resamples of the images for 95%% intervals and paired differences (0: off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    p.add_argument("--by", default=None, metavar="FIELD",
                   help="also per value of the image field images[].FIELD of the annotation")
    p.add_argument("--category_map", default=None, metavar="FILE",
                   help="JSON {dataset class name: results class name} (with --result_classes)")
    p.add_argument("--result_classes", default=None, metavar="FILE",
                   help="class names, one a line: category_id is a 0-based index into them "
                        "(YOLO-style), matched to the annotation's classes by name")
    p.add_argument("--output_dir", default="score", help="score.json, score.md, score.png")
    return p


def main():
    args = build_parser().parse_args()
    from torch_utils_lib.evaluation.scoring import (category_rows, load_results,
                                                    read_result_classes, score, table_rows, METRICS)
    files = parse_named_values(args.detections, "--detections")
    if args.baseline is not None and args.baseline not in files:
        raise UserError(f"--baseline {args.baseline}: not among --detections "
                        f"({', '.join(files)})")
    require_file(args.annotation, "annotation file")
    for name, path in files.items():
        require_file(path, f"detections of {name}")
    check_outputs_apart({"--annotation": args.annotation, "--detections": list(files.values()),
                         "--category_map": args.category_map,
                         "--result_classes": args.result_classes},
                        {"--output_dir": args.output_dir})
    if args.category_map and not args.result_classes:
        raise UserError("--category_map: only acts with --result_classes (class names to match)")
    gt, results, iou_types = load_results(
        args.annotation, files, args.iou_types, args.metric,
        read_result_classes(args.result_classes), load_category_map(args.category_map))
    out = score(gt, results, iou_types, args.metric, args.bootstrap, args.seed, args.baseline,
                args.by, args.annotation)
    names = METRICS[args.metric].scored
    sections = []
    for iou_type in iou_types:
        sections.append(f"## {iou_type}\n\n" + markdown_table(
            table_rows(out["rows"], iou_type, names, args.baseline), first_column="system"))
        sections.append(f"### {iou_type}: per-category {names[0]}\n\n" + markdown_table(
            category_rows(out["per_category"], iou_type, names[0]), first_column="category"))
        for field, values in out["strata"].items():
            for value, rows in values.items():
                sections.append(f"### {iou_type}, {field} = {value}\n\n" + markdown_table(
                    table_rows(rows, iou_type, names, args.baseline), first_column="system"))
    text = "\n\n".join(sections) + "\n"
    print(text)
    from torch_utils_lib.plots.charts import plot_forest  # matplotlib: only once scored
    os.makedirs(args.output_dir, exist_ok=True)
    write_run_metadata(args.output_dir, args)
    atomic_write_json(os.path.join(args.output_dir, "score.json"), {
        "annotation": args.annotation, "detections": files, "metric": args.metric,
        "iou_types": list(iou_types), "bootstrap": args.bootstrap, "seed": args.seed,
        "baseline": args.baseline, **out})
    atomic_write_text(os.path.join(args.output_dir, "score.md"), text)
    plot_forest(out["rows"], iou_types, names[0], args.baseline,
                os.path.join(args.output_dir, "score.png"))
    print(f"saved {os.path.join(args.output_dir, 'score.md')} (and score.json, score.png)")


if __name__ == "__main__":
    run_main(main)
