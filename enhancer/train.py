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

from torch_utils_lib.toolkit.cli import (ArgumentParser, add_common_args, add_training_args,
                                 non_negative_float, non_negative_int, positive_float, positive_int,
                                 probability)
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
    p.add_argument("--batch_size", type=positive_int, default=8)
    p.add_argument("--lr", "--learning_rate", dest="lr", type=positive_float, default=None,
                   help="Adam learning rate of the enhancer (zero_dce 1e-4, dip 1e-3)")
    p.add_argument("--detector_lr", type=positive_float, default=5e-4,
                   help="joint: Adam learning rate of the detector")
    p.add_argument("--weight_decay", type=non_negative_float, default=None,
                   help="Adam weight decay (zero_dce 1e-4, dip 0)")
    add_training_args(p, epochs=None, max_grad_norm=None)
    p.add_argument("--image_size", type=non_negative_int, default=0,
                   help="zero_dce: random square training crop (0: full images of one size)")
    p.add_argument("--exposure", type=probability, default=0.6,
                   help="zero_dce: the exposure loss's target E (release 0.6; 0.45-0.5 over-"
                        "exposes bright regions less)")
    p.add_argument("--scale_factor", type=positive_int, default=12,
                   help="zero_dce: the curve maps are estimated on the input downscaled by this")
    p.add_argument("--parameter_size", type=positive_int, default=256,
                   help="dip: side of the thumbnail the parameter CNN looks at")
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
