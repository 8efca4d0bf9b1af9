"""The checks of bench/gpu_check.py: each CUDA path once (fp32 and AMP), with its time and peak memory."""
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import torch

from bench.genisp_steps import bench_batched
from diffusion_model.model.diffusion import build_diffusion
from genisp.model import GenISP, GenISPDetector
from torch_utils_lib.evaluation.metrics import IOU_TYPES
from torch_utils_lib.models.detectors import (TORCHVISION_DETECTORS, build_detector,
                                              cached_weights_path)
from torch_utils_lib.runtime.devices import autocast
from torch_utils_lib.engine.loop import optimizer_step, predict
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.tables import markdown_table


GENISP_DETECTOR = "retinanet_resnet50_fpn_v2"


class Sizes:
    """Image sizes and batch sizes of a full check (on a GPU) or a smoke run."""

    def __init__(self, smoke):
        self.detector_size, self.detector_batch = (64, 2) if smoke else (512, 4)
        self.diffusion_size, self.diffusion_batch = (32, 2) if smoke else (128, 8)
        self.genisp_size, self.genisp_batch = (64, 2) if smoke else (800, 4)
        self.genisp_detector = "maskrcnn_resnet18_fpn" if smoke else GENISP_DETECTOR
        self.batched = (2, (32, 48)) if smoke else (8, (400, 600))
        self.unet = {"dim": 8, "dim_mults": [1, 2]} if smoke else {}  # {}: the default UNet
        self.ddim_steps = 1 if smoke else 10
        self.steps = 1 if smoke else 3  # training steps and inference batches; the fastest reported
        self.repeats = 1 if smoke else 3
        self.coco_images = 2 if smoke else None  # None: the whole sample val set
        self.study_images = 3 if smoke else 300  # generated 640x480 images of the study-step check
        self.study_size = (64, 64) if smoke else (800, 1333)  # its detector's min/max size


# ---------------------------------------------------------------- helpers

def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device):
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def precisions(device):
    """fp32 everywhere; AMP too where it exists (CUDA)."""
    return (False, True) if device.type == "cuda" else (False,)


def detection_targets(batch, size, device, masks=True):
    """One square object per image: boxes, labels and (optionally) masks."""
    targets = []
    for i in range(batch):
        x0, y0 = size // 8 + i, size // 6
        x1, y1 = size // 2 + i, size // 2
        target = {"boxes": torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32, device=device),
                  "labels": torch.tensor([1], device=device)}
        if masks:
            mask = torch.zeros(1, size, size, dtype=torch.uint8, device=device)
            mask[:, y0:y1, x0:x1] = 1
            target["masks"] = mask
        targets.append(target)
    return targets


def train_steps(device, amp, build, loss_of, steps):
    """`steps` optimizer steps of the model `build()` makes, `loss_of(model)` giving its loss.

    Returns (last loss, seconds of the fastest step after the first, peak MiB or None).
    """
    torch.manual_seed(0)
    model = build().to(device).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3,
                                momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    reset_peak(device)
    seconds = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        with autocast(device, amp):
            loss = loss_of(model)
        optimizer_step(loss, optimizer, scaler, max_grad_norm=10.0)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    if not math.isfinite(loss.item()):
        raise RuntimeError(f"loss is {loss.item()}")
    return loss.item(), min(seconds[1:] or seconds), peak_mib(device)


def train_rows(name, device, sizes, build, loss_of):
    rows = {}
    for amp in precisions(device):
        loss, seconds, peak = train_steps(device, amp, build, loss_of, sizes.steps)
        rows[f"{name}, {'AMP' if amp else 'fp32'}"] = {
            "s/step": seconds, "peak MiB": peak, "result": f"loss {loss:.4f}"}
    return rows


def genisp_detector(name, device):
    """A frozen-detector stand-in: COCO weights when cached, else random (same cost)."""
    coco = name in TORCHVISION_DETECTORS and os.path.isfile(
        cached_weights_path(TORCHVISION_DETECTORS[name].coco_weights))
    return build_detector(name, 91 if name in TORCHVISION_DETECTORS else 3,
                          "coco" if coco else "none"), coco


# ---------------------------------------------------------------- the checks

def check_maskrcnn(device, sizes):
    size, batch = sizes.detector_size, sizes.detector_batch
    images = [torch.rand(3, size, size, device=device) for _ in range(batch)]
    targets = detection_targets(batch, size, device)
    return train_rows("Mask R-CNN R18-FPN train step", device, sizes,
                      lambda: build_detector("maskrcnn_resnet18_fpn", 3, "none", min_size=size,
                                             max_size=size),
                      lambda model: sum(model(images, targets).values()))


def check_diffusion(device, sizes):
    size, batch = sizes.diffusion_size, sizes.diffusion_batch
    x0 = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    cond = x0 * 0.2
    config = {"unet": sizes.unet, "timesteps": 1000, "schedule": "linear", "objective": "eps"}
    return train_rows("diffusion UNet train step", device, sizes, lambda: build_diffusion(config),
                      lambda model: model(x0, cond))


def check_genisp(device, sizes):
    size, batch = sizes.genisp_size, sizes.genisp_batch
    images = torch.rand(batch, 3, size, size, device=device) * 0.1
    targets = detection_targets(batch, size, device, masks=False)
    coco = []

    def build():
        detector, is_coco = genisp_detector(sizes.genisp_detector, device)
        coco.append(is_coco)
        return GenISPDetector(GenISP(), detector)

    rows = train_rows(f"GenISP + frozen {sizes.genisp_detector} train step", device, sizes, build,
                      lambda model: sum(model(images, targets).values()))
    for row in rows.values():
        row["result"] += ", COCO weights" if all(coco) else ", random detector"
    return rows


def check_evaluation(device, sizes):
    """Inference with and without AMP: detections through engine.predict, DDIM sampling."""
    rows = {}
    size, batch = sizes.detector_size, sizes.detector_batch
    torch.manual_seed(0)
    detector = build_detector("maskrcnn_resnet18_fpn", 3, "none", min_size=size,
                              max_size=size).to(device).eval()
    batches = [([torch.rand(3, size, size) for _ in range(batch)], [{}] * batch)
               for _ in range(sizes.steps)]
    config = {"unet": sizes.unet, "timesteps": 1000, "schedule": "linear", "objective": "eps"}
    diffusion = build_diffusion(config).to(device).eval()
    cond = torch.rand(sizes.diffusion_batch, 3, sizes.diffusion_size, sizes.diffusion_size,
                      device=device) * 2 - 1
    for amp in precisions(device):
        label = "AMP" if amp else "fp32"
        reset_peak(device)
        start = time.perf_counter()
        outputs = [o for _, batch_outputs in predict(detector, batches, device, amp, desc="check")
                   for o in batch_outputs]
        synchronize(device)
        seconds = time.perf_counter() - start
        if not all(torch.isfinite(o["boxes"]).all() for o in outputs):
            raise RuntimeError(f"non-finite boxes with {label}")
        rows[f"Mask R-CNN inference (engine.predict), {label}"] = {
            "s/step": seconds / len(batches), "peak MiB": peak_mib(device),
            "result": f"{sum(len(o['boxes']) for o in outputs)} detections"}
        reset_peak(device)
        start = time.perf_counter()
        with torch.no_grad():
            restored = diffusion.sample(cond, "ddim", steps=sizes.ddim_steps, amp=amp)
        synchronize(device)
        if not torch.isfinite(restored).all():
            raise RuntimeError(f"non-finite DDIM samples with {label}")
        rows[f"DDIM-{sizes.ddim_steps} sampling, {label}"] = {
            "s/step": (time.perf_counter() - start) / sizes.ddim_steps,
            "peak MiB": peak_mib(device), "result": f"range {restored.min():.2f}..{restored.max():.2f}"}
    rows.update(coco_ap_rows(detector, device, sizes))
    return rows


def coco_ap_rows(detector, device, sizes):
    """COCO AP on the bundled sample set through engine.evaluate, when pycocotools is there."""
    try:
        import pycocotools  # noqa: F401  (optional on a GPU machine's own Python)
    except ImportError:
        return {"COCO AP (engine.evaluate)": {"result": "skipped: pycocotools not installed"}}
    from torch_utils_lib.data.coco_utils import CocoDetection
    from torch_utils_lib.data.loaders import detection_loader
    from torch_utils_lib.engine.loop import evaluate
    from torch_utils_lib.toolkit.paths import sample_annotation, sample_images
    dataset = CocoDetection(sample_images("val"), sample_annotation("val"))
    if sizes.coco_images:
        dataset = torch.utils.data.Subset(dataset, range(sizes.coco_images))
    loader = detection_loader(dataset, 4, train=False)
    rows = {}
    for amp in precisions(device):
        start = time.perf_counter()
        stats = evaluate(detector, loader, device, IOU_TYPES, amp=amp)
        rows[f"COCO AP (engine.evaluate), {'AMP' if amp else 'fp32'}"] = {
            "s/step": (time.perf_counter() - start) / len(loader),
            "result": f"bbox AP {stats['bbox']['AP']:.3f} (random weights)"}
    return rows


def check_study_step(device, sizes):
    """Wall seconds of mask_rcnn/evaluate.py processes on 1 and on N generated images: the fixed
    cost of one study step (1-image run less one image's compute) and the seconds per image."""
    try:
        import pycocotools  # noqa: F401  (evaluate.py needs it)
    except ImportError:
        return {"study step (evaluate.py)": {"result": "skipped: pycocotools not installed"}}
    from bench.bench_scale import make_coco, write_images
    from torch_utils_lib.runtime.checkpoint import save_checkpoint
    from torch_utils_lib.models.detectors import detector_config
    rows = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_study_") as folder:
        gt, _, _ = make_coco(sizes.study_images)
        names = [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
        torch.manual_seed(0)
        model = build_detector("maskrcnn_resnet18_fpn", len(names) + 1, "none",
                               min_size=sizes.study_size[0], max_size=sizes.study_size[1])
        checkpoint = os.path.join(folder, "untrained.pth")
        save_checkpoint(checkpoint, model, detector_config(
            "maskrcnn_resnet18_fpn", ["__background__"] + names, *sizes.study_size,
            [None] + [c["id"] for c in sorted(gt["categories"], key=lambda c: c["id"])]))
        write_images(os.path.join(folder, "images"), sizes.study_images)
        for count in (1, sizes.study_images):
            part = {**gt, "images": gt["images"][:count],
                    "annotations": [a for a in gt["annotations"]
                                    if a["image_id"] in {i["id"] for i in gt["images"][:count]}]}
            with open(os.path.join(folder, f"gt_{count}.json"), "w") as f:
                json.dump(part, f)
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "mask_rcnn", "evaluate.py")
        for amp in precisions(device):
            seconds = {}
            for count in (1, sizes.study_images):
                command = [sys.executable, script, "--weight_path", checkpoint, "--image_set",
                           f"gen={os.path.join(folder, 'images')},{os.path.join(folder, f'gt_{count}.json')}",
                           "--output_dir", os.path.join(folder, f"eval_{count}_{amp}"),
                           "--pretrained", "none", "--count", "0", "--bootstrap", "0",
                           "--device", str(device), "--amp" if amp else "--no-amp"]
                start = time.perf_counter()
                result = subprocess.run(command, capture_output=True, text=True, timeout=600)
                seconds[count] = time.perf_counter() - start
                if result.returncode != 0:
                    raise RuntimeError(f"evaluate.py on {count} images: {result.stderr[-500:]}")
            per_image = (seconds[sizes.study_images] - seconds[1]) / max(1, sizes.study_images - 1)
            rows[f"study step (evaluate.py), {sizes.study_images} images, {'AMP' if amp else 'fp32'}"] = {
                "s/step": seconds[sizes.study_images],
                "result": f"fixed cost {seconds[1] - per_image:.1f} s per step, "
                          f"{per_image:.3f} s/image (1 image: {seconds[1]:.1f} s)"}
    return rows


def check_genisp_batched(device, sizes):
    batch, size = sizes.batched
    r = bench_batched(device, batch, size, sizes.repeats)
    return {f"GenISP batched vs per-image loop, {batch}x{size[0]}x{size[1]}": {
        "s/step": r["batched_s"], "result": f"{r['speedup']:.2f}x faster than the loop "
                                            f"({r['loop_s']:.3f} s)"}}


def check_ddp(device, sizes):
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        return {"DDP (NCCL), 2 processes": {"result": f"skipped: {torch.cuda.device_count()} GPU"}}
    backend = "nccl" if device.type == "cuda" else "gloo"
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ddp_check.py")
    # a TCP store on loopback: a file store's file can vanish under a rank still tearing down
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="gpu_check_ddp_") as folder:
        result_file = os.path.join(folder, "result.json")
        start = time.perf_counter()
        ranks = [subprocess.Popen([sys.executable, script, "--rank", str(rank), "--world_size", "2",
                                   "--backend", backend, "--init_method", f"tcp://127.0.0.1:{port}",
                                   "--result_file", result_file]) for rank in range(2)]
        codes = [p.wait(timeout=300) for p in ranks]
        seconds = time.perf_counter() - start
        if any(codes):
            raise RuntimeError(f"DDP processes exited with {codes}")
        with open(result_file) as f:
            result = json.load(f)
    if result["all_reduce"] != 3.0 or not result["weights_equal"]:
        raise RuntimeError(f"DDP disagrees: {result}")
    return {f"DDP ({backend.upper()}), 2 processes": {
        "s/step": seconds, "result": "all_reduce 1+2=3, weights equal after a step"}}


CHECKS = (("maskrcnn", check_maskrcnn), ("diffusion", check_diffusion), ("genisp", check_genisp),
          ("evaluation", check_evaluation), ("study_step", check_study_step),
          ("genisp_batched", check_genisp_batched),
          ("ddp", check_ddp))


def run_checks(device, sizes):
    """{row: {s/step, peak MiB, result, status}}; a failing check becomes a FAIL row."""
    rows = {}
    for name, check in CHECKS:
        try:
            for row_name, row in check(device, sizes).items():
                rows[row_name] = {"status": "skipped" if str(row.get("result", "")).startswith(
                    "skipped") else "ok", **row}
        except Exception as e:  # a report of every path: one failure must not hide the others
            traceback.print_exc()
            rows[name] = {"status": "FAIL", "result": f"{type(e).__name__}: {e}"[:200]}
    return rows


def run(args):
    """The benchmark of the parsed `args`."""
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise UserError(f"--device {args.device}: not a device name (cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no GPU (torch.cuda.is_available() is False); nothing to check")
        return 0
    sizes = Sizes(args.smoke)
    started = time.perf_counter()
    rows = run_checks(device, sizes)
    total = time.perf_counter() - started
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\ngpu-check on {name}, torch {torch.__version__}, {total:.1f} s"
          f"{' (smoke sizes)' if args.smoke else ''}")
    print(markdown_table(rows, first_column="check", columns=["status", "s/step", "peak MiB", "result"],
                         formats={"s/step": ".4f", "peak MiB": ".0f"}))
    if args.output_dir:
        from torch_utils_lib.toolkit.atomic_io import atomic_write_json
        from torch_utils_lib.toolkit.runinfo import write_run_metadata
        atomic_write_json(os.path.join(args.output_dir, "gpu_check.json"), {
            "device": name, "torch": torch.__version__, "smoke": args.smoke, "seconds": total,
            "rows": rows})
        write_run_metadata(args.output_dir, args)
    return 1 if any(row["status"] == "FAIL" for row in rows.values()) else 0
