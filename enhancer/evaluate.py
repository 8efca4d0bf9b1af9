"""Score an enhancer: a detector's AP on the low-light and the enhanced images (the two-stage
table, with normal light as the reference where given), and PSNR/SSIM against normal light.

The enhanced images are written to OUTPUT_DIR/enhanced (the annotation's file names) and scored
there. The detector is the one the checkpoint was trained with: the fine-tuned one of a `joint`
checkpoint, the frozen one of `frozen_detector`; --detector gives it for zero_dce (or overrides
a frozen one).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.data.categories import load_category_map
from torch_utils_lib.toolkit.cli import ArgumentParser, add_common_args, int_in_range
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE, COCO_BACKENDS
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_file
from torch_utils_lib.evaluation.image_quality import quality_table, score_sets, two_stage_table
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_annotation, sample_images, sample_low_light
from torch_utils_lib.toolkit.runinfo import write_run_metadata

DEFAULT_WEIGHTS = os.path.join(RUNS_DIR, "enhancer", "last.pth")


def build_parser():
    p = ArgumentParser(
        example='python enhancer/evaluate.py --weight_path runs/enhancer/zero_dce/last.pth --detector runs/mask_rcnn/sample/last.pth',
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weight_path", default=DEFAULT_WEIGHTS, help="checkpoint written by train.py")
    p.add_argument("--low_light_image_dir", "--low_light_img_dir", dest="low_light_image_dir",
                   default=sample_low_light("val", "gamma_noise"), help="low-light images")
    p.add_argument("--normal_light_image_dir", "--normal_light_img_dir",
                   dest="normal_light_image_dir", default=sample_images("val"),
                   help="their normal-light pairs: an AP row and PSNR/SSIM ('' when there are none)")
    p.add_argument("--annotation", default=sample_annotation("val"), help="COCO annotation")
    p.add_argument("--detector", default=None,
                   help="mask_rcnn/train.py checkpoint or torchvision name (default: the "
                        "checkpoint's; required for zero_dce)")
    p.add_argument("--category_map", default=None, metavar="FILE",
                   help="JSON {dataset class name: detector class name}")
    p.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "enhancer", "eval"),
                   help="enhanced/, metrics.json")
    p.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=4, help="detector batch size")
    p.add_argument("--coco_backend", default="pycocotools", choices=COCO_BACKENDS)
    add_common_args(p, seed=False)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    require_file(args.weight_path, "checkpoint", "train one with enhancer/train.py")
    # torch is imported here, after parsing: --help and flag errors stay instant
    import torch

    from enhancer.data import image_names
    from enhancer.models import enhance_folder, load_enhancer
    from mask_rcnn.evaluation import evaluate_model_on_sets
    from torch_utils_lib.runtime.devices import resolve_amp
    from torch_utils_lib.runtime.distributed import init_distributed
    from torch_utils_lib.models.frozen_detector import load_frozen_detector

    enhanced_dir = os.path.join(args.output_dir, "enhanced")
    names = image_names(args.low_light_image_dir, args.annotation)
    reads = {"--weight_path": args.weight_path, "--low_light_image_dir": args.low_light_image_dir,
             "--normal_light_image_dir": args.normal_light_image_dir,
             "--annotation": args.annotation, "--detector": args.detector,
             "--category_map": args.category_map}
    check_outputs_apart(reads, {"--output_dir": args.output_dir})
    device = init_distributed(args.device).device
    amp = resolve_amp(args.amp, device)
    enhancer, detector, config = load_enhancer(args.weight_path, device)
    if detector is not None and args.detector:
        raise UserError(f"--detector {args.detector}: {args.weight_path} is a joint checkpoint "
                        f"and is scored with its own detector")
    if detector is not None:
        detector_config, detector_name = config["detector_config"], "the joint detector"
    else:
        spec = args.detector or config.get("detector")
        if not spec:
            raise UserError(f"{args.weight_path}: a zero_dce checkpoint; pass --detector")
        detector, detector_config = load_frozen_detector(spec, config.get("detector_weights", "coco"),
                                                         device)
        detector_name = spec
    os.makedirs(args.output_dir, exist_ok=True)
    write_run_metadata(args.output_dir, args, config=config)
    enhance_folder(enhancer, args.low_light_image_dir, names, enhanced_dir, device, amp)

    sets = {"low_light": args.low_light_image_dir, "enhanced": enhanced_dir}
    if args.normal_light_image_dir:
        sets = {"normal": args.normal_light_image_dir, **sets}
    results = {"images": len(names), "config": config}
    with torch.no_grad():
        ap = evaluate_model_on_sets(detector, detector_config, args.annotation, sets, device,
                                    args.batch_size, args.workers, args.coco_backend, amp=amp,
                                    category_map=load_category_map(args.category_map))
    print(f"two-stage: {detector_name} on each image set")
    print(two_stage_table(ap))
    results["two_stage_ap"] = ap
    if args.normal_light_image_dir:
        summary, per_image = score_sets(names, args.normal_light_image_dir,
                                        {"low_light": args.low_light_image_dir,
                                         "enhanced": enhanced_dir})
        print(f"\nimage quality against {args.normal_light_image_dir} ({len(names)} images)")
        print(quality_table(summary))
        results.update(quality=summary, per_image=per_image)
    atomic_write_json(os.path.join(args.output_dir, "metrics.json"), results)
    print(f"metrics: {os.path.join(args.output_dir, 'metrics.json')}")
    return 0


if __name__ == "__main__":
    run_main(main)
