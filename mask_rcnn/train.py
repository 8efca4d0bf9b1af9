"""Train or fine-tune Mask R-CNN on a COCO-format set (normal or synthetic low light).

Examples:
  python mask_rcnn/train.py                                   # light model on the sample set
  python mask_rcnn/train.py --image_dir data/sample/low_light/gamma_noise/train \\
      --weight_path runs/mask_rcnn/sample/last.pth --checkpoint_dir runs/mask_rcnn/low_light
  torchrun --nproc_per_node 4 mask_rcnn/train.py --model maskrcnn_resnet50_fpn --weights coco ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.toolkit.cli import (ArgumentParser, add_common_args, add_training_args,
                                         int_in_range, non_negative_float, non_negative_int,
                                         positive_float, positive_int)
from torch_utils_lib.toolkit.flag_choices import (AUGMENTATIONS, BACKBONE_STAGES, BATCH_SIZE_RANGE,
                                                  COCO_BACKENDS, DETECTOR_NAMES,
                                                  DETECTOR_SIZE_RANGE)
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_annotation, sample_images


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image_dir", default=sample_images("train"), help="training images")
    p.add_argument("--annotation", default=sample_annotation("train"), help="COCO instances json")
    p.add_argument("--checkpoint_dir", default=os.path.join(RUNS_DIR, "mask_rcnn", "sample"),
                   help="where last.pth, epoch_N.pth, logs and the loss curve go")
    p.add_argument("--weight_path", default=None,
                   help="start from this checkpoint's weights (e.g. fine-tune a normal-light model)")
    p.add_argument("--model", default="maskrcnn_resnet18_fpn", choices=DETECTOR_NAMES)
    p.add_argument("--weights", default="none",
                   help="initial weights: none, imagenet (backbone), coco (torch hub cache) or a file")
    p.add_argument("--category_map", default=None, metavar="FILE",
                   help="JSON {dataset class name: detector class name} for matching classes to "
                        "--weight_path's or COCO's by name (overrides the built-in synonyms)")
    p.add_argument("--num_classes", type=positive_int, default=None,
                   help="classes incl. background (default: from the annotation)")
    p.add_argument("--trainable_backbone_layers", type=int_in_range(0, BACKBONE_STAGES), default=None,
                   help="ResNet stages to train with pretrained weights (0-5, default 3)")
    p.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=4)
    p.add_argument("--optimizer", default="adamw", choices=("adam", "adamw", "sgd"))
    p.add_argument("--lr", "--learning_rate", dest="lr", type=positive_float, default=1e-3)
    p.add_argument("--weight_decay", type=non_negative_float, default=1e-4)
    p.add_argument("--warmup_iters", type=non_negative_int, default=50,
                   help="linear lr warm-up iterations")
    add_training_args(p, epochs=20, max_grad_norm=10.0, lr_step_size=15)
    p.add_argument("--checkpoint_epoch", type=non_negative_int, default=0,
                   help="also keep epoch_N.pth every N epochs (last.pth is always written)")
    p.add_argument("--augment", default="hflip", choices=tuple(AUGMENTATIONS),
                   help="; ".join(f"{k}: {v}" for k, v in AUGMENTATIONS.items()))
    p.add_argument("--min_size", type=int_in_range(*DETECTOR_SIZE_RANGE), default=None,
                   help="model input short side (%d-%d)" % DETECTOR_SIZE_RANGE)
    p.add_argument("--max_size", type=int_in_range(*DETECTOR_SIZE_RANGE), default=None,
                   help="model input long side limit (%d-%d)" % DETECTOR_SIZE_RANGE)
    p.add_argument("--val_image_dir", default=sample_images("val"))
    p.add_argument("--val_annotation", default=sample_annotation("val"))
    p.add_argument("--eval_every", type=non_negative_int, default=5,
                   help="validate every N epochs (0: never)")
    p.add_argument("--coco_backend", default="pycocotools", choices=COCO_BACKENDS)
    add_common_args(p)
    return p


def main():
    args = build_parser().parse_args()
    from mask_rcnn.training import train  # imports torch: --help stays fast without it
    stats = train(args)
    if stats:
        print("val " + ", ".join(f"{t} AP={s['AP']:.3f} AP50={s['AP50']:.3f}" for t, s in stats.items()))


if __name__ == "__main__":
    run_main(main)
