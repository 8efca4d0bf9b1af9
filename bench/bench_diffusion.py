"""Benchmark the diffusion restorer: DDIM-50 vs DDPM-1000, and training throughput.

1. Sampling: the same trained model restores the same held-out images with DDIM (--ddim_steps,
   eta 0) and with DDPM ancestral sampling over all timesteps; prints the speed ratio and the PSNR
   of each against normal light. Without --weight_path a small model is trained first on the
   sample set (a few minutes on CPU).
2. Training: images/s and peak memory of training steps at --train_size for the default UNet
   (on CUDA with and without AMP; on CPU, peak memory is the process's peak resident set size).
Ratios are measured within one run: the machine may be shared, absolute timings are noisy.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import time

from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_images, sample_low_light
from torch_utils_lib.toolkit.tables import markdown_table


def build_parser():
    from torch_utils_lib.toolkit.cli import ArgumentParser, add_common_args, non_negative_int, positive_int
    p = ArgumentParser(
        example='python bench/bench_diffusion.py --images 2 --train_epochs 20',
        description=__doc__,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weight_path", default=None,
                   help="trained diffusion checkpoint (default: train a small one first)")
    p.add_argument("--input_image_dir", default=sample_images("val"), help="normal light")
    p.add_argument("--conditional_image_dir", default=sample_low_light("val", "gamma_noise"),
                   help="low light")
    p.add_argument("--images", type=positive_int, default=4, help="held-out images to restore")
    p.add_argument("--crop", type=non_negative_int, default=64, help="center crop of each image (0 = full)")
    p.add_argument("--ddim_steps", type=positive_int, default=50)
    p.add_argument("--train_epochs", type=positive_int, default=150,
                   help="epochs of the small model trained when --weight_path is not given")
    p.add_argument("--train_size", type=positive_int, default=128, help="crop size of the throughput test")
    p.add_argument("--train_batch", type=positive_int, default=8)
    p.add_argument("--train_iters", type=positive_int, default=5, help="timed training steps (after 1 warm-up)")
    p.add_argument("--skip_sampling", action="store_true")
    p.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "bench", "diffusion"))
    add_common_args(p, workers=False, amp=False)
    return p


def train_small_model(output_dir, device, seed):
    """A 0.3 M-parameter UNet on 16x16 crops of the sample pairs (+4 dB PSNR after 150 epochs)."""
    checkpoint_dir = os.path.join(output_dir, "model")
    args = ["--checkpoint_dir", checkpoint_dir, "--image_size", "16", "--batch_size", "32",
            "--dim", "8", "--dim_mults", "1,2,4", "--lr", "3e-3", "--sample_every", "0",
            "--checkpoint_epoch", "0", "--device", device, "--seed", str(seed), "--resume"]
    return checkpoint_dir, args


def bench_sampling(args, device):
    import torch

    from diffusion_model.data import read_pair, resolve_names
    from diffusion_model.preview import center_crop
    from diffusion_model.restore import restore_batch
    from diffusion_model.training import load_diffusion
    from torch_utils_lib.evaluation.image_metrics import psnr, summarize

    weight_path = args.weight_path
    if weight_path is None:
        from diffusion_model import train
        checkpoint_dir, train_args = train_small_model(args.output_dir, args.device, args.seed)
        train.main(train_args + ["--epochs", str(args.train_epochs)])
        weight_path = os.path.join(checkpoint_dir, "last.pth")
    diffusion, _ = load_diffusion(weight_path, device)
    names = resolve_names([args.input_image_dir, args.conditional_image_dir])[:args.images]
    pairs = [read_pair(os.path.join(args.input_image_dir, n), os.path.join(args.conditional_image_dir, n))
             for n in names]
    if args.crop:
        pairs = [(center_crop(t, args.crop), center_crop(c, args.crop)) for t, c in pairs]
    if len({t.shape for t, _ in pairs}) > 1:
        raise UserError(f"{args.input_image_dir}: images differ in size; use --crop")
    targets, conds = [t for t, _ in pairs], [c for _, c in pairs]
    rows = {"low light (input)": {"psnr": summarize([psnr(c, t) for t, c in pairs])["mean"],
                                  "seconds": None}}
    for label, sampler, steps in ((f"DDIM-{args.ddim_steps}", "ddim", args.ddim_steps),
                                  (f"DDPM-{diffusion.timesteps}", "ddpm", diffusion.timesteps)):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = restore_batch(diffusion, conds, names, device, sampler, steps, 0.0, args.seed)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rows[label] = {"psnr": summarize([psnr(o, t) for o, t in zip(out, targets)])["mean"],
                       "seconds": time.perf_counter() - start}
    ddim, ddpm = rows[f"DDIM-{args.ddim_steps}"], rows[f"DDPM-{diffusion.timesteps}"]
    result = {"weight_path": weight_path, "images": names, "image_shape": list(targets[0].shape),
              "rows": rows, "speedup_ddim_over_ddpm": ddpm["seconds"] / ddim["seconds"],
              "psnr_ddim_minus_ddpm": ddim["psnr"] - ddpm["psnr"]}
    print(f"\nsampling: {len(names)} held-out images, {targets[0].shape[1]}x{targets[0].shape[0]}, on {device}")
    print(markdown_table({label: {"seconds": row["seconds"], "PSNR (dB)": row["psnr"]}
                          for label, row in rows.items()}, first_column="sampler",
                         formats={"seconds": ".2f", "PSNR (dB)": ".2f"}))
    print(f"DDIM is {result['speedup_ddim_over_ddpm']:.1f}x faster; PSNR DDIM - DDPM = "
          f"{result['psnr_ddim_minus_ddpm']:+.2f} dB")
    return result


def bench_training(args, device):
    """Images/s and peak memory of default-UNet training steps (CUDA: with and without AMP)."""
    import resource

    import torch

    from diffusion_model.model import ConditionalDiffusion, UNet
    from torch_utils_lib.runtime.devices import autocast
    results = {}
    for amp in ((False, True) if device.type == "cuda" else (False,)):
        torch.manual_seed(args.seed)
        model = ConditionalDiffusion(UNet()).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler("cuda") if amp else None
        x0 = torch.rand(args.train_batch, 3, args.train_size, args.train_size, device=device) * 2 - 1
        cond = x0 * 0.2 - 0.7
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = 0.0
        for step in range(args.train_iters + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with autocast(device, amp):
                loss = model(x0, cond)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step > 0:  # the first step allocates and autotunes
                seconds += time.perf_counter() - start
        if device.type == "cuda":
            peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max allocated"
        else:
            peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
        results["amp" if amp else "fp32"] = {
            "images_per_second": args.train_batch * args.train_iters / seconds,
            "peak_memory_mib": peak, "memory_kind": kind}
        del model, optimizer
    parameters = sum(p.numel() for p in UNet().parameters())
    print(f"\ntraining: default UNet ({parameters / 1e6:.2f} M parameters), batch {args.train_batch} "
          f"of {args.train_size}x{args.train_size}, on {device}")
    print(markdown_table({label: {"images/s": row["images_per_second"],
                                  "peak MiB": row["peak_memory_mib"],
                                  "memory measured as": row["memory_kind"]}
                          for label, row in results.items()}, first_column="precision",
                         formats={"images/s": ".2f", "peak MiB": ".0f"}))
    if "amp" in results:
        print(f"AMP speed-up: {results['amp']['images_per_second'] / results['fp32']['images_per_second']:.2f}x")
    return {"parameters": parameters, **results}


def main(argv=None):
    args = build_parser().parse_args(argv)
    for flag in ("images", "ddim_steps", "train_size", "train_batch", "train_iters", "train_epochs"):
        if getattr(args, flag) <= 0:
            raise UserError(f"--{flag} {getattr(args, flag)}: must be positive")
    from torch_utils_lib.toolkit.atomic_io import atomic_write_json
    from torch_utils_lib.runtime.devices import seed_everything
    from torch_utils_lib.runtime.distributed import init_distributed
    from torch_utils_lib.toolkit.runinfo import write_run_metadata
    device = init_distributed(args.device).device
    seed_everything(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    write_run_metadata(args.output_dir, args)
    results = {"device": str(device)}
    if not args.skip_sampling:
        results["sampling"] = bench_sampling(args, device)
    results["training"] = bench_training(args, device)
    atomic_write_json(os.path.join(args.output_dir, "bench_diffusion.json"), results)
    print(f"\nresults: {os.path.join(args.output_dir, 'bench_diffusion.json')}")


if __name__ == "__main__":
    run_main(main)
