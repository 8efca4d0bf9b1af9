"""Turn a folder of camera RAW into GenISP-enhanced PNGs; with --detect, also detect objects.

Writes <output_dir>/<name>.png for every RAW file and, with --detect, <name>_detections.png
overlays and detections.json in COCO results format (boxes in the RAW's pixel frame, image ids
from --annotation when given, else file names without extension). Files already written are
skipped, so an interrupted run continues where it stopped.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from genisp.raw import RawLoader, list_raw_files
from genisp.sizes import RESIZE_RANGE
from torch_utils_lib.toolkit.atomic_io import atomic_write_json, read_json
from torch_utils_lib.toolkit.cli import ArgumentParser, add_common_args, int_in_range, probability
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE
from torch_utils_lib.data.coco_json import load_coco_json
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart
from torch_utils_lib.data.image_io import write_image
from torch_utils_lib.toolkit.names import output_names
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_raw
from torch_utils_lib.toolkit.runinfo import write_run_metadata
from torch_utils_lib.plots.drawing import draw_detections


PARTIAL_DIR = "detections_per_image"  # one JSON per image, so an interrupted run resumes


def build_parser():
    parser = ArgumentParser(
        example='python genisp/inference.py --weight_path runs/genisp/last.pth --detector runs/mask_rcnn/sample/last.pth --detect',
        description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw_dir", default=sample_raw("val"), help="folder of RAW files")
    parser.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "genisp_inference"),
                        help="enhanced PNGs, and with --detect overlays and detections.json")
    parser.add_argument("--weight_path", default=os.path.join(RUNS_DIR, "genisp", "last.pth"),
                        help="GenISP checkpoint from genisp/train.py")
    parser.add_argument("--resize", type=int_in_range(*RESIZE_RANGE, off=0), nargs=2, default=None,
                        metavar=("LONG", "SHORT"),
                        help="fit images into LONG x SHORT (default: as trained; 0 0: packed size)")
    parser.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=4)
    parser.add_argument("--detect", action="store_true",
                        help="also run the frozen detector: overlays and detections.json")
    parser.add_argument("--detector", default=None,
                        help="detector (default: the one GenISP was trained with)")
    parser.add_argument("--detector_weights", default=None,
                        help="weights of a named detector: 'coco' or a file (default: as trained)")
    parser.add_argument("--annotation", default=None,
                        help="COCO file whose image ids the detections should use (optional)")
    parser.add_argument("--score_threshold", type=probability, default=0.5,
                        help="smallest score kept, in detections.json and on the overlays")
    add_common_args(parser, seed=False, workers=False)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and flag errors need no torch
    import torch

    from genisp.detection import load_genisp
    from torch_utils_lib.models.detectors import check_detector_input, detections_to_cpu
    from torch_utils_lib.runtime.devices import resolve_amp
    from torch_utils_lib.runtime.distributed import init_distributed
    from torch_utils_lib.runtime.devices import autocast
    from torch_utils_lib.models.frozen_detector import boxes_only, load_frozen_detector
    from torch_utils_lib.engine.metric_logger import MetricLogger
    from torch_utils_lib.data.transforms import to_tensor, to_uint8

    check_outputs_apart({"--raw_dir": args.raw_dir, "--annotation": args.annotation,
                         "--weight_path": args.weight_path,
                         "--detector": args.detector, "--detector_weights": args.detector_weights},
                        {"--output_dir": args.output_dir})
    device = init_distributed(args.device).device
    amp = resolve_amp(args.amp, device)
    names = list_raw_files(args.raw_dir)
    if not names:
        raise UserError(f"{args.raw_dir}: no RAW files (by extension) in this folder")
    # x.dng and x.DNG (or x.nef) would write one x.png: refused before anything is written
    written = output_names(names, lambda name: outputs_of(name, args.detect), args.raw_dir)
    genisp, config = load_genisp(args.weight_path, device)
    if args.resize is not None:
        resize = tuple(args.resize) if all(args.resize) else None
    else:
        resize = tuple(config["resize"]) if config.get("resize") else None
    detector = category_ids = categories = None
    if args.detect:
        detector, detector_config = load_frozen_detector(
            args.detector or config.get("detector", "retinanet_resnet50_fpn_v2"),
            args.detector_weights or config.get("detector_weights", "coco"), device)
        categories = detector_config["categories"]
        category_ids = detector_config.get("category_ids") or list(range(len(categories)))
    image_ids = _image_ids(args.annotation, names)
    os.makedirs(args.output_dir, exist_ok=True)
    write_run_metadata(args.output_dir, args, resize=resize)

    def output(name, kind):
        """The path of RAW file `name`'s enhanced PNG (0), overlay (1) or detections (2)."""
        return os.path.join(args.output_dir, written[name][kind])

    todo = [n for n in names if not all(os.path.isfile(os.path.join(args.output_dir, p))
                                        for p in written[n])]
    loader = RawLoader(None, resize)
    logger = MetricLogger(desc="GenISP inference", total=-(-len(todo) // args.batch_size))
    with torch.no_grad():
        for start in range(0, len(todo), args.batch_size):
            batch = todo[start:start + args.batch_size]
            loaded = [loader.load(os.path.join(args.raw_dir, n)) for n in batch]
            if detector is not None:  # before this batch's outputs: one it cannot take stops here
                for name, (array, _) in zip(batch, loaded):
                    check_detector_input(detector, os.path.join(args.raw_dir, name), *array.shape[:2])
            images = [to_tensor(a).to(device) for a, _ in loaded]
            with autocast(device, amp):
                enhanced = genisp(images)
                detections = None
                if detector is not None:
                    with boxes_only(detector):
                        detections = detector(list(enhanced))
            for i, name in enumerate(batch):
                rgb = to_uint8(enhanced[i])
                write_image(output(name, 0), rgb)
                if detections is None:
                    continue
                det = detections_to_cpu(detections[i])
                keep = det["scores"] >= args.score_threshold
                det = {k: v[keep] for k, v in det.items()}
                overlay = draw_detections(rgb, det, categories, args.score_threshold)
                write_image(output(name, 1), overlay)
                raw_h, raw_w = loaded[i][1]["raw_size"]
                sx, sy = rgb.shape[1] / raw_w, rgb.shape[0] / raw_h
                boxes = det["boxes"] / torch.tensor([sx, sy, sx, sy])
                atomic_write_json(output(name, 2), [
                    {"image_id": image_ids[name], "category_id": int(category_ids[int(label)]),
                     "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
                     "score": round(float(score), 5)}
                    for (x0, y0, x1, y1), label, score in zip(boxes.tolist(), det["labels"],
                                                              det["scores"])])
            logger.update()
    logger.close()
    print(f"{len(names) - len(todo)} already done, {len(todo)} processed: {args.output_dir}")
    if args.detect:
        results = []
        for name in names:
            results += read_json(output(name, 2), "detections")
        atomic_write_json(os.path.join(args.output_dir, "detections.json"), results)
        print(f"{len(results)} detections: {os.path.join(args.output_dir, 'detections.json')}")
    return 0


def outputs_of(name, detect):
    """What inference writes for RAW file `name`, relative to --output_dir: the enhanced PNG and,
    with --detect, the overlay and the image's detections."""
    stem = os.path.splitext(name)[0]
    return [stem + ".png"] + ([stem + "_detections.png", os.path.join(PARTIAL_DIR, stem + ".json")]
                              if detect else [])


def _image_ids(annotation, names):
    """File name -> image id: from the annotation file when given, else the name's stem."""
    ids = {name: os.path.splitext(name)[0] for name in names}
    if annotation:
        by_file = {os.path.basename(i["file_name"]): i["id"]
                   for i in load_coco_json(annotation)["images"]}
        ids.update({name: by_file[name] for name in names if name in by_file})
    return ids


if __name__ == "__main__":
    run_main(main)
