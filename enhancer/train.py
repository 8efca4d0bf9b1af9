"""Train a low-light enhancer that a detector reads (no pairs needed).

--model zero_dce (--objective zero_reference): Zero-DCE++ (Li et al., TPAMI 2021) trained on
any folder of dark images with its zero-reference losses; defaults are the authors' release
(Adam lr 1e-4, weight decay 1e-4, clipping 0.1, batch 8, 100 epochs, E = 0.6).
--model dip: the IA-YOLO-style filter enhancer trained through the detector's loss on low-light
images with COCO boxes: --objective frozen_detector (GenISP's recipe in sRGB: only the
enhancer learns) or joint (the enhancer and the detector end to end, from --detector).
Unset --lr, --weight_decay, --max_grad_norm and --epochs take the model's defaults.
Multi-GPU: torchrun --nproc_per_node N enhancer/train.py ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from enhancer.sizes import (DIP_MAX_PARAMETER_SIZE, DIP_MIN_PARAMETER_SIZE, ZERO_DCE_MAX_CROP,
                            ZERO_DCE_MAX_SCALE_FACTOR, ZERO_DCE_MIN_TRAINING_SIZE)
from torch_utils_lib.toolkit.cli import (ArgumentParser, add_common_args, add_training_args,
                                         int_in_range, non_negative_float, positive_float,
                                         probability)
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_annotation, sample_low_light

DEFAULT_DETECTOR = os.path.join(RUNS_DIR, "mask_rcnn", "sample", "last.pth")


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("zero_dce", "dip"), default="zero_dce")
    p.add_argument("--objective", choices=("zero_reference", "frozen_detector", "joint"),
                   default=None, help="zero_dce: zero_reference; dip: frozen_detector (default) "
                                      "or joint")
    p.add_argument("--image_dir", default=sample_low_light("train", "gamma_noise"),
                   help="dark training images")
    p.add_argument("--annotation", default=None,
                   help="COCO boxes of the images (needed by dip; zero_dce: optional list of "
                        f"the images to use). The sample's: {sample_annotation('train')}")
    p.add_argument("--detector", default=DEFAULT_DETECTOR,
                   help="dip: the normal-light detector, a mask_rcnn/train.py checkpoint or a "
                        "torchvision name")
    p.add_argument("--detector_weights", default="coco",
                   help="weights of a named detector: 'coco' (torch hub cache) or a file")
    p.add_argument("--category_map", default=None, metavar="FILE",
                   help="JSON {dataset class name: detector class name}")
    p.add_argument("--checkpoint_dir", default=os.path.join(RUNS_DIR, "enhancer"),
                   help="where last.pth, the log and figures go")
    p.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=8)
    p.add_argument("--lr", "--learning_rate", dest="lr", type=positive_float, default=None,
                   help="Adam learning rate of the enhancer (zero_dce 1e-4, dip 1e-3)")
    p.add_argument("--detector_lr", type=positive_float, default=5e-4,
                   help="joint: Adam learning rate of the detector")
    p.add_argument("--weight_decay", type=non_negative_float, default=None,
                   help="Adam weight decay (zero_dce 1e-4, dip 0)")
    add_training_args(p, epochs=None, max_grad_norm=None)
    p.add_argument("--image_size", type=int_in_range(ZERO_DCE_MIN_TRAINING_SIZE, ZERO_DCE_MAX_CROP,
                                                     off=0), default=0,
                   help=f"zero_dce: random square training crop, {ZERO_DCE_MIN_TRAINING_SIZE}-"
                        f"{ZERO_DCE_MAX_CROP} (the exposure loss's patch; memory grows with its "
                        f"square); smaller images are resized up to it. 0: whole images, each "
                        f"batch of one size, so a set of mixed sizes trains on every image as it "
                        f"is (fewer images a batch where few share a size); images under "
                        f"{ZERO_DCE_MIN_TRAINING_SIZE} px a side are then refused, naming them")
    p.add_argument("--exposure", type=probability, default=0.6,
                   help="zero_dce: the exposure loss's target mean of 16x16 patches, E (the "
                        "authors' release: 0.6; a lower E brightens less)")
    p.add_argument("--scale_factor", type=int_in_range(1, ZERO_DCE_MAX_SCALE_FACTOR), default=1,
                   help=f"zero_dce: the curve maps are estimated on the input downscaled by this "
                        f"(1-{ZERO_DCE_MAX_SCALE_FACTOR}); the checkpoint keeps it for "
                        f"enhancing (enhancer/inference.py --scale_factor overrides). Default 1, "
                        f"as the release trains (it tests at 12 on ~1200 px photographs, a "
                        f"100 px thumbnail): 12 on 128 px images estimates the maps from an "
                        f"11 px thumbnail and blows up the noise")
    p.add_argument("--parameter_size", type=int_in_range(DIP_MIN_PARAMETER_SIZE,
                                                         DIP_MAX_PARAMETER_SIZE), default=256,
                   help=f"dip: side of the thumbnail the parameter CNN looks at "
                        f"({DIP_MIN_PARAMETER_SIZE}-{DIP_MAX_PARAMETER_SIZE}: its five stride-2 "
                        f"convolutions reach 1x1 at {DIP_MIN_PARAMETER_SIZE})")
    add_common_args(p)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    # torch is imported here, after parsing: --help and flag errors stay instant
    from enhancer.training import train
    history = train(args)
    print(f"enhancer weights: {os.path.join(args.checkpoint_dir, 'last.pth')} "
          f"({len(history)} epochs)")
    return 0


if __name__ == "__main__":
    run_main(main)
