"""The parts of bench/bench_genisp.py: batching, GenISP's share beside the frozen detector, the RAW
cache and peak memory."""
import json
import os
import subprocess
import sys
import tempfile
import time
from copy import deepcopy

import numpy as np
import torch
from torch import nn

from bench.timing import timed
from genisp.model import GenISP, GenISPDetector
from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.toolkit.runinfo import write_run_metadata
from torch_utils_lib.toolkit.tables import markdown_table


# ---------------------------------------------------------------- a per-image GenISP (baseline)

class _Diagonalize(nn.Module):
    def forward(self, x):
        return torch.diag_embed(x)


class PerImageGenISP(nn.Module):
    """A published GenISP reproduction that loops over the images of a batch, for timing only."""

    def __init__(self):
        super().__init__()
        from torchvision.transforms import Resize
        image_to_parameter = nn.Sequential(
            nn.Conv2d(3, 16, 7, padding=3), nn.LeakyReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.LeakyReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 128, 3, padding=1), nn.LeakyReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.conv_wb = nn.Sequential(Resize((256, 256), antialias=True), deepcopy(image_to_parameter),
                                     nn.Linear(128, 3), _Diagonalize())
        self.conv_cc = nn.Sequential(Resize((256, 256), antialias=True), deepcopy(image_to_parameter),
                                     nn.Linear(128, 9), nn.Unflatten(1, (3, 3)))
        self.shallow_conv_net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.InstanceNorm2d(16), nn.LeakyReLU(),
            nn.Conv2d(16, 64, 3, padding=1), nn.InstanceNorm2d(64), nn.LeakyReLU(),
            nn.Conv2d(64, 3, 1))

    def forward(self, batch):
        output = []
        for image in batch:
            wb = self.conv_wb(image)
            image = torch.matmul(image.permute(0, 2, 3, 1), wb).permute(0, 3, 1, 2)
            cc = self.conv_cc(image)
            image = torch.matmul(image.permute(0, 2, 3, 1), cc).permute(0, 3, 1, 2)
            output.append(self.shallow_conv_net(image).squeeze(0))
        return output


def bench_batched(device, batch, size, repeats):
    torch.manual_seed(0)
    ours, loop = GenISP().to(device), PerImageGenISP().to(device)
    h, w = size
    images = torch.rand(batch, 3, h, w, device=device)

    def step_ours():
        ours.zero_grad(set_to_none=True)
        ours(images).sum().backward()

    def step_loop():
        loop.zero_grad(set_to_none=True)
        sum(o.sum() for o in loop([img[None] for img in images])).backward()

    t_loop, t_ours = timed([step_loop, step_ours], repeats)
    return {"batch": batch, "size": list(size), "loop_s": t_loop,
            "batched_s": t_ours, "speedup": t_loop / t_ours}


def _frozen_retinanet(device, size):
    from torch_utils_lib.models.detectors import build_detector
    detector = build_detector("retinanet_resnet50_fpn_v2", 91, "none", min_size=size, max_size=size)
    return detector


def bench_share(device, repeats, size=512, batch=2):
    torch.manual_seed(0)
    model = GenISPDetector(GenISP(), _frozen_retinanet(device, size)).to(device).train()
    loop = PerImageGenISP().to(device)
    images = torch.rand(batch, 3, size, size, device=device)
    targets = [{"boxes": torch.tensor([[40.0, 60.0, 200.0, 300.0]], device=device),
                "labels": torch.tensor([1], device=device)} for _ in range(batch)]

    def detector_step():
        x = images.clone().requires_grad_(True)  # as GenISP's output: gradients flow back to it
        losses = model.detector(list(x), targets)
        sum(losses.values()).backward()

    def genisp_step():
        model.genisp.zero_grad(set_to_none=True)
        model.genisp(images).sum().backward()

    def loop_step():
        loop.zero_grad(set_to_none=True)
        sum(o.sum() for o in loop([img[None] for img in images])).backward()

    t_detector, t_genisp, t_loop = timed([detector_step, genisp_step, loop_step], repeats)
    return {"batch": batch, "size": size, "detector_fwd_bwd_s": t_detector,
            "genisp_fwd_bwd_s": t_genisp, "loop_fwd_bwd_s": t_loop,
            "genisp_share": t_genisp / t_detector, "loop_share": t_loop / t_detector}


def bench_cache(count, raw_size, resize, seed=0):
    from dataset.dng import write_dng
    from genisp.raw import RawLoader
    rng = np.random.default_rng(seed)
    h, w = raw_size
    xyz_to_cam = np.array([[0.902, -0.289, -0.0715], [-0.4535, 1.2436, 0.2348],
                           [-0.0934, 0.1919, 0.7086]])
    with tempfile.TemporaryDirectory(prefix="bench_genisp_") as folder:
        paths = []
        for k in range(count):
            bayer = (600 + rng.gamma(2.0, 60.0, (h, w))).clip(0, 15520).astype(np.uint16)
            path = os.path.join(folder, f"{k:03d}.dng")
            write_dng(path, bayer, "RGGB", 600, 15520, xyz_to_cam, [0.5, 1.0, 0.7])
            paths.append(path)
        cache = os.path.join(folder, "cache")

        def epoch(loader):
            start = time.perf_counter()
            for path in paths:
                loader(path)
            return time.perf_counter() - start

        uncached = epoch(RawLoader(None, resize))
        first = epoch(RawLoader(cache, resize))                  # decodes and fills the cache
        cached = _epoch_in_new_process(paths, cache, resize)     # the first epoch of a new run
        loader = RawLoader(cache, resize)
        epoch(loader)
        cached_same_process = epoch(loader)                      # later epochs of one run
    return {"files": count, "raw_size": list(raw_size), "resize": list(resize),
            "uncached_epoch_s": uncached, "first_cached_epoch_s": first,
            "cached_epoch_new_process_s": cached, "cached_epoch_s": cached_same_process,
            "speedup": uncached / cached_same_process, "speedup_new_process": uncached / cached}


def _epoch_in_new_process(paths, cache, resize):
    """Seconds a fresh Python process takes for one cached epoch (its imports not counted)."""
    code = ("import sys, time, json; sys.path.insert(0, sys.argv[1]); "
            "from genisp.raw import RawLoader; paths, cache, resize = json.loads(sys.argv[2]); "
            "loader = RawLoader(cache, resize); start = time.perf_counter(); "
            "[loader(p) for p in paths]; print(time.perf_counter() - start)")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code, repo, json.dumps([paths, cache, resize])],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def bench_memory(device, batch=8, size=(800, 1333)):
    from torch_utils_lib.runtime.devices import autocast
    from torch_utils_lib.engine.loop import optimizer_step
    results = {}
    for amp in (False, True):
        torch.manual_seed(0)
        model = GenISPDetector(GenISP(), _frozen_retinanet(device, 800)).to(device).train()
        images = [torch.rand(3, *size, device=device) for _ in range(batch)]
        targets = [{"boxes": torch.tensor([[100.0, 100.0, 500.0, 400.0]], device=device),
                    "labels": torch.tensor([1], device=device)} for _ in range(batch)]
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        optimizer = torch.optim.Adam(model.genisp.parameters(), lr=1e-2)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(2):
            with autocast(device, amp):
                loss = sum(model(images, targets).values())
            optimizer_step(loss, optimizer, scaler)
        torch.cuda.synchronize(device)
        results["amp" if amp else "fp32"] = {
            "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30,
            "step_s": (time.perf_counter() - start) / 2}
        del model, images, optimizer
    return results


def run(args):
    """The benchmark of the parsed `args`."""
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    results = {}
    rows = []
    if "batched" in args.parts:
        for device in devices:
            r = results[f"batched_{device.type}"] = bench_batched(device, args.batch, args.size,
                                                                  args.repeats)
            goal = ">= 3x" if device.type == "cuda" else "(no goal on CPU)"
            rows.append((f"batched vs per-image loop, {device.type}, {args.batch}x{args.size[0]}x"
                         f"{args.size[1]}", f"{r['loop_s']:.3f} s / {r['batched_s']:.3f} s",
                         f"{r['speedup']:.2f}x", goal))
    if "share" in args.parts:
        for device in devices:
            r = results[f"share_{device.type}"] = bench_share(device, args.repeats)
            rows.append((f"GenISP / frozen RetinaNet fwd+bwd, {device.type}, 2x512x512",
                         f"{r['genisp_fwd_bwd_s']:.3f} s / {r['detector_fwd_bwd_s']:.3f} s",
                         f"{100 * r['genisp_share']:.1f}% (per-image loop {100 * r['loop_share']:.1f}%)",
                         "<= 15%"))
    if "cache" in args.parts:
        r = results["cache"] = bench_cache(args.raw_files, tuple(args.raw_size), (1333, 800))
        rows.append((f"RAW epoch uncached / cached, {args.raw_files} files "
                     f"{args.raw_size[1]}x{args.raw_size[0]}",
                     f"{r['uncached_epoch_s']:.3f} s / {r['cached_epoch_s']:.3f} s",
                     f"{r['speedup']:.1f}x (new process {r['speedup_new_process']:.1f}x)",
                     ">= 15x both"))
    if "memory" in args.parts and torch.cuda.is_available():
        r = results["memory_cuda"] = bench_memory(torch.device("cuda"))
        for mode in ("fp32", "amp"):
            rows.append((f"peak GPU memory, training step 8x1333x800, {mode}",
                         f"{r[mode]['step_s']:.3f} s/step", f"{r[mode]['peak_gib']:.2f} GiB", ""))
    elif "memory" in args.parts:
        results["memory_cuda"] = "skipped: no CUDA device"
        rows.append(("peak GPU memory at 1333x800, batch 8", "-", "skipped (no CUDA)", ""))
    print(markdown_table({part: {"times": times, "result": result, "goal": goal}
                          for part, times, result, goal in rows}, first_column="part"))
    atomic_write_json(args.output, results)
    write_run_metadata(os.path.dirname(args.output), args, filename="genisp_run.json",
                       torch_threads=torch.get_num_threads())
    print(f"results: {args.output}")
    return 0
