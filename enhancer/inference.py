"""Enhance a folder of low-light images with an enhancer/train.py checkpoint, or with the
Zero-DCE++ authors' released weights as they are (Li-Chongyi/Zero-DCE_extension,
snapshots_Zero_DCE++/Epoch99.pth: recognised by their keys, run at their test scale factor 12).

Zero-DCE++ estimates its curve maps on the image downscaled by the scale factor and upsamples
them to the image's size. On an image whose sides are multiples of the factor the output equals
the authors' lowlight_test.py's; that script crops other images to the multiple below (up to 11
pixels off the right and bottom), this one keeps the whole image (thumbnail side round(side /
factor), maps upsampled to the exact size), so the output keeps the input's size and boxes.

Outputs keep the input file names (subfolders of annotation names too), so --output_dir can be
scored directly with the annotation (mask_rcnn/evaluate.py --low_light_image_dir, the study).
The input is never written: --output_dir may not be or contain an input.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from enhancer.sizes import ZERO_DCE_MAX_SCALE_FACTOR
from torch_utils_lib.toolkit.cli import ArgumentParser, add_common_args, int_in_range
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_file
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_low_light
from torch_utils_lib.toolkit.runinfo import write_run_metadata

DEFAULT_WEIGHTS = os.path.join(RUNS_DIR, "enhancer", "last.pth")


def build_parser():
    p = ArgumentParser(
        example='python enhancer/inference.py --weight_path runs/enhancer/dip/last.pth --input_dir data/sample/low_light/gamma_noise/val --output_dir runs/enhancer/dip/val',
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weight_path", default=DEFAULT_WEIGHTS,
                   help="checkpoint written by train.py, or the Zero-DCE++ release's state dict")
    p.add_argument("--scale_factor", type=int_in_range(1, ZERO_DCE_MAX_SCALE_FACTOR), default=None,
                   help="Zero-DCE++: estimate the curve maps on the image downscaled by this "
                        "(default: the checkpoint's training setting; the release's weights: 12, "
                        "as its lowlight_test.py)")
    p.add_argument("--input_dir", default=sample_low_light("val", "gamma_noise"),
                   help="low-light images to enhance")
    p.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "enhancer", "enhanced", "val"),
                   help="where the enhanced images go (same file names)")
    p.add_argument("--annotation", default=None,
                   help="COCO json or {\"filename\": [...]} naming the images (default: all)")
    add_common_args(p, seed=False, workers=False)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    require_file(args.weight_path, "checkpoint", "train one with enhancer/train.py")
    # torch is imported here, after parsing: --help and flag errors stay instant
    from enhancer.data import image_names
    from enhancer.models import enhance_folder, load_enhancer
    from torch_utils_lib.runtime.devices import resolve_amp
    from torch_utils_lib.runtime.distributed import init_distributed

    names = image_names(args.input_dir, args.annotation)
    check_outputs_apart(
        {"--input_dir": args.input_dir, "--annotation": args.annotation,
         "--weight_path": args.weight_path,
         "--annotation entry": [os.path.join(args.input_dir, n) for n in names]},
        {"--output_dir": args.output_dir,
         "--output_dir (with an --annotation entry)": [os.path.join(args.output_dir, n)
                                                       for n in names]})
    device = init_distributed(args.device).device
    enhancer, _, config = load_enhancer(args.weight_path, device, args.scale_factor)
    os.makedirs(args.output_dir, exist_ok=True)
    write_run_metadata(args.output_dir, args, filename="enhance_run.json", config=config)
    enhance_folder(enhancer, args.input_dir, names, args.output_dir, device,
                   resolve_amp(args.amp, device))
    source = "the Zero-DCE++ release's weights" if config.get("release") else config["objective"]
    scale = f", scale factor {config['scale_factor']}" if "scale_factor" in config else ""
    print(f"{len(names)} enhanced images ({config['model']}, {source}{scale}): {args.output_dir}")
    return 0


if __name__ == "__main__":
    run_main(main)
