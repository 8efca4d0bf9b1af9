"""Synthesize a low-light copy of an image set (and its COCO annotations).

  python dataset/data_preprocessing.py --input_dir data/sample/train \\
      --annotation data/sample/annotations/instances_train.json --method physics --save_raw
  python dataset/data_preprocessing.py --sample --method physics --save_raw   # the bundled set

Methods: gamma_noise (the original project's: random gamma, Gaussian noise) and physics (unprocess to RAW,
Poisson-Gaussian sensor noise, process back); see dataset/gamma_noise.py and dataset/physics.py.
--level EV fixes the darkness at EV stops (exposure 2**EV times darker) for either method.
Writes <output_dir>/<same file names>, synthesis.json (per-image parameters, PSNR/SSIM summary),
annotations.json with --annotation, raw/<stem>.dng (+ raw/annotations.json) with --save_raw, and
the run's arguments and versions in run.json (--run_json).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from dataset.synthesis import (METRICS, check_level, print_summary, run_synthesis, settings_from_args,
                               write_preview)
from dataset.synthesis_methods import SYNTHESIS_METHODS
from torch_utils_lib.toolkit.cli import (ArgumentParser, int_in_range, non_negative_float,
                                         positive_float)
from torch_utils_lib.toolkit.flag_choices import WORKERS_RANGE
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_annotation, sample_images, sample_low_light
from torch_utils_lib.toolkit.runinfo import write_run_metadata


def build_parser():
    p = ArgumentParser(
        example='python dataset/data_preprocessing.py --input_dir data/sample/val --annotation data/sample/annotations/instances_val.json --output_dir runs/synth/gamma_noise',
        description=__doc__.split("\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input_dir", default=None,
                   help=f"normal-light images (default: {os.path.relpath(sample_images('train'))})")
    p.add_argument("--output_dir", default=None, help="default: <input_dir>_augmented")
    p.add_argument("--annotation", default=None,
                   help="COCO annotation file of the input; written as <output_dir>/annotations.json")
    p.add_argument("--method", choices=list(SYNTHESIS_METHODS), default="gamma_noise",
                   help="; ".join(f"{m.name}: {m.description}" for m in SYNTHESIS_METHODS.values()))
    for method in SYNTHESIS_METHODS.values():
        for flag in method.range_flags:
            p.add_argument(f"--{flag.name}", nargs=2, default=list(flag.default),
                           type=positive_float if flag.positive else non_negative_float,
                           metavar=("LOW", "HIGH"), help=f"{method.name}: {flag.help}")
    p.add_argument("--level", type=non_negative_float, default=None, metavar="EV",
                   help="a fixed darkness level in stops, exposure 2**EV times darker: physics "
                        "--ratio 2**EV; gamma_noise gamma 1 + EV with its noise (dataset/gamma_noise.py); "
                        "at most 13.81 (physics) or 20.01 (gamma_noise), where only noise is left")
    p.add_argument("--save_raw", action="store_true",
                   help="physics: also write the noisy RAW as <output_dir>/raw/<stem>.dng")
    p.add_argument("--seed", type=int, default=0, help="random seed (with the file name, fixes "
                   "each image's parameters and noise)")
    p.add_argument("--workers", type=int_in_range(1, WORKERS_RANGE[1]), default=1, help="parallel processes")
    p.add_argument("--overwrite", action="store_true", help="redo images that already exist")
    p.add_argument("--run_json", default=None,
                   help="where to record arguments, versions and git commit "
                        "(default: <output_dir>/run.json)")
    p.add_argument("--metrics", choices=METRICS, default="psnr_ssim",
                   help="quality against the input recorded per image: PSNR on RGB, SSIM on "
                        "luma at Wang et al.'s scale")
    p.add_argument("--preview", default=None, metavar="PNG",
                   help="also save a montage of the first images: input, low-light, brightened "
                        "(keep it outside --output_dir, which should hold only the data set)")
    p.add_argument("--sample", action="store_true",
                   help="(re)make the bundled low-light sample set: both splits of data/sample "
                        "into data/sample/low_light/<method>/<split> with annotations; run "
                        "metadata goes to runs/synthesis/ so the committed files stay stable")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def synthesize(args, input_dir, output_dir, annotation, run_json):
    """One synthesis run with its run metadata, table and preview; returns the failure count."""
    settings = settings_from_args(args)
    summary = run_synthesis(input_dir, output_dir, settings, annotation=annotation,
                            workers=args.workers, overwrite=args.overwrite,
                            progress=not args.quiet, metrics=args.metrics)
    write_run_metadata(os.path.dirname(os.path.abspath(run_json)), args,
                       filename=os.path.basename(run_json), synthesis_dir=output_dir)
    print(f"{summary['count']} low-light images ({settings['method']}) in {output_dir}")
    if args.preview:
        done = [record["file_name"] for record in summary["images"]]
        print(f"preview: {write_preview(args.preview, input_dir, output_dir, done)}")
    print_summary(summary)
    return len(summary["failed"])


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.level is not None:
        check_level(args.method, args.level)
    if args.save_raw and not SYNTHESIS_METHODS[args.method].writes_raw:
        raw_methods = [m.name for m in SYNTHESIS_METHODS.values() if m.writes_raw]
        raise UserError(f"--save_raw: only the {' or '.join(raw_methods)} method makes RAW data "
                        f"(add --method {raw_methods[0]})")
    range_flags = [f for m in SYNTHESIS_METHODS.values() for f in m.range_flags]
    if args.level is not None and any(getattr(args, f.name) != list(f.default) for f in range_flags):
        raise UserError(f"--level {args.level:g}: sets the ratio (physics) or gamma and noise "
                        f"(gamma_noise) itself; drop {', '.join('--' + f.name for f in range_flags)}")
    if args.sample:
        if args.input_dir or args.output_dir or args.annotation:
            raise UserError("--sample: makes the bundled set; drop --input_dir, --output_dir "
                            "and --annotation")
        for split in ("train", "val"):
            failed = synthesize(args, sample_images(split), sample_low_light(split, args.method),
                                sample_annotation(split),
                                os.path.join(RUNS_DIR, "synthesis", f"{args.method}_{split}.json"))
            if failed:
                raise UserError(f"{sample_images(split)}: {failed} image(s) could not be synthesized")
        return 0
    input_dir = args.input_dir or sample_images("train")
    input_dir = input_dir.rstrip("/\\") or input_dir
    output_dir = args.output_dir or input_dir + "_augmented"
    check_outputs_apart({"--input_dir": input_dir, "--annotation": args.annotation},
                        {"--output_dir": output_dir, "--run_json": args.run_json,
                         "--preview": args.preview})
    failed = synthesize(args, input_dir, output_dir, args.annotation,
                        args.run_json or os.path.join(output_dir, "run.json"))
    if failed:
        raise UserError(f"{input_dir}: {failed} image(s) could not be synthesized (listed above "
                        "and in synthesis.json)")
    return 0


if __name__ == "__main__":
    run_main(main)
