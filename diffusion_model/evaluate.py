"""Score restored images: PSNR/SSIM against normal light, and the two-stage Mask R-CNN AP table.

PSNR and SSIM (scikit-image's definitions) are reported as mean and per image for the restored
images and, as the baseline, for the low-light inputs; the "GT-mean" columns are the variant the
low-light literature reports (each image scaled to the reference's mean brightness first).
With --maskrcnn_weight_path, Mask R-CNN's bbox/segm AP on the normal-light, low-light and
restored images (--coco_annotation) gives the two-stage table: how much AP restoration wins back.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.evaluation.metrics import IOU_TYPES, SUMMARY_STATS
from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.toolkit.cli import ArgumentParser, add_common_args, int_in_range
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE, COCO_BACKENDS
from torch_utils_lib.toolkit.errors import run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_dir, require_file
from torch_utils_lib.evaluation.image_quality import quality_table, score_sets, two_stage_table
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_annotation, sample_images, sample_low_light
from torch_utils_lib.toolkit.runinfo import write_run_metadata

DEFAULT_RESTORED = os.path.join(RUNS_DIR, "diffusion", "restored", "val")


def build_parser():
    p = ArgumentParser(
        example='python diffusion_model/evaluate.py --restored_image_dir runs/diffusion/restored/val --maskrcnn_weight_path runs/mask_rcnn/sample/last.pth',
        description=__doc__,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--restored_image_dir", default=DEFAULT_RESTORED,
                   help="restored images (diffusion_model/inference.py --output_dir)")
    p.add_argument("--input_image_dir", default=sample_images("val"),
                   help="normal-light reference images")
    p.add_argument("--conditional_image_dir", "--conditional_img_dir", dest="conditional_image_dir",
                   default=sample_low_light("val", "gamma_noise"),
                   help="low-light inputs, scored as the baseline ('' to skip)")
    p.add_argument("--annotation", default=None,
                   help='{"filename": [...]} JSON or COCO json naming the images '
                        "(default: every file name present in all folders)")
    p.add_argument("--output_dir", default=None,
                   help="where metrics.json goes (default: RESTORED_IMAGE_DIR_eval)")
    p.add_argument("--maskrcnn_weight_path", default=None,
                   help="mask_rcnn/train.py checkpoint: adds the two-stage AP table")
    p.add_argument("--coco_annotation", default=sample_annotation("val"),
                   help="COCO instance annotations of these images, for the AP table")
    p.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=4, help="Mask R-CNN batch size")
    p.add_argument("--coco_backend", default="pycocotools", choices=COCO_BACKENDS,
                   help="COCO AP implementation of the two-stage table")
    add_common_args(p, seed=False)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported after parsing (they load torch): --help and flag errors stay instant
    from diffusion_model.data import resolve_names

    image_dirs = {"restored": args.restored_image_dir}
    if args.conditional_image_dir:
        image_dirs = {"low_light": args.conditional_image_dir, **image_dirs}
    default = os.path.abspath(args.restored_image_dir) == DEFAULT_RESTORED
    require_dir(args.restored_image_dir, "image directory",
                "restore first: python diffusion_model/inference.py" if default else "")
    if args.maskrcnn_weight_path:
        require_file(args.maskrcnn_weight_path, "checkpoint")
        require_file(args.coco_annotation, "annotation file")
    names = resolve_names([args.input_image_dir, *image_dirs.values()], args.annotation)
    output_dir = args.output_dir or args.restored_image_dir.rstrip("/\\") + "_eval"
    check_outputs_apart({"--input_image_dir": args.input_image_dir,
                         "--conditional_image_dir": args.conditional_image_dir,
                         "--restored_image_dir": args.restored_image_dir,
                         "--annotation": args.annotation, "--coco_annotation": args.coco_annotation,
                         "--maskrcnn_weight_path": args.maskrcnn_weight_path},
                        {"--output_dir": output_dir})

    summary, per_image = score_sets(names, args.input_image_dir, image_dirs)
    print(f"image quality against {args.input_image_dir} ({len(names)} images; "
          f"GT-mean: scaled to the reference's mean brightness first)")
    print(quality_table(summary))
    results = {"images": len(names), "quality": summary, "per_image": per_image}

    if args.maskrcnn_weight_path:
        # imported after parsing (they load torch): --help and flag errors stay instant
        import torch

        from mask_rcnn.evaluation import evaluate_image_sets
        from torch_utils_lib.runtime.devices import resolve_amp
        from torch_utils_lib.runtime.distributed import init_distributed
        device = init_distributed(args.device).device
        with torch.no_grad():
            ap = evaluate_image_sets(args.maskrcnn_weight_path, args.coco_annotation,
                                     {"normal": args.input_image_dir, **image_dirs}, device,
                                     args.batch_size, args.workers, args.coco_backend,
                                     amp=resolve_amp(args.amp, device))
        print(f"\ntwo-stage: Mask R-CNN ({args.maskrcnn_weight_path}) on each image set")
        print(two_stage_table(ap))
        results["two_stage_ap"] = ap
        # matplotlib: seconds to import, only where a figure is drawn
        from torch_utils_lib.plots.charts import plot_bars
        bars = {f"{iou} {stat}": {s: ap[s][iou][stat] for s in ap}
                for iou in IOU_TYPES for stat in SUMMARY_STATS if iou in ap["normal"]}
        plot_bars(bars, os.path.join(output_dir, "two_stage_ap.png"), title="Mask R-CNN AP")

    os.makedirs(output_dir, exist_ok=True)
    atomic_write_json(os.path.join(output_dir, "metrics.json"), results)
    write_run_metadata(output_dir, args)
    print(f"metrics: {os.path.join(output_dir, 'metrics.json')}")


if __name__ == "__main__":
    run_main(main)
