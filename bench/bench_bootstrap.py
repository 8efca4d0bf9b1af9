"""Benchmark the COCO AP bootstrap: weighted accumulation vs pycocotools' accumulate() per resample.

Synthetic, seeded ground truth (N images, 80 categories, crowd regions) and detections (jittered
ground truth plus false positives, distinct scores), bbox. Times in one run:
  matching     COCOeval.evaluate() once (both ways need it)
  ours         ImageMatches (sorting once per category and area) + stats() for every resample
  naive        pycocotools' accumulate() + summarize() on the resampled per-image matching, timed
               for a few resamples and extrapolated to all of them
and checks that both give the same stats on the resamples the naive way ran.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import contextlib
import copy
import io
import time

import numpy as np

from torch_utils_lib.toolkit.cli import ArgumentParser, positive_int
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.evaluation.matching import ImageMatches
from torch_utils_lib.evaluation.coco_bootstrap import bootstrap_weights
from torch_utils_lib.evaluation.metrics import STAT_NAMES
from torch_utils_lib.evaluation.matching import evaluate_images
from torch_utils_lib.toolkit.paths import RUNS_DIR
from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.toolkit.runinfo import write_run_metadata

SIZE = 640


def synthetic_coco(num_images, num_detections, num_categories, seed=0):
    """(gt dict, bbox results): ~num_detections/num_images objects per image, 90% found."""
    rng = np.random.default_rng(seed)
    per_image = max(1, num_detections // num_images)
    images = [{"id": i + 1, "width": SIZE, "height": SIZE} for i in range(num_images)]
    annotations, results = [], []
    scores = rng.permutation(num_images * per_image * 2) / (num_images * per_image * 2)
    for image in images:
        for j in range(per_image):
            w, h = rng.uniform(8, 200, 2)
            x, y = rng.uniform(0, SIZE - w), rng.uniform(0, SIZE - h)
            c = int(rng.integers(1, num_categories + 1))
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": c,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(rng.random() < 0.02)})
            if rng.random() < 0.9:  # a jittered hit, else a false positive somewhere
                box = [x + rng.normal(0, 0.08 * w), y + rng.normal(0, 0.08 * h), w, h]
            else:
                box = [*rng.uniform(0, SIZE - 50, 2), 40.0, 40.0]
                c = int(rng.integers(1, num_categories + 1))
            results.append({"image_id": image["id"], "category_id": c, "bbox": [float(v) for v in box],
                            "score": float(scores[len(results)])})
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(num_categories)]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def naive_stats(evaluator, weights):
    """pycocotools' accumulate() + summarize() on the images drawn `weights` times each."""
    e = copy.copy(evaluator)
    p = evaluator.params
    I, A, K = len(p.imgIds), len(p.areaRng), len(p.catIds)
    drawn = np.repeat(np.arange(I), weights)
    e.evalImgs = [evaluator.evalImgs[k * A * I + a * I + i]
                  for k in range(K) for a in range(A) for i in drawn]
    e.params = copy.copy(p)
    e._paramsEval = copy.copy(evaluator._paramsEval)
    e.params.imgIds = e._paramsEval.imgIds = list(range(len(drawn)))
    with contextlib.redirect_stdout(io.StringIO()):
        e.accumulate()
        e.summarize()
    return np.array(e.stats)


def build_parser():
    p = ArgumentParser(
        example='python bench/bench_bootstrap.py --num_images 100',
        description=__doc__.split("\n")[0])
    p.add_argument("--num_images", type=positive_int, default=500)
    p.add_argument("--num_detections", type=positive_int, default=5000)
    p.add_argument("--num_categories", type=positive_int, default=80)
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="resamples")
    p.add_argument("--naive_runs", type=positive_int, default=3, help="resamples timed the naive way")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=os.path.join(RUNS_DIR, "bench", "bench_bootstrap.json"))
    return p


def main():
    args = build_parser().parse_args()
    gt, results = synthetic_coco(args.num_images, args.num_detections, args.num_categories, args.seed)
    weights = bootstrap_weights(args.num_images, args.bootstrap, args.seed)

    start = time.perf_counter()
    evaluator = evaluate_images(gt, {"bbox": results})["bbox"]
    matching = time.perf_counter() - start
    start = time.perf_counter()
    ours = ImageMatches(evaluator).stats(weights)
    seconds_ours = time.perf_counter() - start
    start = time.perf_counter()
    naive = [naive_stats(evaluator, w) for w in weights[:args.naive_runs]]
    seconds_naive = (time.perf_counter() - start) / len(naive) * args.bootstrap
    equal = bool(np.allclose(ours[:len(naive)], naive, atol=1e-9, rtol=0))

    print(f"{args.num_images} images, {len(results)} detections, {args.num_categories} categories, "
          f"{args.bootstrap} resamples, load average {os.getloadavg()[0]:.2f}")
    print(f"{'run':<40}{'seconds':>9}")
    print(f"{'matching (evaluate, once)':<40}{matching:>9.2f}")
    print(f"{'ours (all resamples)':<40}{seconds_ours:>9.2f}")
    print(f"{f'naive (extrapolated from {len(naive)})':<40}{seconds_naive:>9.2f}")
    print(f"naive / ours: {seconds_naive / seconds_ours:.1f}x; stats equal on the naive resamples: {equal}")
    interval = np.percentile(ours[:, STAT_NAMES.index("AP")], [2.5, 97.5])
    print("AP 95% interval:", interval.round(4).tolist())
    write_run_metadata(os.path.dirname(os.path.abspath(args.output)), args, filename="bench_bootstrap_run.json")
    atomic_write_json(args.output, {"seconds": {"matching": matching, "ours": seconds_ours,
                                                "naive_extrapolated": seconds_naive},
                                    "naive_over_ours": seconds_naive / seconds_ours,
                                    "stats_equal": equal, "num_images": args.num_images,
                                    "num_detections": len(results), "resamples": args.bootstrap})
    return 0 if equal else 1


if __name__ == "__main__":
    run_main(main)
