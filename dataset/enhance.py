"""Classical low-light enhancement of a folder: gamma to the normal-light mean luma, CLAHE, histeq.

Writes the enhanced images under the same file names (atomically; never into the input folder)
and enhancement.json (the target and each image's gamma). gamma's target is the mean luma of
--reference_dir (e.g. the normal-light train set) or --target_luma. Methods: dataset/enhancement.py.
Examples:
  python dataset/enhance.py --method gamma --input_dir data/sample/low_light/gamma_noise/val \\
      --reference_dir data/sample/train --output_dir runs/enhanced/gamma
  python dataset/enhance.py --method clahe --input_dir ExDark/ExDark \\
      --annotation ExDark/coco/instances_test.json --output_dir runs/enhanced/exdark_clahe
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from dataset.enhancement import METHODS
from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.toolkit.cli import ArgumentParser, non_negative_float, positive_float
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_dir, safe_join
from torch_utils_lib.data.image_io import annotation_file_names, list_images
from torch_utils_lib.toolkit.paths import sample_images, sample_low_light
from torch_utils_lib.toolkit.progress import progress
from torch_utils_lib.toolkit.runinfo import write_run_metadata


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--input_dir", default=sample_low_light("val", "gamma_noise"), help="images to enhance")
    p.add_argument("--output_dir", required=True, help="where enhanced images go (same file names)")
    p.add_argument("--annotation", default=None,
                   help="COCO json (or name list) naming the images, subfolders allowed "
                        "(default: every image directly in --input_dir)")
    p.add_argument("--reference_dir", default=sample_images("train"),
                   help="gamma: normal-light images whose mean luma is the target")
    p.add_argument("--reference_annotation", default=None, help="names of the --reference_dir images")
    p.add_argument("--target_luma", type=non_negative_float, default=None,
                   help="gamma: target mean luma 0-255 (instead of measuring --reference_dir)")
    p.add_argument("--clip_limit", type=positive_float, default=2.0, help="clahe: contrast limit")
    return p


def image_names(image_dir, annotation):
    """Names of the images to read: those `annotation` lists (relative to `image_dir`, never
    leaving it), or every image directly in `image_dir`."""
    require_dir(image_dir, "image directory")
    names = annotation_file_names(annotation) if annotation else list_images(image_dir)
    if annotation:
        for name in names:
            safe_join(image_dir, name, annotation)
    if not names:
        raise UserError(f"{image_dir}: no images found")
    return names


def main():
    # the enhancement modules load OpenCV and numpy: imported here so that --help is instant
    from dataset.enhancement import enhance_folder, folder_mean_luma
    args = build_parser().parse_args()
    names = image_names(args.input_dir, args.annotation)
    uses_reference = args.method == "gamma" and args.target_luma is None
    reference_names = (image_names(args.reference_dir, args.reference_annotation)
                       if uses_reference else [])
    # every path read, the listed images included, against the one folder written
    check_outputs_apart({"--input_dir": args.input_dir, "--annotation": args.annotation,
                         "--reference_dir": args.reference_dir,
                         "--reference_annotation": args.reference_annotation,
                         "--annotation entry": [os.path.join(args.input_dir, n) for n in names],
                         "--reference_annotation entry": [os.path.join(args.reference_dir, n)
                                                          for n in reference_names]},
                        {"--output_dir": args.output_dir})
    target = args.target_luma
    if uses_reference:
        target = folder_mean_luma(args.reference_dir, reference_names)
    if target is not None and not 0 < target < 255:
        raise UserError(f"--target_luma {target}: must lie between 0 and 255")
    with progress(total=len(names), desc=f"enhance ({args.method})") as bar:
        records = enhance_folder(args.input_dir, args.output_dir, names, args.method, target,
                                 args.clip_limit, bar)
    atomic_write_json(os.path.join(args.output_dir, "enhancement.json"),
                      {"method": args.method, "target_luma": target, "images": records})
    write_run_metadata(args.output_dir, args)
    print(f"{len(names)} images -> {args.output_dir}"
          + (f" (target mean luma {target:.1f})" if target is not None else ""))


if __name__ == "__main__":
    run_main(main)
