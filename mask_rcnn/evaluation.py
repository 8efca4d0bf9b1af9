"""How much AP Mask R-CNN loses on low light: evaluation over image sets, tables and figures."""
import os

import torch

from torch_utils_lib.cli import UserError
from torch_utils_lib.coco_utils import CocoDetection
from torch_utils_lib.data import detection_loader
from torch_utils_lib.categories import all_categories_match, match_categories, present_categories
from torch_utils_lib.detection_models import (COCO_CATEGORY_NAMES, cached_weights_path, load_detector,
                                              TORCHVISION_DETECTORS)
from torch_utils_lib.engine import evaluate
from torch_utils_lib.image_io import read_rgb, write_image
from torch_utils_lib.visualize import draw_instances, side_by_side

STATS_SHOWN = ("AP", "AP50", "AP75")


def dataset_for(config, image_dir, annotation, category_map=None):
    """The annotation's images in `image_dir`, labelled in the detector's label space.

    Classes match by name (torch_utils_lib.categories), whatever their ids: a dataset's id 1 is
    not COCO's person unless it is named so.
    """
    probe = CocoDetection(image_dir, annotation)
    label_map = match_categories(present_categories(probe.coco_dict), config["categories"],
                                 category_map, annotation)
    return CocoDetection(image_dir, annotation, label_map=label_map)


def evaluate_model_on_sets(model, config, annotation, image_dirs, device, batch_size=4, workers=0,
                           backend="pycocotools", results_dir=None, amp=False, category_map=None):
    """{set name: {iou type: 12 COCO stats}} of one loaded detector on several image folders.

    With `results_dir`, each set's detections go to `detections_<set>_<iou type>.json` there
    (COCO results format, the annotation's own image and category ids).
    """
    stats = {}
    for name, image_dir in image_dirs.items():
        dataset = dataset_for(config, image_dir, annotation, category_map)
        loader = detection_loader(dataset, batch_size, train=False, workers=workers)
        prefix = os.path.join(results_dir, f"detections_{name}") if results_dir else None
        iou_types = ("bbox", "segm") if config["model"].startswith("maskrcnn") else ("bbox",)
        stats[name] = evaluate(model, loader, device, iou_types, backend, prefix, amp)
    return stats


def evaluate_image_sets(weight_path, annotation, image_dirs, device="cpu", batch_size=4, workers=0,
                        backend="pycocotools", results_dir=None, amp=False, category_map=None):
    """Load a mask_rcnn/train.py checkpoint and evaluate it on each of `image_dirs`."""
    device = torch.device(device)
    model, config = load_detector(weight_path, device)
    return evaluate_model_on_sets(model, config, annotation, image_dirs, device, batch_size, workers,
                                  backend, results_dir, amp, category_map)


def pretrained_available(name):
    """True when torchvision's COCO weights for `name` are in the local torch hub cache."""
    return os.path.isfile(cached_weights_path(TORCHVISION_DETECTORS[name][1]))


def categories_in_coco(annotation, category_map=None):
    """True when every class of the annotation maps onto a COCO class (by name or synonym)."""
    from torch_utils_lib.coco_utils import load_coco_json
    return all_categories_match(present_categories(load_coco_json(annotation)), COCO_CATEGORY_NAMES,
                                category_map)


def drop_table(results, normal="normal", low="low_light"):
    """Rows of {model: {column: value}} with normal/low-light AP and the drop, per IoU type."""
    rows = {}
    for model_name, sets in results.items():
        row = {}
        for iou_type in ("bbox", "segm"):
            if iou_type not in sets.get(normal, {}):
                continue
            for stat in STATS_SHOWN:
                a = sets[normal][iou_type][stat]
                row[f"{iou_type} {stat} normal"] = a
                if low not in sets:
                    continue
                b = sets[low][iou_type][stat]
                row[f"{iou_type} {stat} low"] = b
                row[f"{iou_type} {stat} drop"] = a - b
        rows[model_name] = row
    return rows


def parse_image_sets(specs, default_annotation):
    """{name: (image dir, annotation)} of --image_set NAME=IMAGE_DIR[,ANNOTATION] values."""
    sets = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        parts = rest.split(",")
        if not sep or not name or not parts[0] or len(parts) > 2 or name in sets:
            raise UserError(f"--image_set {spec}: expected NAME=IMAGE_DIR[,ANNOTATION] with a "
                            f"new NAME")
        sets[name] = (parts[0], parts[1] if len(parts) == 2 else default_annotation)
    return sets


def set_table(results):
    """Rows '<model> | <set>' of {column: value} with each IoU type's STATS_SHOWN."""
    return {f"{model} | {name}": {f"{iou} {stat}": stats[iou][stat] for iou in ("bbox", "segm")
                                  if iou in stats for stat in STATS_SHOWN}
            for model, sets in results.items() for name, stats in sets.items()}


def markdown_table(rows, first="model"):
    """A Markdown table of {row name: {column: float}} (columns in first-seen order)."""
    columns = []
    for row in rows.values():
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join([first] + columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, row in rows.items():
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "-")) for c in columns]
        lines.append("| " + " | ".join([name] + cells) + " |")
    return "\n".join(lines)


def instance_panel(image, output, names, score_threshold):
    """Image with the detections above `score_threshold` drawn on it."""
    keep = output["scores"] >= score_threshold
    masks = output["masks"][keep][:, 0].numpy() if "masks" in output else None
    return draw_instances(image, output["boxes"][keep].numpy(),
                          [names[int(l)] for l in output["labels"][keep]],
                          output["scores"][keep].numpy(), masks)


def ground_truth_panel(dataset, index, image):
    target = dataset.build_target(dataset.image_ids[index], *image.shape[:2])
    names = {label: c["name"] for c in dataset.categories
             for cid, label in dataset.label_map.items() if cid == c["id"]}
    masks = target["masks"].numpy() if "masks" in target else None
    return draw_instances(image, target["boxes"].numpy(), [names[int(l)] for l in target["labels"]],
                          None, masks)


@torch.no_grad()
def save_comparisons(model, config, annotation, normal_dir, low_dir, out_dir, count, device,
                     score_threshold=0.5, category_map=None):
    """Side-by-side PNGs: ground truth | predictions on normal light | on low light."""
    model.eval()
    normal = dataset_for(config, normal_dir, annotation, category_map)
    low = dataset_for(config, low_dir, annotation, category_map)
    paths = []
    for index in range(min(count, len(normal))):
        panels = []
        normal_image = read_rgb(normal.image_path(index))
        panels.append(ground_truth_panel(normal, index, normal_image))
        for dataset in (normal, low):
            image = read_rgb(dataset.image_path(index))
            tensor = torch.from_numpy(image).permute(2, 0, 1).float().div(255).to(device)
            output = {k: v.cpu() for k, v in model([tensor])[0].items()}
            panels.append(instance_panel(image, output, config["categories"], score_threshold))
        figure = side_by_side(panels, ["ground truth", "normal light", "low light"])
        stem = os.path.splitext(os.path.basename(normal.image_path(index)))[0]
        paths.append(os.path.join(out_dir, f"{stem}_comparison.png"))
        write_image(paths[-1], figure)
    return paths


def run_inference(model, config, image_dir, output_dir, device, batch_size=4, score_threshold=0.5):
    """Detections for every image in `image_dir`: overlays and a COCO results JSON (ids = file names)."""
    from torch_utils_lib.image_io import list_images
    from torch_utils_lib.runinfo import atomic_write_json
    from torch_utils_lib.coco_eval import detections_to_coco
    from torch_utils_lib.utils import MetricLogger

    files = list_images(image_dir)
    if not files:
        raise UserError(f"{image_dir}: no images found")
    results, model = [], model.eval()
    logger = MetricLogger(desc="inference", total=len(files))
    category_of_label = {label: (cid if cid is not None else label)
                         for label, cid in enumerate(config.get("category_ids") or range(len(config["categories"])))}
    for start in range(0, len(files), batch_size):
        batch = files[start:start + batch_size]
        images = [read_rgb(os.path.join(image_dir, f)) for f in batch]
        tensors = [torch.from_numpy(i).permute(2, 0, 1).float().div(255).to(device) for i in images]
        with torch.no_grad():
            outputs = [{k: v.cpu() for k, v in o.items()} for o in model(tensors)]
        for name, image, output in zip(batch, images, outputs):
            keep = output["scores"] >= score_threshold
            kept = {k: v[keep] for k, v in output.items()}
            write_image(os.path.join(output_dir, os.path.splitext(name)[0] + "_pred.png"),
                        instance_panel(image, kept, config["categories"], score_threshold))
            boxes = detections_to_coco(name, kept, category_of_label, "bbox")
            masks = (detections_to_coco(name, kept, category_of_label, "segm") if "masks" in kept
                     else [{}] * len(boxes))
            for box, mask, label in zip(boxes, masks, kept["labels"].tolist()):
                results.append({**box, "category_name": config["categories"][label],
                                **({"segmentation": mask["segmentation"]} if mask else {})})
            logger.update()
    logger.close()
    atomic_write_json(os.path.join(output_dir, "detections.json"), results)
    return len(files), len(results)
