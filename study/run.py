"""The low-light benchmark: every remedy on every test set, in one table.

Rows: the remedies registered in study/remedies.py (each brings its own --<remedy>_* flags).
Columns (study/sets.py): normal, each --methods synthesis of the val set, each --real_test
set, the RAW set where a remedy reads RAW. Builds (or takes) a normal-light set, synthesizes low light, trains what the
remedies need, scores them and writes OUTPUT_DIR/report.md (+ report.json, examples.png,
loss_curves.png, ap_bars.png, darkness.png, and every evaluation's detections under eval/). Every
AP carries a bootstrap interval and a paired difference against `none`; --severities adds AP
against darkness (P, mPC, rPC, EV50). Rerun the same command to continue an interrupted study.

On a GPU node (COCO, LIS, ExDark, RAW-NOD; README.md and docs/data.md):
  python study/run.py --output_dir runs/coco_study --nproc_per_node 8 --model maskrcnn_resnet50_fpn \\
      --weights coco --train_image_dir coco/train2017 ... \\
      --real_test "lis=LIS/RGB-dark/JPEGImages,LIS/annotations/lis_coco_JPG_test+1.json" \\
      --real_test exdark=ExDark/ExDark,ExDark/coco/instances_test.json
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from dataset.synthesis_methods import SYNTHESIS_METHODS
from study.outside import parse_outside
from study.remedies import REMEDIES, add_remedy_flags
from study.sets import parse_real_test, resolve_levels
from torch_utils_lib.data.categories import load_category_map
from torch_utils_lib.toolkit.cli import (ArgumentParser, add_common_args, bootstrap_resamples,
                                         int_in_range, non_negative_float, positive_int)
from torch_utils_lib.toolkit.flag_choices import (AUGMENTATIONS, BATCH_SIZE_RANGE,
                                                  DETECTOR_SIZE_RANGE, FIGURE_COUNT_RANGE,
                                                  PROCESSES_RANGE, WORKERS_RANGE,
                                                  check_detector_training_sizes)
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR


def build_parser():
    p = ArgumentParser(
        example='python study/run.py --output_dir runs/demo',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "demo"),
                   help="the study folder: data, checkpoints, evaluations, report.md")
    p.add_argument("--remedies", nargs="+", default=list(REMEDIES), choices=list(REMEDIES),
                   help="rows of the table (none is always needed)")
    data = p.add_argument_group("data (default: the bundled sample set, rebuilt in OUTPUT_DIR/data)")
    data.add_argument("--train_image_dir")
    data.add_argument("--train_annotation")
    data.add_argument("--val_image_dir")
    data.add_argument("--val_annotation")
    data.add_argument("--methods", nargs="+", default=list(SYNTHESIS_METHODS),
                      choices=list(SYNTHESIS_METHODS),
                      help="low-light syntheses of the val set (test sets); the first is what "
                           "learned remedies train on")
    data.add_argument("--real_test", action="append", default=[],
                      metavar="NAME=IMAGE_DIR,ANNOTATION[,NORMAL_IMAGE_DIR]",
                      help="repeatable: a real low-light test set as it is (COCO json); with a "
                           "normal-light pair, the detector on the pair is its upper reference and "
                           "image-producing remedies get PSNR/SSIM against it")
    data.add_argument("--external_images", action="append", default=[], metavar="NAME:SET=DIR",
                      help="repeatable: an outside row NAME: another method's enhanced copies of "
                           "test set SET's images (same file names), scored by the normal-light "
                           "detector with the paired differences every row gets")
    data.add_argument("--external_detections", action="append", default=[],
                      metavar="NAME:SET=FILE",
                      help="repeatable: an outside row NAME: a COCO results file on test set "
                           "SET's images (the ids of SET's annotation), scored as it is")
    data.add_argument("--category_map", default=None, metavar="FILE",
                      help="JSON {dataset class name: detector class name} for sets whose class "
                           "names differ from the detector's (beyond the built-in synonyms)")
    data.add_argument("--raw_train_dir",
                      help="RAW files for remedies that read RAW (default: the physics synthesis')")
    data.add_argument("--raw_train_annotation")
    data.add_argument("--raw_val_dir")
    data.add_argument("--raw_val_annotation")
    darkness = p.add_argument_group("AP against darkness and intervals")
    darkness.add_argument("--severities", nargs="*", type=non_negative_float, default=None,
                          metavar="EV",
                          help="fixed darkness levels in stops (exposure 2**EV times darker) at "
                               "which the val set is synthesized and every remedy scored: P, mPC, "
                               "rPC, EV50 and darkness.png (default: 2 4 6 8; 2 5 8 on the sample "
                               "set, to keep the demo within 20 minutes; none given: no levels)")
    darkness.add_argument("--severity_methods", nargs="+", default=None,
                          choices=list(SYNTHESIS_METHODS),
                          help="syntheses made at each level (default: every --methods on user "
                               "data; physics only on the sample set, to keep the demo short)")
    darkness.add_argument("--bootstrap", type=bootstrap_resamples, default=1000, metavar="N",
                          help="bootstrap resamples of the images for the 95%% intervals and the "
                               "paired differences against none (0: no intervals)")
    scale = p.add_argument_group("scale")
    scale.add_argument("--model", default="maskrcnn_resnet18_fpn")
    scale.add_argument("--weights", default="none", help="Mask R-CNN init: none, imagenet, coco or a file")
    scale.add_argument("--min_size", type=int_in_range(*DETECTOR_SIZE_RANGE), default=None,
                       help="Mask R-CNN input short side (%d-%d)" % DETECTOR_SIZE_RANGE)
    scale.add_argument("--augment", default=None, choices=tuple(AUGMENTATIONS),
                       help="Mask R-CNN training augmentation (default: dihedral on the sample set, "
                            "whose shapes have no up; hflip on user data)")
    scale.add_argument("--epochs", "--epoch", dest="epochs", type=positive_int, default=32,
                       help="Mask R-CNN epochs on normal light")
    scale.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=4)
    p.add_argument("--retrain_on_enhanced", nargs="+", default=[], metavar="REMEDY",
                   help="image remedies (of --remedies) that also get a row REMEDY+ft: the "
                        "normal-light detector fine-tuned with finetune's recipe on REMEDY's "
                        "enhanced train images, scored on its enhanced test images (the field's "
                        "second protocol)")
    add_remedy_flags(p)
    p.add_argument("--nproc_per_node", type=int_in_range(*PROCESSES_RANGE), default=1,
                   help="run training and evaluation steps under torchrun with this many processes")
    p.add_argument("--count", "--figure_images", dest="count", type=int_in_range(*FIGURE_COUNT_RANGE), default=4,
                   help="example images per synthetic set in examples.png (2 per real set)")
    add_common_args(p, workers=False, amp=False)
    p.add_argument("--workers", type=int_in_range(1, WORKERS_RANGE[1]), default=2, help="synthesis processes")
    p.add_argument("--overwrite", action="store_true", help="redo steps whose outputs exist")
    return p


def check_args(args):
    """Checks of the arguments alone; the study checks its plan (names, folders, inputs) when
    it is built, also before the first step."""
    given = [args.train_image_dir, args.train_annotation, args.val_image_dir, args.val_annotation]
    if any(given) and not all(given):
        raise UserError("give all of --train_image_dir, --train_annotation, --val_image_dir, "
                        "--val_annotation (or none, for the sample set)")
    if bool(args.raw_train_dir) != bool(args.raw_val_dir):
        raise UserError("give both --raw_train_dir and --raw_val_dir (or neither)")
    resolve_levels(args, sample=args.train_image_dir is None)
    for spec in args.real_test:
        parse_real_test(spec)
    parse_outside(args)
    if args.category_map:
        load_category_map(args.category_map)
    check_detector_training_sizes(args.model, args.min_size)


def main():
    args = build_parser().parse_args()
    check_args(args)
    from study.pipeline import run_study  # loads torch: after the flags are checked
    table = run_study(args)
    print(table)
    print(f"report: {os.path.join(os.path.abspath(args.output_dir), 'report.md')}")


if __name__ == "__main__":
    run_main(main)
