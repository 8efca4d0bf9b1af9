"""Figures of restorations: training previews (progressive samples) and inference comparisons."""
import os

import numpy as np
import torch

from diffusion_model.data import MODEL_RANGE, to_model_range
from torch_utils_lib.toolkit.guards import require_dir
from torch_utils_lib.data.image_io import read_rgb
from torch_utils_lib.evaluation.image_metrics import psnr
from torch_utils_lib.plots.charts import _pyplot, save_figure
from torch_utils_lib.data.transforms import to_uint8


def center_crop(array, size):
    """The central size x size window (or the whole side when it is shorter)."""
    h, w = array.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return array[top:top + size, left:left + size]


@torch.no_grad()
def progressive_samples(diffusion, cond, steps=20, snapshots=4, seed=0, amp=False):
    """DDIM (eta=0) restorations of `cond` ([-1, 1] batch) and the x0 estimates at `snapshots`
    evenly spaced steps; a private generator per image leaves the training RNG untouched."""
    generators = [torch.Generator().manual_seed(seed + i) for i in range(cond.shape[0])]
    keep = set(np.linspace(0, steps - 1, snapshots + 1).round().astype(int).tolist()[:-1])
    frames = []

    def on_step(i, total, x, x0):
        if i in keep:
            frames.append((f"x0 at step {i + 1}/{total}", x0.cpu()))

    final = diffusion.sample(cond, "ddim", steps=steps, eta=0.0, generators=generators,
                             on_step=on_step, amp=amp)
    return frames, final.cpu()


def save_grid(path, columns, row_labels=None):
    """A PNG grid: `columns` is a list of (title, [HxWx3 uint8 per row]) (matplotlib, atomic)."""
    plt = _pyplot()
    rows = len(columns[0][1])
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.0 * len(columns), 2.0 * rows),
                             squeeze=False)
    for c, (title, images) in enumerate(columns):
        for r, image in enumerate(images):
            axis = axes[r][c]
            axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                axis.set_title(title, fontsize=8)
            if c == 0 and row_labels:
                axis.set_ylabel(row_labels[r], fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def save_training_preview(path, diffusion, targets, conds, device, steps=20, amp=False):
    """Condition | progressive DDIM x0 estimates | restoration | ground truth, one row per pair."""
    cond = torch.stack([to_model_range(c) for c in conds])
    frames, final = progressive_samples(diffusion, cond.to(device), steps=steps, amp=amp)
    columns = [("low light", list(conds))]
    columns += [(title, [to_uint8(x, MODEL_RANGE) for x in batch]) for title, batch in frames]
    columns += [(f"DDIM-{steps} restored", [to_uint8(x, MODEL_RANGE) for x in final]), ("normal light", list(targets))]
    return save_grid(path, columns)


def save_comparison(path, names, cond_dir, restored_dir, target_dir):
    """Low light | restored | normal light for `names` (PSNR in the titles); None if no pair."""
    require_dir(target_dir, "image directory")
    rows = [n for n in names if os.path.isfile(os.path.join(target_dir, n))
            and os.path.isfile(os.path.join(restored_dir, n))]
    if not rows:
        print(f"no comparison figure: none of the images is in {target_dir}")
        return None
    conds, restored, targets, labels = [], [], [], []
    for name in rows:
        cond, out, target = (read_rgb(os.path.join(d, name)) for d in (cond_dir, restored_dir, target_dir))
        if target.shape != out.shape:
            continue
        conds.append(cond)
        restored.append(out)
        targets.append(target)
        labels.append(f"{name}\n{psnr(cond, target):.1f} -> {psnr(out, target):.1f} dB")
    if not conds:
        return None
    return save_grid(path, [("low light", conds), ("restored", restored), ("normal light", targets)],
                     row_labels=labels)
