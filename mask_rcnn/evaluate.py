"""Evaluate Mask R-CNN on normal-light and low-light images: one table of AP and its drop.

Rows: the given checkpoint, any --compare checkpoints, and torchvision's COCO-pretrained model
when its weights are in the local cache and every dataset class maps onto a COCO class. Classes
match by name with synonyms (torch_utils_lib/data/categories.py; --category_map extends them), never by
id; dumped detections carry the annotation's own category ids.
Example:
  python mask_rcnn/evaluate.py --weight_path runs/mask_rcnn/sample/last.pth \\
      --normal_light_image_dir data/sample/val \\
      --low_light_image_dir data/sample/low_light/gamma_noise/val
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.data.categories import load_category_map
from torch_utils_lib.toolkit.cli import (ArgumentParser, add_common_args, bootstrap_resamples,
                                         int_in_range, probability)
from torch_utils_lib.toolkit.flag_choices import (BATCH_SIZE_RANGE, COCO_BACKENDS, DETECTOR_NAMES,
                                                  FIGURE_COUNT_RANGE)
from torch_utils_lib.data.coco_json import load_coco_json
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_file
from torch_utils_lib.toolkit.names import parse_named_values
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_annotation, sample_images, sample_low_light
from torch_utils_lib.toolkit.runinfo import write_run_metadata
from torch_utils_lib.toolkit.tables import markdown_table


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--normal_light_image_dir", "--normal_light_img_dir", dest="normal_light_image_dir",
                   default=sample_images("val"), help="normal-light images")
    p.add_argument("--low_light_image_dir", "--low_light_img_dir", dest="low_light_image_dir",
                   default=sample_low_light("val", "gamma_noise"),
                   help="the same images in low light (synthetic, or restored ones); 'none': "
                        "score the normal-light set only")
    p.add_argument("--annotation", default=sample_annotation("val"), help="ground truth (COCO json)")
    p.add_argument("--weight_path", default=os.path.join(RUNS_DIR, "mask_rcnn", "sample", "last.pth"),
                   help="checkpoint written by mask_rcnn/train.py, or a torchvision detector name "
                        "(COCO weights from the torch hub cache)")
    p.add_argument("--category_map", default=None, metavar="FILE",
                   help="JSON {dataset class name: detector class name}: overrides the built-in "
                        "synonyms (motorbike->motorcycle, diningtable->dining table, ...)")
    p.add_argument("--image_set", action="append", default=[], metavar="NAME=IMAGE_DIR[,ANNOTATION]",
                   help="repeatable: score these sets instead of the normal/low-light pair "
                        "(ANNOTATION defaults to --annotation); detections go to "
                        "OUTPUT_DIR/<model>/detections_<NAME>_<iou type>.json")
    p.add_argument("--compare", nargs="*", default=[], metavar="NAME=CHECKPOINT",
                   help="more checkpoints as rows, e.g. finetuned=runs/mask_rcnn/low/last.pth")
    p.add_argument("--pretrained", default="maskrcnn_resnet50_fpn",
                   help="COCO-pretrained torchvision row when cached and applicable ('none' to skip)")
    p.add_argument("--output_dir", "--save_image_dir", dest="output_dir", default=None,
                   help="the AP table (ap_table.md/.json), detections per model and the "
                        "comparison PNGs in OUTPUT_DIR/figures (default: CHECKPOINT_DIR/eval)")
    p.add_argument("--count", "--figure_images", dest="count", type=int_in_range(*FIGURE_COUNT_RANGE), default=4,
                   help="images to draw side by side (0: none)")
    p.add_argument("--score_threshold", type=probability, default=0.5,
                   help="smallest score drawn (AP counts every detection)")
    p.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=4)
    p.add_argument("--coco_backend", default="pycocotools", choices=COCO_BACKENDS)
    p.add_argument("--bootstrap", type=bootstrap_resamples, default=1000, metavar="N",
                   help="resamples of the images for 95%% intervals of AP and of the drop (0: off)")
    add_common_args(p)
    return p


def main():
    args = build_parser().parse_args()  # before torch is imported: --help and errors are instant
    from mask_rcnn.evaluation import (add_intervals, categories_in_coco, category_table, drop_table,
                                      comparison_figures, evaluate_model_on_sets, parse_image_sets,
                                      is_difference_column, pretrained_available, results_dir,
                                      save_comparisons, set_table, write_ap_table)
    from torch_utils_lib.models.detectors import load_detector
    from torch_utils_lib.evaluation.coco_bootstrap import fold_intervals
    from torch_utils_lib.runtime.devices import resolve_amp
    from torch_utils_lib.runtime.distributed import cleanup_distributed, init_distributed, is_main_process

    category_map = load_category_map(args.category_map)
    dist = init_distributed(args.device)
    amp = resolve_amp(args.amp, dist.device)
    # row names become folders and table rows: unique, also against the built-in rows
    reserved = {"checkpoint": "the row of --weight_path"}
    if args.pretrained != "none":
        reserved[args.pretrained] = f"the COCO row of --pretrained {args.pretrained}"
    models = {"checkpoint": args.weight_path, **parse_named_values(
        args.compare, "--compare", reserved,
        unnamed=lambda path: os.path.splitext(os.path.basename(path))[0])}
    if args.pretrained != "none" and pretrained_available(args.pretrained) and categories_in_coco(args.annotation, category_map):
        models[f"{args.pretrained} (COCO)"] = args.pretrained
    output_dir = args.output_dir or os.path.join(os.path.dirname(os.path.abspath(args.weight_path)), "eval")
    if args.image_set:
        sets = parse_image_sets(args.image_set, args.annotation)
    else:
        sets = {"normal": (args.normal_light_image_dir, args.annotation)}
        if args.low_light_image_dir.lower() != "none":
            sets["low_light"] = (args.low_light_image_dir, args.annotation)
    check_outputs_apart({**{f"--image_set {name}": list(pair) for name, pair in sets.items()},
                         "--annotation": args.annotation, "--category_map": args.category_map,
                         "--weight_path/--compare": list(models.values())},
                        {"--output_dir": output_dir})
    for spec in models.values():  # a missing checkpoint is said before any file is parsed
        if spec not in DETECTOR_NAMES:
            require_file(spec, "checkpoint")
    figures = args.count > 0 and "normal" in sets and "low_light" in sets
    if figures:  # figure names clash: refused before any work
        comparison_figures(load_coco_json(args.annotation)["images"][:args.count], args.annotation)

    results, per_category = {}, {}
    matches = {}  # the evaluation's own matching, reused by the bootstrap
    results_dirs = {name: results_dir(output_dir, name) for name in models}
    for name, spec in models.items():
        model, config = load_detector(spec, dist.device)
        results[name], per_category[name] = {}, {}
        matches[name] = {} if args.bootstrap > 0 else None
        for annotation in dict.fromkeys(a for _, a in sets.values()):
            results[name].update(evaluate_model_on_sets(
                model, config, annotation, {s: d for s, (d, a) in sets.items() if a == annotation},
                dist.device, args.batch_size, args.workers, args.coco_backend, results_dirs[name],
                amp, category_map, matches[name], per_category[name]))
        if name == "checkpoint" and figures and is_main_process():
            save_comparisons(model, config, args.annotation, sets["normal"][0], sets["low_light"][0],
                             os.path.join(output_dir, "figures"), args.count,
                             dist.device, args.score_threshold, category_map)
    cleanup_distributed()
    if not is_main_process():
        return
    if args.bootstrap > 0:
        add_intervals(results, {s: a for s, (_, a) in sets.items()}, results_dirs, args.bootstrap,
                      args.seed, matches)
    rows = set_table(results) if args.image_set else drop_table(results)
    table = markdown_table(fold_intervals(rows, is_difference_column), first_column="model | set" if args.image_set
                           else "model")
    print(table)
    for name, by_set in per_category.items():
        print(f"\nper-category AP of {name}:\n"
              + markdown_table(category_table(by_set), first_column="category"))
    write_run_metadata(output_dir, args)
    path = write_ap_table(output_dir, table, rows, results, models, sets, per_category)
    print(f"saved {path} (and .json, figures/)")


if __name__ == "__main__":
    run_main(main)
