"""The steps of bench/bench_maskrcnn.py: full Mask R-CNN training steps on synthetic batches, timed."""
import os

import torch

from bench.timing import timed
from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.models.detectors import build_detector
from torch_utils_lib.runtime.devices import autocast
from torch_utils_lib.engine.loop import optimizer_step
from torch_utils_lib.toolkit.runinfo import write_run_metadata
from torch_utils_lib.toolkit.tables import markdown_table


def synthetic_batch(size, batch, device, generator):
    """`batch` random images of size x size, each with three boxes and their filled masks."""
    images, targets = [], []
    for _ in range(batch):
        images.append(torch.rand(3, size, size, generator=generator).to(device))
        corners = torch.randint(0, size // 2, (3, 2), generator=generator)
        sides = torch.randint(size // 8, size // 2, (3, 2), generator=generator)
        boxes = torch.cat([corners, corners + sides], 1).float()
        masks = torch.zeros(3, size, size, dtype=torch.uint8)
        for m, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
            m[y0:y1, x0:x1] = 1
        targets.append({"boxes": boxes.to(device), "labels": torch.tensor([1, 2, 3], device=device),
                        "masks": masks.to(device)})
    return images, targets


def make_step(name, size, batch, device, amp):
    torch.manual_seed(0)
    model = build_detector(name, 4, min_size=size, max_size=size).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    images, targets = synthetic_batch(size, batch, device, torch.Generator().manual_seed(0))

    def step():
        with autocast(device, amp):
            loss = sum(model(images, targets).values())
        optimizer_step(loss, optimizer, scaler)
    return step


def run(args, settings):
    """The benchmark of the parsed `args` over `settings` ((model, image size, batch) each)."""
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    cases = []
    for device in devices:
        for amp in ((False, True) if device.type == "cuda" else (False,)):
            for name, size, batch in settings:
                if name in args.models:
                    cases.append((name, size, batch, device, amp))
    seconds_per_step = timed([make_step(*case) for case in cases], args.steps)
    rows = []
    for (name, size, batch, device, amp), seconds in zip(cases, seconds_per_step):
        rows.append({"model": name, "size": size, "batch": batch, "device": device.type, "amp": amp,
                     "seconds_per_step": seconds, "images_per_second": batch / seconds})
    print(markdown_table({r["model"]: {"size": r["size"], "batch": r["batch"], "device": r["device"],
                                       "amp": "on" if r["amp"] else "off",
                                       "s/step": r["seconds_per_step"],
                                       "images/s": r["images_per_second"]} for r in rows},
                         formats={"images/s": ".2f"}))
    result = {"rows": rows, "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
              "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    atomic_write_json(args.output, result)
    write_run_metadata(os.path.dirname(args.output), args, filename="bench_maskrcnn_run.json")
    print(f"saved {args.output}")
    return 0
