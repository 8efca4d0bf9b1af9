"""Full-resolution restoration of image folders with a trained diffusion model.

Images are batched with others of the same size; the UNet pads each batch to its multiple and
crops back, so any size works. Each image's noise comes from its own generator seeded by
(--seed, file name): outputs are the same whatever the batch size or order.
"""
import os
import time
import zlib

import torch

from diffusion_model.data import MODEL_RANGE, to_model_range
from torch_utils_lib.data.image_io import read_rgb, write_image
from torch_utils_lib.toolkit.progress import progress
from torch_utils_lib.data.transforms import to_uint8


def image_generator(seed, name):
    """A CPU generator whose stream depends only on the seed and the image's file name."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


@torch.no_grad()
def restore_batch(diffusion, conds, names, device, sampler="ddim", steps=50, eta=0.0, seed=0,
                  amp=False):
    """Restore same-sized HxWx3 uint8 low-light images; returns HxWx3 uint8 arrays."""
    cond = torch.stack([to_model_range(c) for c in conds]).to(device)
    generators = [image_generator(seed, n) for n in names]
    out = diffusion.sample(cond, sampler, steps=steps, eta=eta, generators=generators, amp=amp)
    return [to_uint8(x, MODEL_RANGE) for x in out]


def restore_directory(diffusion, cond_dir, names, output_dir, device, sampler="ddim", steps=50,
                      eta=0.0, seed=0, batch_size=4, amp=False, skip_existing=True):
    """Restore `cond_dir/<name>` into `output_dir/<name>` for every name; returns timing stats.

    Files already in `output_dir` are complete (writes are atomic) and skipped, so an
    interrupted run continues where it stopped.
    """
    todo = [n for n in names if not (skip_existing and os.path.isfile(os.path.join(output_dir, n)))]
    pending = {}  # image size -> [(name, image)]
    restored, seconds = 0, 0.0
    bar = progress(total=len(todo), desc=f"restoring ({sampler}, "
                   f"{steps if sampler == 'ddim' else diffusion.timesteps} steps)")

    def flush(size):
        nonlocal restored, seconds
        batch = pending.pop(size)
        start = time.perf_counter()
        outputs = restore_batch(diffusion, [image for _, image in batch], [n for n, _ in batch],
                                device, sampler, steps, eta, seed, amp)
        seconds += time.perf_counter() - start
        for (name, _), rgb in zip(batch, outputs):
            write_image(os.path.join(output_dir, name), rgb)
        restored += len(batch)
        bar.update(len(batch))

    for name in todo:
        image = read_rgb(os.path.join(cond_dir, name))
        pending.setdefault(image.shape, []).append((name, image))
        if len(pending[image.shape]) == batch_size:
            flush(image.shape)
    for size in list(pending):
        flush(size)
    bar.close()
    return {"restored": restored, "skipped": len(names) - len(todo), "sampling_seconds": seconds,
            "seconds_per_image": seconds / restored if restored else None}
