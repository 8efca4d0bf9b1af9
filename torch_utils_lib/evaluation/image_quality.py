"""Image quality of restored or enhanced images against their normal-light references (PSNR,
SSIM and their GT-mean variants), and the two-stage AP table of a detector on such images."""
import os

from torch_utils_lib.evaluation.metrics import IMAGE_QUALITY_LABELS, IOU_TYPES, SHOWN_STATS
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.image_io import read_rgb
from torch_utils_lib.evaluation.image_metrics import psnr, psnr_gt_mean, ssim, ssim_gt_mean, summarize
from torch_utils_lib.toolkit.progress import progress as progress_bar
from torch_utils_lib.toolkit.tables import markdown_table

METRICS = {"psnr": psnr, "ssim": ssim, "psnr_gt_mean": psnr_gt_mean, "ssim_gt_mean": ssim_gt_mean}


def score_sets(names, reference_dir, image_dirs, progress=True):
    """Per-image metrics of each folder in `image_dirs` ({set: dir}) against `reference_dir`.

    Returns ({set: {metric: summary}}, [{"file_name", set: {metric: value}} per image]).
    GT-mean variants scale each image to the reference's mean brightness before scoring.
    """
    per_image = []
    for name in progress_bar(names, desc="scoring", disable=not progress):
        reference = read_rgb(os.path.join(reference_dir, name))
        record = {"file_name": name}
        for set_name, directory in image_dirs.items():
            path = os.path.join(directory, name)
            image = read_rgb(path)
            if image.shape != reference.shape:
                raise UserError(f"{path}: size {image.shape[1]}x{image.shape[0]} differs from the "
                                f"reference {os.path.join(reference_dir, name)} "
                                f"({reference.shape[1]}x{reference.shape[0]})")
            try:
                record[set_name] = {metric: fn(image, reference) for metric, fn in METRICS.items()}
            except ValueError as e:  # e.g. smaller than SSIM's 7x7 window
                raise UserError(f"{path}: {e}") from None
        per_image.append(record)
    summary = {set_name: {metric: summarize([r[set_name][metric] for r in per_image])
                          for metric in METRICS} for set_name in image_dirs}
    return summary, per_image


def quality_table(summary):
    """Markdown table: one row per image set, the mean of each metric."""
    rows = {set_name: {IMAGE_QUALITY_LABELS[m]: metrics[m]["mean"] for m in METRICS}
            for set_name, metrics in summary.items()}
    return markdown_table(rows, first_column="images", formats=dict.fromkeys(IMAGE_QUALITY_LABELS.values(), ".4f"))


def two_stage_table(ap):
    """Markdown table of Mask R-CNN AP on each image set ({set: {iou: stats}})."""
    columns = [f"{iou} {stat}" for iou in IOU_TYPES for stat in SHOWN_STATS
               if any(iou in sets for sets in ap.values())]
    rows = {set_name: {f"{iou} {stat}": stats[stat] for iou, stats in sets.items()
                       for stat in SHOWN_STATS} for set_name, sets in ap.items()}
    return markdown_table(rows, first_column="images", columns=columns,
                          formats=dict.fromkeys(columns, ".4f"))
