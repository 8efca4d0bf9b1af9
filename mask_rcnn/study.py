"""One command for the whole study: what does low light cost, and which remedy wins it back?

Builds (or takes) a normal-light set, synthesizes low-light copies (gamma_noise and physics, with
RAW), trains Mask R-CNN on normal light, fine-tunes it on low light, trains the diffusion restorer
and restores, trains GenISP on the RAW set, evaluates everything, and writes
OUTPUT_DIR/report.md (+ report.json, examples.png, loss_curves.png, ap_bars.png).
Rerun the same command to continue an interrupted study.

On the bundled sample set (CPU, roughly 15 minutes):
  python mask_rcnn/study.py
On COCO (GPU; the RAW rows use COCO-derived physics RAW):
  python mask_rcnn/study.py --output_dir runs/coco_study --model maskrcnn_resnet50_fpn --weights coco \\
      --train_image_dir coco/train2017 --train_annotation coco/annotations/instances_train2017.json \\
      --val_image_dir coco/val2017 --val_annotation coco/annotations/instances_val2017.json \\
      --epochs 12 --finetune_epochs 6 --diffusion_epochs 100 --diffusion_image_size 128 \\
      --diffusion_dim 32 --diffusion_dim_mults 1,2,4,8 --diffusion_lr 2e-4 --diffusion_steps 50 \\
      --genisp_epochs 15 --genisp_resize 1333 800 --genisp_parameter_size 256 --min_size 800 \\
      --workers 16
With RAW-NOD for the GenISP rows (real night RAW):
  ... --raw_train_dir RAW-NOD/Sony --raw_train_annotation rawnod/Sony/raw_new_Sony_RX100m7_train.json \\
      --raw_val_dir RAW-NOD/Sony --raw_val_annotation rawnod/Sony/raw_new_Sony_RX100m7_val.json
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.cli import UserError, run_main
from torch_utils_lib.paths import RUNS_DIR


def build_parser():
    from torch_utils_lib.transforms import AUGMENTATIONS
    from torch_utils_lib.utils import default_device
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "demo"))
    data = p.add_argument_group("data (default: the bundled sample set, rebuilt in OUTPUT_DIR/data)")
    data.add_argument("--train_image_dir")
    data.add_argument("--train_annotation")
    data.add_argument("--val_image_dir")
    data.add_argument("--val_annotation")
    data.add_argument("--methods", nargs="+", default=["gamma_noise", "physics"],
                      choices=("gamma_noise", "physics"),
                      help="low-light syntheses; the first is the one fine-tuning and diffusion target")
    data.add_argument("--raw_train_dir", help="RAW files for GenISP (default: the physics synthesis')")
    data.add_argument("--raw_train_annotation")
    data.add_argument("--raw_val_dir")
    data.add_argument("--raw_val_annotation")
    scale = p.add_argument_group("scale")
    scale.add_argument("--model", default="maskrcnn_resnet18_fpn")
    scale.add_argument("--weights", default="none", help="Mask R-CNN init: none, imagenet, coco or a file")
    scale.add_argument("--min_size", type=int, default=None, help="Mask R-CNN input short side")
    scale.add_argument("--augment", default=None, choices=tuple(AUGMENTATIONS),
                       help="Mask R-CNN training augmentation (default: dihedral on the sample set, "
                            "whose shapes have no up; hflip on user data)")
    scale.add_argument("--epochs", type=int, default=32, help="Mask R-CNN epochs on normal light")
    scale.add_argument("--finetune_epochs", type=int, default=4)
    scale.add_argument("--finetune_lr", type=float, default=5e-4)
    scale.add_argument("--batch_size", type=int, default=4)
    scale.add_argument("--diffusion_epochs", type=int, default=200)
    scale.add_argument("--diffusion_image_size", type=int, default=16, help="training crop")
    scale.add_argument("--diffusion_batch_size", type=int, default=32)
    scale.add_argument("--diffusion_dim", type=int, default=16, help="UNet base width")
    scale.add_argument("--diffusion_dim_mults", default="1,2,4", help="UNet width multipliers")
    scale.add_argument("--diffusion_lr", type=float, default=2e-3)
    scale.add_argument("--diffusion_steps", type=int, default=2,
                       help="DDIM steps when restoring. A briefly trained restorer does best with few: "
                            "they stay near the conditional mean (smooth), more steps add its colour "
                            "noise (sample study, val bbox AP50: 0.36 at 2 steps, 0.23 at 10)")
    scale.add_argument("--genisp_epochs", type=int, default=4)
    scale.add_argument("--genisp_batch_size", type=int, default=8)
    scale.add_argument("--genisp_parameter_size", type=int, default=64,
                       help="ConvWB/ConvCC thumbnail side (the paper: 256)")
    scale.add_argument("--genisp_resize", type=int, nargs=2, default=[0, 0], metavar=("LONG", "SHORT"),
                       help="GenISP input size (0 0: the packed RAW size; the paper: 1333 800)")
    p.add_argument("--figure_images", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="synthesis processes")
    p.add_argument("--device", default=default_device())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="redo steps whose outputs exist")
    return p


def main():
    args = build_parser().parse_args()
    given = [args.train_image_dir, args.train_annotation, args.val_image_dir, args.val_annotation]
    if any(given) and not all(given):
        raise UserError("give all of --train_image_dir, --train_annotation, --val_image_dir, "
                        "--val_annotation (or none, for the sample set)")
    if bool(args.raw_train_dir) != bool(args.raw_val_dir):
        raise UserError("give both --raw_train_dir and --raw_val_dir (or neither)")
    if "physics" not in args.methods and not args.raw_train_dir:
        raise UserError("GenISP needs RAW: keep 'physics' in --methods or give --raw_train_dir")
    from mask_rcnn.low_light_study import run_study
    table = run_study(args)
    print(table)
    print(f"report: {os.path.join(os.path.abspath(args.output_dir), 'report.md')}")


if __name__ == "__main__":
    run_main(main)
