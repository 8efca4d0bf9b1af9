"""Convert ExDark's annotations to COCO: one instances_<split>.json per split (boxes only).

Example (ExDark as downloaded: images in ExDark/<Class>/, annotations in ExDark_Annno/<Class>/):
  python dataset/convert_exdark.py --image_dir ExDark/ExDark --annotation_dir ExDark/ExDark_Annno \\
      --class_list ExDark/imageclasslist.txt --output_dir ExDark/coco
Every problem of the dataset is listed before anything is written; boxes dropped or clipped
(as the detector's loader would) are counted and listed in conversion.json.
Then e.g. the study's real test set: --real_test exdark=ExDark/ExDark,ExDark/coco/instances_test.json
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from dataset.exdark import Report, convert
from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.toolkit.cli import ArgumentParser
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_dir, require_file
from torch_utils_lib.toolkit.runinfo import write_run_metadata


REPORT_FILE = "conversion.json"  # the boxes and lines the conversion changed


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image_dir", required=True, help="ExDark's images, one folder per class")
    p.add_argument("--annotation_dir", required=True, help="ExDark's .txt files, one folder per class")
    p.add_argument("--class_list", required=True, help="imageclasslist.txt")
    p.add_argument("--output_dir", required=True, help="where instances_{train,val,test}.json go")
    return p


def main():
    args = build_parser().parse_args()
    require_dir(args.image_dir, "image directory")
    require_dir(args.annotation_dir, "annotation directory")
    require_file(args.class_list, "class list")
    check_outputs_apart({"--image_dir": args.image_dir, "--annotation_dir": args.annotation_dir,
                         "--class_list": args.class_list}, {"--output_dir": args.output_dir})
    report = Report()
    try:
        sets = convert(args.image_dir, args.annotation_dir, args.class_list, report)
    except UserError:
        if len(report.problems) > 1:  # every problem, so that one pass fixes the dataset
            for problem in report.problems:
                print(f"problem: {problem}", file=sys.stderr)
        raise
    for changed, what in ((report.dropped, "boxes dropped (NaN/inf, zero or negative size, or "
                                           "outside the image)"),
                          (report.clipped, "boxes clipped to the image (partly outside it)"),
                          (report.repeated, "repeated lines of the class list, kept once")):
        if changed:
            print(f"warning: {len(changed)} {what}, e.g. {changed[0]}; all in "
                  f"{os.path.join(args.output_dir, REPORT_FILE)}", file=sys.stderr)
    for split, coco in sets.items():
        path = os.path.join(args.output_dir, f"instances_{split}.json")
        atomic_write_json(path, coco)
        print(f"{path}: {len(coco['images'])} images, {len(coco['annotations'])} boxes")
    atomic_write_json(os.path.join(args.output_dir, REPORT_FILE), report.as_dict())
    write_run_metadata(args.output_dir, args)


if __name__ == "__main__":
    run_main(main)
