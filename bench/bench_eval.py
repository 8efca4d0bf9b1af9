"""Benchmark COCO evaluation: our evaluator (both backends) vs a direct pycocotools run.

Builds an N-image ground truth by repeating the sample val set, makes detector-like detections
(jittered ground truth plus false positives, about 10 per image), and times in one run:
  direct       pycocotools COCO(file) + loadRes(file) + COCOeval, as a user would by hand
  ours         torch_utils_lib.evaluation.coco_eval.CocoEvaluator with pycocotools (scoring)
  ours faster  the same with --coco_backend faster_coco_eval
  encoding     turning the detector outputs into COCO results (boxes, RLE masks), which the direct
               run is given ready-made
for bbox and segm, and prints each as a ratio to `direct` (the stats are checked equal).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_utils_lib.toolkit.cli import ArgumentParser, positive_int
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR


def build_parser():
    p = ArgumentParser(
        example='python bench/bench_eval.py --num_images 100',
        description=__doc__.split("\n")[0])
    p.add_argument("--num_images", type=positive_int, default=500)
    p.add_argument("--output", default=os.path.join(RUNS_DIR, "bench", "bench_eval.json"))
    return p


def main():
    args = build_parser().parse_args()
    from bench.eval_steps import run  # loads torch: after parsing, so --help is instant
    return run(args)


if __name__ == "__main__":
    run_main(main)
