"""Benchmark Mask R-CNN training throughput: images/s of full training steps.

Models: the light maskrcnn_resnet18_fpn at 128x128, batch 4 (the sample set's size, what CPU
tests and the study train) and torchvision's maskrcnn_resnet50_fpn at 512x512, batch 2; each on
CPU, and on CUDA with and without AMP when a GPU is present. A step is forward (losses), backward
and an AdamW update on synthetic images with three boxes and masks each; weights are random
(throughput does not depend on them). Steps of all settings are interleaved so that background
load falls on every one alike; the median step is reported. Writes runs/bench/maskrcnn.json.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_utils_lib.toolkit.cli import ArgumentParser, positive_int
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR


SETTINGS = (("maskrcnn_resnet18_fpn", 128, 4), ("maskrcnn_resnet50_fpn", 512, 2))


def build_parser():
    p = ArgumentParser(
        example='python bench/bench_maskrcnn.py --steps 3',
        description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=positive_int, default=5,
                   help="timed steps per setting (after 1 warm-up)")
    p.add_argument("--models", nargs="+", default=[name for name, _, _ in SETTINGS],
                   choices=[name for name, _, _ in SETTINGS])
    p.add_argument("--output", default=os.path.join(RUNS_DIR, "bench", "maskrcnn.json"))
    return p


def main():
    args = build_parser().parse_args()
    from bench.maskrcnn_steps import run  # loads torch: after parsing, so --help is instant
    return run(args, SETTINGS)


if __name__ == "__main__":
    run_main(main)
