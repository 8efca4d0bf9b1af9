"""study/score.py at COCO scale against hotcoco's compare: seconds, peak GB and the ratio to hotcoco.

Generates a COCO-sized set (bench_scale.make_coco: --images images, ~7 objects and
--detections_per_image detections an image, two systems with bbox and RLE masks), then runs in a
fresh process each: the whole study/score.py (bbox + segm, --bootstrap resamples, paired), hotcoco's
compare(..., n_bootstrap) on bbox and segm when hotcoco is installed (said otherwise), and one
evaluation of one system per backend (pycocotools, faster_coco_eval, hotcoco).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_utils_lib.toolkit.cli import ArgumentParser, non_negative_int, positive_int
from torch_utils_lib.toolkit.errors import run_main


def build_parser():
    p = ArgumentParser(example="python bench/bench_score.py --images 500 --bootstrap 200",
                       description=__doc__)
    p.add_argument("--images", type=positive_int, default=5000, help="images of the generated set")
    p.add_argument("--detections_per_image", type=positive_int, default=60)
    p.add_argument("--bootstrap", type=non_negative_int, default=1000, help="resamples")
    p.add_argument("--output", default=None, help="JSON of the table (default: print only)")
    return p


def main():
    args = build_parser().parse_args()
    from bench.score_steps import run_bench  # the work: numpy, pycocotools
    run_bench(args.images, args.detections_per_image, args.bootstrap, args.output)


if __name__ == "__main__":
    run_main(main)
