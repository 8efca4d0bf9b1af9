"""How much AP Mask R-CNN loses on low light: evaluation over image sets, tables and figures."""
import os

import torch

from torch_utils_lib.evaluation.metrics import IOU_TYPES, SHOWN_STATS
from torch_utils_lib.toolkit.atomic_io import atomic_write_json, atomic_write_text, read_json
from torch_utils_lib.data.categories import all_categories_match, match_categories, present_categories
from torch_utils_lib.evaluation.scoring import matches_of_files, paired_intervals
from torch_utils_lib.evaluation.coco_eval import detections_file, detections_to_coco
from torch_utils_lib.data.coco_json import load_coco_json
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.data.loaders import detection_loader
from torch_utils_lib.models.detectors import (COCO_CATEGORY_NAMES, TORCHVISION_DETECTORS,
                                              cached_weights_path, check_dataset_inputs,
                                              check_detector_input, family_of, load_detector,
                                              predict_images)
from torch_utils_lib.engine.loop import evaluate
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.image_io import list_images, read_rgb, read_size, write_image
from torch_utils_lib.engine.metric_logger import MetricLogger
from torch_utils_lib.toolkit.names import output_names, parse_named_values
from torch_utils_lib.plots.drawing import draw_detections, draw_instances, side_by_side

CHECKPOINT_ROW = "checkpoint"  # the row (and results folder) of --weight_path
AP_TABLE = "ap_table"  # <output_dir>/ap_table.json and .md


def results_dir(output_dir, model_name):
    """Where a model's detections go: `<output_dir>/<first word of its row name>`."""
    return os.path.join(output_dir, model_name.split(" ")[0])


def write_ap_table(output_dir, markdown, rows, stats, models, sets, per_category):
    """The AP table of one evaluate.py run: ap_table.md (`markdown`) and ap_table.json with the
    rows as printed, the stats {model: {set: {iou type: stats}}}, the models {row: checkpoint or
    name}, the sets {set: [image dir, annotation]} and per-category AP. Returns the .md path."""
    atomic_write_json(os.path.join(output_dir, f"{AP_TABLE}.json"), {
        "rows": rows, "stats": stats, "models": models, "sets": sets, "per_category": per_category})
    path = os.path.join(output_dir, f"{AP_TABLE}.md")
    atomic_write_text(path, markdown + "\n")
    return path


def read_ap_table(output_dir, model_name=CHECKPOINT_ROW):
    """(checkpoint, {set: {iou type: stats, "per_category": {...}, "detections": {iou type:
    file}}}) of one model's row in the AP table an evaluate.py run wrote in `output_dir`;
    None where there is no table or no such row."""
    path = os.path.join(output_dir, f"{AP_TABLE}.json")
    if not os.path.isfile(path):
        return None
    saved = read_json(path, "AP table")
    if model_name not in saved.get("stats", {}):
        return None
    per_category = saved.get("per_category", {}).get(model_name, {})
    folder = results_dir(output_dir, model_name)
    return saved["models"][model_name], {
        name: {**stats, "per_category": per_category.get(name),
               "detections": {iou: detections_file(folder, name, iou) for iou in stats}}
        for name, stats in saved["stats"][model_name].items()}


def dataset_for(config, image_dir, annotation, category_map=None):
    """The annotation's images in `image_dir`, labelled in the detector's label space.

    Classes match by name (torch_utils_lib.data.categories), whatever their ids: a dataset's id 1 is
    not COCO's person unless it is named so.
    """
    probe = CocoDetection(image_dir, annotation)
    label_map = match_categories(present_categories(probe.coco_dict), config["categories"],
                                 category_map, annotation)
    return CocoDetection(image_dir, annotation, label_map=label_map)


def evaluate_model_on_sets(model, config, annotation, image_dirs, device, batch_size=4, workers=0,
                           backend="pycocotools", results_dir=None, amp=False, category_map=None,
                           matches=None, per_category=None):
    """{set name: {iou type: 12 COCO stats}} of one loaded detector on several image folders.

    With `results_dir`, each set's detections go to `detections_<set>_<iou type>.json` there
    (COCO results format, the annotation's own image and category ids). `matches` (a dict)
    receives {set name: {iou type: ImageMatches}} of the evaluation's matching (for add_intervals).
    `per_category` (a dict) receives {set name: {iou type: {class name: {AP, AP50, AP75}}}},
    classes named as the annotation names them.
    """
    stats = {}
    for name, image_dir in image_dirs.items():
        dataset = dataset_for(config, image_dir, annotation, category_map)
        check_dataset_inputs(model, dataset)
        loader = detection_loader(dataset, batch_size, train=False, workers=workers)
        dump_to = (results_dir, name) if results_dir else None
        iou_types = family_of(config["model"]).iou_types
        set_matches = None if matches is None else matches.setdefault(name, {})
        set_categories = None if per_category is None else per_category.setdefault(name, {})
        stats[name] = evaluate(model, loader, device, iou_types, backend, dump_to, amp, set_matches,
                               set_categories)
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
    return os.path.isfile(cached_weights_path(TORCHVISION_DETECTORS[name].coco_weights))


def categories_in_coco(annotation, category_map=None):
    """True when every class of the annotation maps onto a COCO class (by name or synonym)."""
    return all_categories_match(present_categories(load_coco_json(annotation)), COCO_CATEGORY_NAMES,
                                category_map)


def drop_table(results, normal="normal", low="low_light"):
    """Rows of {model: {column: value}} with normal/low-light AP and the drop, per IoU type.

    Where the stats carry bootstrap intervals (`<stat>_ci`, add_intervals) the row gets
    `<column>_ci` beside the value, and the drop (normal - low) the interval of the paired
    difference `vs_<normal>` kept on the low-light stats, negated.
    """
    rows = {}
    for model_name, sets in results.items():
        row = {}
        for iou_type in IOU_TYPES:
            if iou_type not in sets.get(normal, {}):
                continue
            for stat in SHOWN_STATS:
                for name, column in ((normal, "normal"), (low, "low")):
                    if name not in sets:
                        continue
                    row[f"{iou_type} {stat} {column}"] = sets[name][iou_type][stat]
                    if f"{stat}_ci" in sets[name][iou_type]:
                        row[f"{iou_type} {stat} {column}_ci"] = sets[name][iou_type][f"{stat}_ci"]
                if low not in sets:
                    continue
                row[f"{iou_type} {stat} drop"] = sets[normal][iou_type][stat] - sets[low][iou_type][stat]
                difference = sets[low][iou_type].get(f"vs_{normal}", {}).get(stat)
                if difference:
                    row[f"{iou_type} {stat} drop_ci"] = [-difference["ci"][1], -difference["ci"][0]]
        rows[model_name] = row
    return rows


def parse_image_sets(specs, default_annotation):
    """{name: (image dir, annotation)} of --image_set NAME=IMAGE_DIR[,ANNOTATION] values.

    NAMEs name detection files and table rows: safe folder names, unique (torch_utils_lib.toolkit.names).
    """
    sets = {}
    for name, rest in parse_named_values(specs, "--image_set").items():
        parts = rest.split(",")
        if not all(parts) or len(parts) > 2:
            raise UserError(f"--image_set {name}={rest}: expected NAME=IMAGE_DIR[,ANNOTATION]")
        sets[name] = (parts[0], parts[1] if len(parts) == 2 else default_annotation)
    return sets


def category_table(per_category, iou_types=IOU_TYPES):
    """Rows {class name: {"<iou type> AP <set>": AP}} of one model's per-category stats
    ({set: {iou type: {class name: stats}}}), classes in the annotation's order."""
    rows = {}
    for set_name, by_type in per_category.items():
        for iou_type in iou_types:
            for category, stats in by_type.get(iou_type, {}).items():
                rows.setdefault(category, {})[f"{iou_type} AP {set_name}"] = stats["AP"]
    return rows


def set_table(results, baseline="normal"):
    """Rows '<model> | <set>' of {column: value} with each IoU type's SHOWN_STATS and, on a set
    that carries the paired difference against `baseline` (add_intervals' `vs_<baseline>`), the
    columns '<iou type> Δ<stat> vs <baseline>' (set - baseline, with its interval)."""
    rows = {}
    for model, sets in results.items():
        for name, stats in sets.items():
            row = {}
            for iou in IOU_TYPES:
                if iou not in stats:
                    continue
                for stat in SHOWN_STATS:
                    row[f"{iou} {stat}"] = stats[iou][stat]
                    if f"{stat}_ci" in stats[iou]:
                        row[f"{iou} {stat}_ci"] = stats[iou][f"{stat}_ci"]
                for stat, difference in stats[iou].get(f"vs_{baseline}", {}).items():
                    if stat in SHOWN_STATS:
                        row[difference_column(iou, stat, baseline)] = difference["delta"]
                        row[difference_column(iou, stat, baseline) + "_ci"] = difference["ci"]
            rows[f"{model} | {name}"] = row
    return rows


def difference_column(iou_type, stat, baseline):
    return f"{iou_type} Δ{stat} vs {baseline}"


def is_difference_column(column):
    """True for set_table's and drop_table's paired-difference columns (marked (n.s.) when their
    interval holds 0)."""
    return " Δ" in column or column.endswith(" drop")


def add_intervals(results, annotations, results_dirs, n=1000, seed=0, matches=None,
                  baseline="normal"):
    """Add `<stat>_ci` to every cell of `results` ({model: {set: {iou type: stats}}}) and, to each
    set scored on the same annotation as the set named `baseline`, `vs_<baseline>` (the paired
    difference set - baseline on the same resampled images): coco_bootstrap.with_intervals'
    result shape, in place.

    The bootstrap resamples the detections evaluate_model_on_sets dumped in `results_dirs[model]`;
    `annotations` is {set: annotation file}. `matches` ({model: {set: {iou type: ImageMatches}}},
    from evaluate_model_on_sets) reuses the evaluation's matching where it has every set.
    """
    for model_name, sets in results.items():
        found = (matches or {}).get(model_name) or {}
        for annotation in dict.fromkeys(annotations[name] for name in sets):
            group = [name for name in sets if annotations[name] == annotation]
            baselines = {name: {baseline: baseline} for name in group
                         if baseline in group and name != baseline}
            for iou_type in sets[group[0]]:
                if all(iou_type in found.get(name, {}) for name in group):
                    set_matches = {name: found[name][iou_type] for name in group}
                else:
                    files = {name: detections_file(results_dirs[model_name], name, iou_type)
                             for name in group}
                    set_matches = matches_of_files(annotation, files, iou_type)
                summaries, _, _ = paired_intervals({name: sets[name][iou_type] for name in group},
                                                   set_matches, n, seed, baselines, SHOWN_STATS)
                for name in group:
                    sets[name][iou_type] = summaries[name]


def ground_truth_panel(dataset, index, image):
    """Image with the annotated instances of `dataset[index]` drawn on it."""
    target = dataset.build_target(dataset.image_ids[index], *image.shape[:2])
    names = {label: c["name"] for c in dataset.categories
             for cid, label in dataset.label_map.items() if cid == c["id"]}
    masks = target["masks"].numpy() if "masks" in target else None
    return draw_instances(image, target["boxes"].numpy(), [names[int(l)] for l in target["labels"]],
                          None, masks)


def comparison_figures(images, annotation):
    """{file name: [its comparison PNG]} of the first images of `annotation` (COCO image dicts);
    a UserError before anything is written when two would share a figure (torch_utils_lib.toolkit.names)."""
    return output_names([i["file_name"] for i in images], lambda name: [
        os.path.splitext(os.path.basename(name))[0] + "_comparison.png"], annotation)


def save_comparisons(model, config, annotation, normal_dir, low_dir, out_dir, count, device,
                     score_threshold=0.5, category_map=None):
    """Side-by-side PNGs: ground truth | predictions on normal light | on low light."""
    model.eval()
    normal = dataset_for(config, normal_dir, annotation, category_map)
    low = dataset_for(config, low_dir, annotation, category_map)
    shown = range(min(count, len(normal)))
    figures = comparison_figures(normal.coco_dict["images"][:count], annotation)
    paths = []
    for index in shown:
        panels = []
        normal_image = read_rgb(normal.image_path(index))
        panels.append(ground_truth_panel(normal, index, normal_image))
        for dataset in (normal, low):
            image = read_rgb(dataset.image_path(index))
            output = predict_images(model, [image], device)[0]
            panels.append(draw_detections(image, output, config["categories"], score_threshold))
        figure = side_by_side(panels, ["ground truth", "normal light", "low light"])
        file_name = normal.images_by_id[normal.image_ids[index]]["file_name"]
        paths.append(os.path.join(out_dir, figures[file_name][0]))
        write_image(paths[-1], figure)
    return paths


def run_inference(model, config, image_dir, output_dir, device, batch_size=4, score_threshold=0.5,
                  amp=False):
    """Detections scoring at least `score_threshold` for every image in `image_dir`: overlays and
    a COCO results JSON (ids = file names)."""
    files = list_images(image_dir)
    if not files:
        raise UserError(f"{image_dir}: no images found")
    overlays = output_names(files, lambda name: [os.path.splitext(name)[0] + "_pred.png"], image_dir)
    for name in files:  # before the first output: an image it cannot take stops the run here
        path = os.path.join(image_dir, name)
        check_detector_input(model, path, *read_size(path))
    results, model = [], model.eval()
    logger = MetricLogger(desc="inference", total=len(files))
    category_of_label = {label: (cid if cid is not None else label)
                         for label, cid in enumerate(config.get("category_ids") or range(len(config["categories"])))}
    for start in range(0, len(files), batch_size):
        batch = files[start:start + batch_size]
        images = [read_rgb(os.path.join(image_dir, f)) for f in batch]
        for name, image, output in zip(batch, images, predict_images(model, images, device, amp)):
            keep = output["scores"] >= score_threshold
            kept = {k: v[keep] for k, v in output.items()}
            write_image(os.path.join(output_dir, overlays[name][0]),
                        draw_detections(image, kept, config["categories"]))
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
