"""Train the image-conditioned diffusion model that restores low-light images.

x0 is the normal-light image, the condition the low-light one; both get the same random crop and
flip. Checkpoints (with EMA weights, used for sampling) go to --checkpoint_dir: last.pth after
every epoch (what --resume continues from), epoch_N.pth every --checkpoint_epoch epochs, and a
preview PNG every --sample_every epochs. Runs under torchrun for DDP.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from diffusion_model.sizes import (CROP_RANGE, DIM_RANGE, MAX_LEVELS, NUM_BLOCKS_RANGE,
                                   SAMPLING_STEPS_RANGE, TIMESTEPS_RANGE)
from torch_utils_lib.toolkit.cli import (ArgumentParser, add_common_args, add_training_args,
                                         decay_rate, int_in_range, non_negative_float,
                                         non_negative_int, positive_float)
from torch_utils_lib.toolkit.flag_choices import (BATCH_SIZE_RANGE, DIFFUSION_OBJECTIVES,
                                                  DIFFUSION_SCHEDULES)
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_images, sample_low_light

DEFAULT_CHECKPOINT_DIR = os.path.join(RUNS_DIR, "diffusion")


def parse_dim_mults(text):
    try:
        mults = tuple(int(m) for m in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: expected comma-separated integers") from None
    if not mults or min(mults) < 1:
        raise argparse.ArgumentTypeError(f"{text}: multipliers must be positive integers")
    if len(mults) > MAX_LEVELS:
        raise argparse.ArgumentTypeError(f"{text}: must be at most {MAX_LEVELS} levels")
    return mults


def build_parser():
    p = ArgumentParser(
        example='python diffusion_model/train.py --checkpoint_dir runs/diffusion --epochs 75 --image_size 16 --batch_size 32 --dim 16 --dim_mults 1,2,4 --lr 2e-3',
        description=__doc__,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--input_image_dir", default=sample_images("train"),
                      help="normal-light images (x0)")
    data.add_argument("--conditional_image_dir", "--conditional_img_dir", dest="conditional_image_dir",
                      default=sample_low_light("train", "gamma_noise"),
                      help="low-light images with the same file names (the condition)")
    data.add_argument("--annotation", default=None,
                      help='{"filename": [...]} JSON or COCO json naming the pairs '
                           "(default: every file name present in both folders)")
    data.add_argument("--image_size", type=int_in_range(*CROP_RANGE, off=0), default=64,
                      help="random square crop used for training (0 = full images)")
    model = p.add_argument_group("model")
    model.add_argument("--dim", type=int_in_range(*DIM_RANGE), default=16, help="UNet channels at full resolution")
    model.add_argument("--dim_mults", type=parse_dim_mults, default=(1, 2, 4, 8),
                       help="channel multiplier per UNet level, comma-separated")
    model.add_argument("--num_blocks", type=int_in_range(*NUM_BLOCKS_RANGE), default=1, help="ConvNeXt blocks per level")
    model.add_argument("--schedule", choices=DIFFUSION_SCHEDULES, default="linear", help="noise schedule")
    model.add_argument("--timesteps", type=int_in_range(*TIMESTEPS_RANGE), default=1000, help="diffusion steps")
    model.add_argument("--objective", choices=DIFFUSION_OBJECTIVES, default="v",
                       help="what the network predicts: the noise (eps, as the original project) or v "
                            "(default: it learns faster, measured on the sample set)")
    train = p.add_argument_group("training")
    train.add_argument("--checkpoint_dir", default=DEFAULT_CHECKPOINT_DIR,
                       help="where checkpoints, logs and previews go")
    train.add_argument("--weight_path", default=None,
                       help="start from this checkpoint's weights (its EMA weights when present)")
    train.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=8)
    train.add_argument("--lr", "--learning_rate", dest="lr", type=positive_float, default=5e-4)
    train.add_argument("--weight_decay", type=non_negative_float, default=0.0)
    add_training_args(train, epochs=100, max_grad_norm=1.0, lr_step_size=0, lr_gamma=0.5)
    train.add_argument("--ema_decay", type=decay_rate, default=0.995,
                       help="EMA decay of the weights used for sampling (0 = no averaging)")
    train.add_argument("--checkpoint_epoch", type=non_negative_int, default=10,
                       help="also keep epoch_N.pth every this many epochs (0 = only last.pth)")
    train.add_argument("--sample_every", type=non_negative_int, default=10,
                       help="save a preview PNG every this many epochs (0 = never)")
    train.add_argument("--sample_steps", type=int_in_range(*SAMPLING_STEPS_RANGE), default=20,
                       help="DDIM steps of the previews")
    add_common_args(p)
    return p


def check_args(args):
    if args.dim % 2:
        raise UserError(f"--dim {args.dim}: must be even (sin/cos time features)")


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_args(args)
    from diffusion_model.training import train  # imports torch: --help stays fast without it
    train(args)


if __name__ == "__main__":
    run_main(main)
