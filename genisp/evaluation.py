"""GenISP's evaluation: a frozen detector on a RAW split through each pipeline (genisp/evaluate.py)."""
import json
import os

from genisp.detection import predict_raw, raw_dataset
from torch_utils_lib.toolkit.atomic_io import atomic_write_json, atomic_write_text, read_json
from torch_utils_lib.evaluation.metrics import SHOWN_STATS, STAT_NAMES
from torch_utils_lib.evaluation.coco_eval import coco_stats, detections_file, detections_to_coco
from torch_utils_lib.data.coco_json import subset_coco
from torch_utils_lib.data.loaders import detection_loader
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.plots.charts import plot_bars
from torch_utils_lib.toolkit.runinfo import file_digest
from torch_utils_lib.toolkit.tables import markdown_table


def evaluate_pipelines(models, pipelines, raw_dir, annotation, detector_categories, cache_dir,
                       resize, device, amp, batch_size, workers, output_dir, backend, settings,
                       category_map=None):
    """{row name: 12 stats} for each pipeline (and each camera when there are several); saved.

    A pipeline whose detections were saved with the same `settings` (pipeline_settings) is not
    run again.
    """
    table = {}
    for pipeline in pipelines:
        dataset = raw_dataset(raw_dir, annotation, detector_categories,
                              "rawpy" if pipeline == "rawpy" else "minimal", cache_dir, resize,
                              category_map=category_map)
        detections_path = detections_file(output_dir, pipeline, "bbox")
        record_settings = json.loads(json.dumps({  # as it reads back from JSON (lists, not tuples)
            **settings, "pipeline": pipeline, "resize": resize,
            "annotation": os.path.abspath(annotation)}))
        results = saved_detections(detections_path, record_settings)
        if results is None:
            loader = detection_loader(dataset, batch_size, train=False, workers=workers)
            results = []
            for targets, outputs in predict_raw(models[pipeline], loader, device, amp,
                                                desc=f"evaluating {pipeline}"):
                for target, output in zip(targets, outputs):
                    results += detections_to_coco(int(target["image_id"]), output,
                                                  dataset.category_of_label, "bbox")
            atomic_write_json(detections_path, {"settings": record_settings, "results": results})
        cameras = sorted({dataset.camera_of(i) for i in range(len(dataset))})
        table[pipeline] = coco_stats(dataset.coco_dict, results, "bbox", backend)
        if len(cameras) > 1:
            for camera in cameras:
                ids = {dataset.image_ids[i] for i in range(len(dataset))
                       if dataset.camera_of(i) == camera}
                subset = subset_coco(dataset.coco_dict, ids)
                table[f"{pipeline} ({camera})"] = coco_stats(
                    subset, [r for r in results if r["image_id"] in ids], "bbox", backend)
    atomic_write_json(os.path.join(output_dir, "results.json"), table)
    atomic_write_text(os.path.join(output_dir, "results.md"), format_table(table) + "\n")
    plot_bars({row: {k: v for k, v in stats.items() if k in SHOWN_STATS}
               for row, stats in table.items()}, os.path.join(output_dir, "ap.png"),
              title="frozen detector on RAW")
    return table


def pipeline_settings(args, with_genisp, detector_spec, weights):
    """What the saved detections depend on, checkpoints by content: a retrained model reruns."""
    files = {"genisp_sha256": args.weight_path if with_genisp else None,
             "detector_sha256": detector_spec if os.path.isfile(detector_spec) else None,
             "detector_weights_sha256": weights if os.path.isfile(weights) else None}
    return {"raw_dir": os.path.abspath(args.raw_dir), "detector": detector_spec,
            "weights": weights, **{k: file_digest(v) if v else None for k, v in files.items()}}


def saved_detections(path, settings):
    """The saved detections of a pipeline run with the same settings, or None."""
    if not os.path.isfile(path):
        return None
    try:
        saved = read_json(path, "detections")
    except UserError:  # unreadable: run the pipeline again
        return None
    return saved["results"] if saved.get("settings") == settings else None


def format_table(table):
    """Markdown table: one row per pipeline (and camera), the 12 COCO stats as columns."""
    return markdown_table(table, first_column="pipeline", columns=STAT_NAMES)
