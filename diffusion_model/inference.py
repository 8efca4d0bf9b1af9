"""Restore low-light images at full resolution with a trained diffusion model (DDIM or DDPM).

Outputs keep the input file names, so --output_dir can be passed directly as
--low_light_image_dir to mask_rcnn/evaluate.py. Images already restored there are skipped (rerun
the same command to continue an interrupted run). With --input_image_dir, a comparison figure
(low light | restored | normal light) is saved beside the output folder.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.toolkit.atomic_io import atomic_write_json, read_json
from diffusion_model.sizes import SAMPLING_STEPS_RANGE
from torch_utils_lib.toolkit.cli import ArgumentParser, add_common_args, int_in_range, probability
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE, FIGURE_COUNT_RANGE
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_file, safe_join
from torch_utils_lib.toolkit.names import output_names
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_images, sample_low_light
from torch_utils_lib.toolkit.runinfo import write_run_metadata

DEFAULT_WEIGHTS = os.path.join(RUNS_DIR, "diffusion", "last.pth")
DEFAULT_OUTPUT = os.path.join(RUNS_DIR, "diffusion", "restored", "val")
SETTINGS_FILE = "restore_settings.json"


def build_parser():
    p = ArgumentParser(
        example='python diffusion_model/inference.py --weight_path runs/diffusion/last.pth --steps 2',
        description=__doc__,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--conditional_image_dir", "--conditional_img_dir", dest="conditional_image_dir",
                   default=sample_low_light("val", "gamma_noise"), help="low-light images to restore")
    p.add_argument("--input_image_dir", default=sample_images("val"),
                   help="normal-light images, only for the comparison figure ('' to skip it)")
    p.add_argument("--output_dir", "--output_image_dir", dest="output_dir", default=DEFAULT_OUTPUT,
                   help="where restored images go (same file names); the comparison figure "
                        "goes beside it as OUTPUT_DIR_comparison.png")
    p.add_argument("--annotation", default=None,
                   help='{"filename": [...]} JSON or COCO json naming the images (default: all)')
    p.add_argument("--weight_path", default=DEFAULT_WEIGHTS, help="checkpoint written by train.py")
    p.add_argument("--batch_size", type=int_in_range(*BATCH_SIZE_RANGE), default=4, help="images per batch (same-size images)")
    p.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")
    p.add_argument("--steps", type=int_in_range(*SAMPLING_STEPS_RANGE), default=50, help="DDIM steps (DDPM always uses all)")
    p.add_argument("--eta", type=probability, default=0.0,
                   help="DDIM noise: 0 deterministic, 1 as stochastic as DDPM")
    p.add_argument("--overwrite", action="store_true",
                   help="restore every image again instead of skipping those already written")
    p.add_argument("--count", "--figure_images", dest="count", type=int_in_range(*FIGURE_COUNT_RANGE), default=4,
                   help="rows of the comparison figure (0: no figure)")
    add_common_args(p, workers=False)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    require_file(args.weight_path, "checkpoint", "train one first: python diffusion_model/train.py"
                 if os.path.abspath(args.weight_path) == DEFAULT_WEIGHTS else "")

    # imported after parsing (they load torch): --help and flag errors stay instant
    from diffusion_model.data import resolve_names
    from diffusion_model.restore import restore_directory
    from diffusion_model.training import load_diffusion
    from torch_utils_lib.runtime.devices import resolve_amp, seed_everything
    from torch_utils_lib.runtime.distributed import init_distributed

    device = init_distributed(args.device).device
    amp = resolve_amp(args.amp, device)
    seed_everything(args.seed)
    names = resolve_names([args.conditional_image_dir], args.annotation)
    # outputs keep the input names: two that differ only in case are one file on macOS/Windows
    output_names(names, lambda name: [name], args.annotation or args.conditional_image_dir)
    figure = args.output_dir.rstrip("/\\") + "_comparison.png"
    # names may be absolute in an --annotation list: each target is checked, not only the folder
    check_outputs_apart(
        {"--conditional_image_dir": args.conditional_image_dir, "--input_image_dir": args.input_image_dir,
         "--annotation": args.annotation, "--weight_path": args.weight_path,
         "--annotation entry": [os.path.join(args.conditional_image_dir, n) for n in names]},
        {"--output_dir": args.output_dir,
         "--output_dir (with an --annotation entry)": [os.path.join(args.output_dir, n) for n in names],
         "--output_dir (its comparison figure)": figure if args.input_image_dir and args.count > 0 else None})
    if args.annotation:  # listed names stay inside their folders (read and written), as COCO's
        for name in names:
            safe_join(args.conditional_image_dir, name, args.annotation)
    diffusion, state = load_diffusion(args.weight_path, device)
    if args.sampler == "ddim" and not 1 <= args.steps <= diffusion.timesteps:
        raise UserError(f"--steps {args.steps}: must be between 1 and the model's "
                        f"{diffusion.timesteps} timesteps")

    # outputs made with other weights or settings must not be mixed with these ones
    settings = {"weight_path": os.path.abspath(args.weight_path), "epoch": state.get("epoch"),
                "sampler": args.sampler, "steps": args.steps if args.sampler == "ddim" else None,
                "eta": args.eta if args.sampler == "ddim" else None, "seed": args.seed}
    settings_path = os.path.join(args.output_dir, SETTINGS_FILE)
    if os.path.isfile(settings_path) and not args.overwrite:
        previous = read_json(settings_path, "restoration settings")
        if previous != settings:
            raise UserError(f"{settings_path}: {args.output_dir} holds restorations made with "
                            f"other settings ({previous}); pass --overwrite or another "
                            f"--output_dir")
    os.makedirs(args.output_dir, exist_ok=True)
    atomic_write_json(settings_path, settings)
    write_run_metadata(args.output_dir, args, filename="restore_run.json", settings=settings)

    stats = restore_directory(diffusion, args.conditional_image_dir, names, args.output_dir,
                              device, args.sampler, args.steps, args.eta, args.seed,
                              args.batch_size, amp, skip_existing=not args.overwrite)
    per_image = stats["seconds_per_image"]
    print(f"{'images':<10}{'restored':>10}{'skipped':>10}{'s/image':>10}")
    print(f"{len(names):<10}{stats['restored']:>10}{stats['skipped']:>10}"
          f"{(f'{per_image:.3f}' if per_image is not None else '-'):>10}")
    print(f"restored images: {args.output_dir}")

    if args.input_image_dir and args.count > 0:
        # loads torch and matplotlib: only with --preview
        from diffusion_model.preview import save_comparison
        save_comparison(figure, names[:args.count], args.conditional_image_dir,
                        args.output_dir, args.input_image_dir)
        print(f"comparison figure: {figure}")


if __name__ == "__main__":
    run_main(main)
