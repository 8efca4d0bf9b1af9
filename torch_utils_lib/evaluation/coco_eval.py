"""COCO AP evaluation: detections to COCO results, gathered across torchrun processes, 12 stats.

pycocotools is the reference backend; `faster_coco_eval` computes the same 12 stats faster.
"""
import contextlib
import io
import os

import numpy as np
from pycocotools import mask as mask_utils

from torch_utils_lib.evaluation import coco_match
from torch_utils_lib.evaluation.matching import ImageMatches, backend_modules, evaluate_images
from torch_utils_lib.evaluation.metrics import IOU_TYPES, STAT_NAMES
from torch_utils_lib.toolkit.atomic_io import atomic_write_json


def detections_file(folder, set_name, iou_type):
    """The one name of a set's dumped detections for one IoU type (a COCO results list, or
    GenISP's {"settings", "results"}): `<folder>/detections_<set>_<iou type>.json`."""
    return os.path.join(folder, f"detections_{set_name}_{iou_type}.json")


def detections_to_coco(image_id, output, category_of_label, iou_type, mask_threshold=0.5):
    """COCO result dicts of one image's detector output for `iou_type` ('bbox' or 'segm')."""
    scores = output["scores"].tolist()
    categories = [int(category_of_label[int(label)]) for label in output["labels"]]
    if iou_type == "bbox":
        boxes = output["boxes"].clone()
        boxes[:, 2:] -= boxes[:, :2]
        return [{"image_id": image_id, "category_id": c, "bbox": [round(v, 3) for v in b], "score": s}
                for c, b, s in zip(categories, boxes.tolist(), scores)]
    masks = (output["masks"][:, 0] > mask_threshold).numpy().astype(np.uint8)
    results = []
    for c, m, s in zip(categories, masks, scores):
        rle = mask_utils.encode(np.asfortranarray(m))
        rle["counts"] = rle["counts"].decode("ascii")
        results.append({"image_id": image_id, "category_id": c, "segmentation": rle, "score": s})
    return results


def summarized_stats(evaluator):
    """The 12 COCO stats, as a dict, of a COCOeval whose evaluate() has run."""
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)}


def per_category_stats(evaluator, category_names):
    """{category name: {AP, AP50, AP75}} of an evaluated COCOeval, read from its precision array.

    `category_names` maps category ids to names (the dataset's own). Each value equals what
    COCOeval.summarize() gives with `params.catIds = [that category]` (all areas, 100 detections):
    COCO matches every category on its own. Categories with no ground truth in the images (COCOeval
    gives them -1) are left out.
    """
    if not getattr(evaluator, "eval", None):
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator.accumulate()
    params = evaluator.params
    # precision: [IoU thresholds, recall points, categories, area ranges, max detections]
    precision = np.asarray(evaluator.eval["precision"])[:, :, :, params.areaRngLbl.index("all"),
                                                        list(params.maxDets).index(100)]
    thresholds = {"AP": slice(None), "AP50": np.isclose(params.iouThrs, 0.5),
                  "AP75": np.isclose(params.iouThrs, 0.75)}
    result = {}
    for k, category_id in enumerate(params.catIds):
        if not (precision[:, :, k] > -1).any():
            continue
        stats = {}
        for stat, rows in thresholds.items():
            values = precision[rows, :, k]
            values = values[values > -1]
            stats[stat] = float(np.mean(values)) if values.size else -1.0
        result[category_names[int(category_id)]] = stats
    return result


def coco_stats(gt_dict, results, iou_type, backend="pycocotools"):
    """The 12 COCO stats of `results` against the annotation dict `gt_dict`, as a dict.

    With no detections at all every stat is computed as COCOeval would for an empty result set.
    """
    return summarized_stats(evaluate_images(gt_dict, {iou_type: results}, backend)[iou_type])


class CocoEvaluator:
    """Collects detections of a CocoDetection dataset and scores them per IoU type."""

    def __init__(self, dataset, iou_types=IOU_TYPES, backend="pycocotools"):
        backend_modules(backend)
        if "segm" in iou_types and not dataset.with_masks:
            iou_types = tuple(t for t in iou_types if t != "segm")
        self.dataset, self.iou_types, self.backend = dataset, tuple(iou_types), backend
        self.results = {t: {} for t in self.iou_types}  # keyed by image id: padded shards repeat

    def update(self, targets, outputs):
        for target, output in zip(targets, outputs):
            image_id = int(target["image_id"])
            for iou_type in self.iou_types:
                self.results[iou_type][image_id] = detections_to_coco(
                    image_id, output, self.dataset.category_of_label, iou_type)

    def gathered(self, iou_type):
        """All processes' results for `iou_type` as one list (every process gets it)."""
        # torch only where results are gathered: the scripts' --help and the bootstrap import this
        # module (evaluate_images) without it, which saves 2-3 s of start-up
        from torch_utils_lib.runtime.distributed import all_gather_object
        merged = {}
        for part in all_gather_object(self.results[iou_type]):
            merged.update(part)
        return [r for image_id in sorted(merged) for r in merged[image_id]]

    def summarize(self, matches=None, per_category=None):
        """{iou_type: {stat: value}}; computed on the main process and shared with the rest.

        `matches` (a dict): the main process puts there
        {iou_type: matching.ImageMatches} of this very matching, for a bootstrap that
        then needs no second one. `per_category` (a dict) receives {iou_type:
        per_category_stats} with the dataset's class names, on every process.
        """
        from torch_utils_lib.runtime.distributed import all_gather_object, is_main_process  # as gathered()
        results = {iou_type: self.gathered(iou_type) for iou_type in self.iou_types}
        summary = None
        if is_main_process():
            evaluators = evaluate_images(self.dataset.coco_dict, results, self.backend)
            stats = {iou_type: summarized_stats(e) for iou_type, e in evaluators.items()}
            if matches is not None:  # pycocotools' own matching, else the vectorised one
                matches.update({t: ImageMatches(e) if self.backend == "pycocotools"
                                else coco_match.match(self.dataset.coco_dict, results[t], t)
                                for t, e in evaluators.items()})
            names = {c["id"]: c["name"] for c in self.dataset.coco_dict["categories"]}
            summary = (stats, {iou_type: per_category_stats(e, names)
                               for iou_type, e in evaluators.items()}
                       if per_category is not None else None)
        stats, categories = all_gather_object(summary)[0]
        if per_category is not None:
            per_category.update(categories)
        return stats

    def dump(self, folder, set_name):
        """Write each IoU type's detections to its detections_file in COCO results format, with
        the original image ids."""
        from torch_utils_lib.runtime.distributed import is_main_process  # as gathered()
        paths = {}
        for iou_type in self.iou_types:
            results = [{**r, "image_id": self.dataset.original_id(r["image_id"])}
                       for r in self.gathered(iou_type)]
            if is_main_process():
                paths[iou_type] = detections_file(folder, set_name, iou_type)
                atomic_write_json(paths[iou_type], results)
        return paths
