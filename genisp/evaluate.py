"""COCO AP of a frozen detector on a RAW split through three pipelines, in one table.

  genisp   our minimal pipeline (pack, average greens, camera -> XYZ) followed by trained GenISP
  minimal  the minimal pipeline alone (what GenISP starts from)
  rawpy    rawpy's default processing (LibRaw's demosaic, camera white balance off, sRGB)

Only the categories the annotations use count; when the split mixes cameras (file types, e.g.
RAW-NOD's .ARW and .NEF) each camera also gets its own rows. Writes results.json, results.md and
ap.png to --output_dir; finished pipelines are not run again (delete their detections to redo).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from genisp.sizes import RESIZE_RANGE
from torch_utils_lib.data.categories import load_category_map
from torch_utils_lib.toolkit.cli import ArgumentParser, add_common_args, int_in_range
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE, COCO_BACKENDS
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_file
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_raw
from torch_utils_lib.toolkit.runinfo import write_run_metadata

PIPELINE_CHOICES = ("genisp", "minimal", "rawpy")


def build_parser():
    parser = ArgumentParser(
        example='python genisp/evaluate.py --weight_path runs/genisp/last.pth --detector runs/mask_rcnn/sample/last.pth',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw_dir", default=sample_raw("val"), help="folder of RAW files")
    parser.add_argument("--annotation", default=None,
                        help="COCO boxes of the RAW files (default: <raw_dir>/annotations.json)")
    parser.add_argument("--weight_path", default=os.path.join(RUNS_DIR, "genisp", "last.pth"),
                        help="GenISP checkpoint from genisp/train.py")
    parser.add_argument("--detector", default=None,
                        help="frozen detector (default: the one GenISP was trained with)")
    parser.add_argument("--detector_weights", default=None,
                        help="weights of a named detector: 'coco' or a file (default: as trained)")
    parser.add_argument("--category_map", default=None, metavar="FILE",
                        help="JSON {dataset class name: detector class name}: overrides the built-in synonyms")
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINE_CHOICES),
                        choices=PIPELINE_CHOICES)
    parser.add_argument("--resize", type=int_in_range(*RESIZE_RANGE, off=0), nargs=2, default=None,
                        metavar=("LONG", "SHORT"),
                        help="fit images into LONG x SHORT (default: as trained; 0 0: packed size)")
    parser.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=8)
    parser.add_argument("--cache_dir", default=os.path.join(RUNS_DIR, "cache", "genisp_raw"),
                        help="cache of pre-processed RAW arrays ('none' to decode every time)")
    parser.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "genisp_eval"),
                        help="results.json/.md, ap.png and the detections of each pipeline")
    parser.add_argument("--coco_backend", default="pycocotools", choices=COCO_BACKENDS)
    add_common_args(parser, seed=False)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.annotation is None:
        args.annotation = os.path.join(args.raw_dir, "annotations.json")
    # imported after parsing (they load torch): --help and flag errors stay instant
    from genisp.detection import check_raw_inputs, load_genisp
    from genisp.evaluation import evaluate_pipelines, format_table, pipeline_settings
    from genisp.model import BoxDetector, GenISPDetector
    from torch_utils_lib.models.frozen_detector import load_frozen_detector
    from torch_utils_lib.runtime.devices import resolve_amp
    from torch_utils_lib.runtime.distributed import init_distributed

    check_outputs_apart({"--raw_dir": args.raw_dir, "--annotation": args.annotation,
                         "--weight_path": args.weight_path if "genisp" in args.pipelines else None,
                         "--detector": args.detector, "--detector_weights": args.detector_weights},
                        {"--output_dir": args.output_dir,
                         "--cache_dir": None if args.cache_dir.lower() == "none" else args.cache_dir})
    device = init_distributed(args.device).device
    amp = resolve_amp(args.amp, device)
    genisp, genisp_config = None, {}
    if "genisp" in args.pipelines:
        require_file(args.weight_path, "GenISP checkpoint",
                     "train one with genisp/train.py or pass --pipelines minimal rawpy")
        genisp, genisp_config = load_genisp(args.weight_path, device)
    detector_spec = args.detector or genisp_config.get("detector") or "retinanet_resnet50_fpn_v2"
    weights = args.detector_weights or genisp_config.get("detector_weights") or "coco"
    if args.resize is not None:
        resize = tuple(args.resize) if all(args.resize) else None
    elif genisp_config:  # as GenISP was trained
        resize = tuple(genisp_config["resize"]) if genisp_config.get("resize") else None
    else:
        resize = (1333, 800)
    detector, detector_config = load_frozen_detector(detector_spec, weights, device)
    check_raw_inputs(detector, args.raw_dir, args.annotation)
    cache_dir = None if args.cache_dir.lower() == "none" else args.cache_dir
    os.makedirs(args.output_dir, exist_ok=True)
    write_run_metadata(args.output_dir, args, detector=detector_spec, resize=resize)

    models = {"genisp": GenISPDetector(genisp, detector).to(device) if genisp else None,
              "minimal": BoxDetector(detector), "rawpy": BoxDetector(detector)}
    table = evaluate_pipelines(models, args.pipelines, args.raw_dir, args.annotation,
                               detector_config["categories"], cache_dir, resize, device, amp,
                               args.batch_size, args.workers, args.output_dir, args.coco_backend,
                               settings=pipeline_settings(args, genisp is not None, detector_spec,
                                                          weights),
                               category_map=load_category_map(args.category_map))
    print(format_table(table))
    return 0


if __name__ == "__main__":
    run_main(main)
