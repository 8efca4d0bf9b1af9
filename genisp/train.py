"""Train GenISP on camera RAW through a frozen detector (Morawski et al., CVPRW 2022).

Only GenISP learns; the detector's own losses (RetinaNet: focal + smooth-L1) guide it. Defaults
are the paper's recipe (Adam, lr 1e-2 x0.1 at epochs 5 and 10, 15 epochs, batch 8, images fitted
to 1333x800) on the sample set's physics RAW. Pre-processed RAW is cached on disk, so only the
first epoch decodes RAW files. Multi-GPU: torchrun --nproc_per_node N genisp/train.py ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from genisp.sizes import PARAMETER_SIZE_RANGE, RESIZE_RANGE
from torch_utils_lib.toolkit.cli import (ArgumentParser, add_common_args, add_training_args,
                                         int_in_range, non_negative_float, positive_float)
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_raw


def build_parser():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw_dir", default=sample_raw("train"), help="folder of RAW files")
    parser.add_argument("--annotation", default=None,
                        help="COCO boxes of the RAW files (default: <raw_dir>/annotations.json)")
    parser.add_argument("--checkpoint_dir", default=os.path.join(RUNS_DIR, "genisp"),
                        help="where last.pth, the log and figures go")
    parser.add_argument("--weight_path", default=None,
                        help="start from this GenISP checkpoint's weights (not its optimizer)")
    parser.add_argument("--detector", default="retinanet_resnet50_fpn_v2",
                        help="frozen detector: a torchvision name (retinanet_resnet50_fpn_v2, "
                             "fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn, ...) or a "
                             "mask_rcnn/train.py checkpoint")
    parser.add_argument("--detector_weights", default="coco",
                        help="weights of a named detector: 'coco' (torch hub cache) or a file")
    parser.add_argument("--category_map", default=None, metavar="FILE",
                        help="JSON {dataset class name: detector class name}: overrides the built-in synonyms")
    parser.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=8)
    parser.add_argument("--lr", "--learning_rate", dest="lr", type=positive_float, default=1e-2,
                        help="Adam learning rate")
    add_training_args(parser, epochs=15, max_grad_norm=0.0, lr_milestones=[5, 10], lr_gamma=0.1)
    parser.add_argument("--resize", type=int_in_range(*RESIZE_RANGE, off=0), nargs=2, default=[1333, 800],
                        metavar=("LONG", "SHORT"),
                        help="fit images into LONG x SHORT keeping aspect; 0 0 keeps the packed size")
    parser.add_argument("--parameter_size", type=int_in_range(*PARAMETER_SIZE_RANGE), default=256,
                        help="side of the thumbnail ConvWB and ConvCC look at (paper: 256; 8-1024: "
                             "their three 2x2 poolings need 8)")
    parser.add_argument("--color_loss_weight", type=non_negative_float, default=0.0,
                        help="weight of the paper's gray-world colour loss (equation 4); 0: off")
    parser.add_argument("--cache_dir", default=os.path.join(RUNS_DIR, "cache", "genisp_raw"),
                        help="cache of pre-processed RAW arrays ('none': decode every epoch)")
    add_common_args(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.annotation is None:
        args.annotation = os.path.join(args.raw_dir, "annotations.json")
    from genisp.training import train  # imports torch: --help stays fast without it
    train(args)
    return 0


if __name__ == "__main__":
    run_main(main)
