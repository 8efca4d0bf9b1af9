"""The runs of bench/bench_eval.py: our COCO evaluator on both backends against pycocotools by hand."""
import contextlib
import copy
import io
import json
import os
import tempfile
import time

import numpy as np
import torch

from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.evaluation.coco_eval import CocoEvaluator
from torch_utils_lib.evaluation.metrics import IOU_TYPES, STAT_NAMES
from torch_utils_lib.data.coco_json import load_coco_json
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images
from torch_utils_lib.toolkit.tables import markdown_table


class RepeatedSet:
    """The sample val set repeated to `n` images, with the attributes CocoEvaluator reads."""

    def __init__(self, n, folder):
        base = load_coco_json(sample_annotation("val"))
        images, anns = [], []
        for k in range(n):
            image = base["images"][k % len(base["images"])]
            images.append({**image, "id": k + 1})
            for a in base["annotations"]:
                if a["image_id"] == image["id"]:
                    anns.append({**a, "id": len(anns) + 1, "image_id": k + 1})
        self.path = os.path.join(folder, "gt.json")
        with open(self.path, "w") as f:
            json.dump({"images": images, "annotations": anns, "categories": base["categories"]}, f)
        self.dataset = CocoDetection(sample_images("val"), self.path)


def detections(dataset, rng, per_image=10):
    """(targets, outputs) shaped like a detector's, from jittered ground truth plus noise."""
    targets, outputs = [], []
    for image_id in dataset.image_ids:
        target = dataset.build_target(image_id, 128, 128)
        n = len(target["boxes"])
        extra = max(0, per_image - n)
        fp = torch.from_numpy(rng.uniform(0, 100, (extra, 2))).float()
        boxes = torch.cat([target["boxes"] + torch.from_numpy(rng.normal(0, 2, (n, 4))).float(),
                           torch.cat([fp, fp + 25], 1)])
        masks = torch.zeros(n + extra, 1, 128, 128)
        masks[:n, 0] = target["masks"].float()
        for j, b in enumerate(boxes[n:].int().tolist()):
            masks[n + j, 0, b[1]:b[3], b[0]:b[2]] = 1
        outputs.append({"boxes": boxes, "masks": masks,
                        "labels": torch.cat([target["labels"], torch.from_numpy(rng.integers(1, 4, extra))]),
                        "scores": torch.from_numpy(rng.uniform(0.05, 1, n + extra)).float()})
        targets.append({"image_id": image_id})
    return targets, outputs


def direct(gt_path, results, iou_type, folder):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    path = os.path.join(folder, f"dt_{iou_type}.json")
    with open(path, "w") as f:
        json.dump(results, f)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        e = COCOeval(gt, gt.loadRes(path), iou_type)
        e.evaluate(), e.accumulate(), e.summarize()
    return dict(zip(STAT_NAMES, e.stats))


def run(args):
    """The benchmark of the parsed `args`."""
    folder = tempfile.mkdtemp(prefix="bench_eval_")
    data = RepeatedSet(args.num_images, folder)
    targets, outputs = detections(data.dataset, np.random.default_rng(0))
    seconds, equal = {}, {}
    for iou_type in IOU_TYPES:
        stats = {}
        for backend in ("pycocotools", "faster_coco_eval"):
            start = time.perf_counter()
            evaluator = CocoEvaluator(data.dataset, (iou_type,), backend=backend)
            evaluator.update(targets, outputs)
            encoded = time.perf_counter()
            stats[backend] = evaluator.summarize()[iou_type]
            seconds[f"{iou_type} ours {backend}"] = time.perf_counter() - encoded
            seconds[f"{iou_type} ours encoding outputs"] = encoded - start
        results = copy.deepcopy(evaluator.gathered(iou_type))
        start = time.perf_counter()
        reference = direct(data.path, results, iou_type, folder)
        seconds[f"{iou_type} direct pycocotools"] = time.perf_counter() - start
        equal[iou_type] = all(abs(stats[b][k] - reference[k]) < 1e-6 for b in stats for k in STAT_NAMES)
    print(f"{args.num_images} images, {sum(len(o['boxes']) for o in outputs)} detections, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(markdown_table({key: {"seconds": value,
                                "x direct": value / seconds[f"{key.split()[0]} direct pycocotools"]}
                          for key, value in seconds.items()}, first_column="run",
                         formats={"seconds": ".2f", "x direct": ".2f"}))
    print("stats equal to direct pycocotools:", equal)
    atomic_write_json(args.output, {"seconds": seconds, "stats_equal": equal,
                                    "num_images": args.num_images})
