"""Benchmark GenISP: batching, its cost beside the frozen detector, and the RAW cache.

Timings are reported as ratios (shared machines are noisy); all but one are taken in this
process (the cache part also times one cached epoch in a new process). Parts:
  batched   our batched GenISP vs a per-image loop reproduction (its code, copied below),
            forward + backward, --batch images of --size (goal on CUDA >= 3x)
  share     GenISP forward + backward vs the frozen RetinaNet R50-FPN v2's forward + backward
            (losses, gradients to its input only) on the same batch of 2 at 512x512 (goal <= 15%)
  cache     reading a RAW training set for an epoch: decoding every file (no cache) vs from the
            on-disk cache, within one process and in a new one (goal >= 15x both), on synthetic DNGs of --raw_size written with dataset/dng.py
  memory    CUDA only: peak GPU memory of a GenISP training step at 1333x800, batch 8, with and
            without AMP
Writes runs/bench/genisp.json. Detector weights do not change timings: none are loaded.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.toolkit.cli import ArgumentParser, positive_int
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR


def build_parser():
    parser = ArgumentParser(
        example='python bench/bench_genisp.py --parts batched share',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["batched", "share", "cache", "memory"],
                        choices=["batched", "share", "cache", "memory"])
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--size", type=positive_int, nargs=2, default=[400, 600], metavar=("H", "W"))
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--raw_files", type=positive_int, default=8)
    parser.add_argument("--raw_size", type=positive_int, nargs=2, default=[2000, 3000],
                        metavar=("H", "W"), help="sensor size of the synthetic DNGs of the cache part")
    parser.add_argument("--output", default=os.path.join(RUNS_DIR, "bench", "genisp.json"))
    return parser


def main():
    args = build_parser().parse_args()
    from bench.genisp_steps import run  # loads torch: after parsing, so --help is instant
    return run(args)


if __name__ == "__main__":
    run_main(main)
