"""Run a trained Mask R-CNN on any folder of images: overlays and a COCO results JSON.

Example: python mask_rcnn/inference.py --image_dir my_photos --weight_path runs/mask_rcnn/sample/last.pth
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.toolkit.cli import ArgumentParser, add_common_args, int_in_range, probability
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_low_light
from torch_utils_lib.toolkit.runinfo import write_run_metadata


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image_dir", default=sample_low_light("val", "gamma_noise"))
    p.add_argument("--weight_path", default=os.path.join(RUNS_DIR, "mask_rcnn", "sample", "last.pth"),
                   help="a mask_rcnn/train.py checkpoint or a torchvision detector name (COCO weights)")
    p.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "mask_rcnn", "inference"),
                   help="overlays (<name>_pred.png) and detections.json")
    p.add_argument("--score_threshold", type=probability, default=0.5,
                   help="smallest score kept, in detections.json and on the overlays")
    p.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=4)
    add_common_args(p, seed=False, workers=False)
    return p


def main():
    args = build_parser().parse_args()

    # imported after parsing (they load torch): --help and flag errors stay instant
    from mask_rcnn.evaluation import run_inference
    from torch_utils_lib.models.detectors import load_detector
    from torch_utils_lib.runtime.devices import resolve_amp
    from torch_utils_lib.runtime.distributed import init_distributed
    check_outputs_apart({"--image_dir": args.image_dir, "--weight_path": args.weight_path},
                        {"--output_dir": args.output_dir})
    device = init_distributed(args.device).device
    model, config = load_detector(args.weight_path, device)
    images, detections = run_inference(model, config, args.image_dir, args.output_dir, device,
                                       args.batch_size, args.score_threshold,
                                       resolve_amp(args.amp, device))
    write_run_metadata(args.output_dir, args)
    print(f"{images} images, {detections} detections >= {args.score_threshold} -> {args.output_dir}")


if __name__ == "__main__":
    run_main(main)
