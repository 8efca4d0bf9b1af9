"""The metric vocabulary, in one place: IoU types, COCO's stat names, which stats carry intervals
and which tables show, and the image-quality metrics with their labels.

Torch-free: the scripts' parsers, the evaluation, the study and the report all read it. A new
metric (VOC's mAP, ...) adds its names here.
"""
IOU_TYPES = ("bbox", "segm")  # every IoU type a detector can be scored on (box, instance mask)
BOX_TYPES = ("bbox",)  # a box-only detector's or dataset's IoU types

# COCOeval.summarize()'s 12 stats, in its order
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
INTERVAL_STATS = ("AP", "AP50", "AP75")  # bootstrapped: intervals and paired differences
SHOWN_STATS = ("AP", "AP50", "AP75")  # the evaluate scripts' tables and per-category AP
SUMMARY_STATS = ("AP", "AP50")  # compact tables and bar charts (the study's details, training logs)
COCO_SCORED = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # study/score.py: intervals and deltas

# mmdetection's VOCMetric (eval_map at IoU 0.5): area under the curve, and VOC2007's 11 points
VOC_STAT_NAMES = {"voc": ("mAP_voc",), "voc07": ("mAP_voc07",)}

# image quality against a normal-light reference: metric -> label in tables
IMAGE_QUALITY_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "psnr_gt_mean": "PSNR GT-mean (dB)",
                        "ssim_gt_mean": "SSIM GT-mean"}
REPORT_QUALITY = {"psnr": "PSNR", "ssim": "SSIM"}  # the study's cells: metric -> column


def iou_types_of(has_masks):
    """The IoU types a detector (or dataset) with or without instance masks is scored on."""
    return IOU_TYPES if has_masks else BOX_TYPES
