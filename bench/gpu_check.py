"""Exercise every CUDA path once and print one table (under 5 minutes on one GPU).

  maskrcnn train   a training step of the light Mask R-CNN, fp32 and AMP: loss, s/step, peak memory
  diffusion train  a training step of the conditional diffusion UNet, fp32 and AMP
  genisp train     a GenISP step through a frozen RetinaNet R50-FPN v2 (COCO weights when cached,
                   else randomly initialised: the speed and memory are the same), fp32 and AMP
  evaluation       Mask R-CNN inference through engine.predict and DDIM sampling, fp32 and AMP
                   (COCO AP of the bundled sample set too when pycocotools is installed)
  study step       mask_rcnn/evaluate.py as the study runs it (its own process: Python start,
                   imports, CUDA initialisation, model load, annotation parse, inference, COCOeval)
                   on generated images, AMP on and off, on 1 image and on --study_images: the
                   fixed cost per step and the seconds per image
  genisp batched   batched GenISP against a per-image loop, forward + backward (speed ratio)
  ddp              two processes: one all_reduce and one DistributedDataParallel step (NCCL on
                   CUDA with two or more GPUs, gloo with --device cpu)

Peak memory is torch.cuda.max_memory_allocated. Without CUDA the script says so in one line and
exits 0; `--device cpu --smoke` runs the same code paths on CPU with tiny sizes (the test does).
Imports neither pycocotools nor rawpy (the COCO AP row needs pycocotools; the README's
"Benchmarks" says how to run this on a GPU machine's own Python). Writes gpu_check.json and run.json
to --output_dir when given. Exit status 1 when a check fails.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.toolkit.cli import ArgumentParser
from torch_utils_lib.toolkit.errors import run_main


def build_parser():
    parser = ArgumentParser(
        example='python bench/gpu_check.py --device cpu --smoke',
        description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and a light detector: the same code paths in seconds")
    parser.add_argument("--output_dir", default=None, help="also write gpu_check.json here")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from bench.gpu_check_steps import run  # loads torch: after parsing, so --help is instant
    return run(args)


if __name__ == "__main__":
    run_main(main)
