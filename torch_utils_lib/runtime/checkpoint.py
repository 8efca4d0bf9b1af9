"""Checkpoints as plain state dicts: written atomically, read with weights_only=True.

A training checkpoint carries model, optimizer, scheduler, scaler, epoch and RNG states so that
`--resume` continues exactly; `config` holds what is needed to rebuild the model (its name,
number of classes, the label-to-category mapping, ...).
"""
import io
import os
import random

import numpy as np
import torch

from torch_utils_lib.toolkit.atomic_io import (atomic_write_bytes, atomic_write_json_lines, read_jsonl,
                                      remove_stale_temporaries)
from torch_utils_lib.toolkit.cli import RESUME_LAST
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import require_file
from torch_utils_lib.runtime.distributed import is_main_process


def capture_rng_state():
    """Python, NumPy and torch (CPU and CUDA) random states, in weights_only-loadable types."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    """Inverse of capture_rng_state."""
    random.setstate(_tuplify(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(obj):
    return tuple(_tuplify(o) for o in obj) if isinstance(obj, (list, tuple)) else obj


def save_checkpoint(path, model, config, optimizer=None, scheduler=None, scaler=None, epoch=None,
                    extra=None, ema=None):
    """Atomically save model weights (unwrapped from DDP), training state and `config`."""
    model = model.module if hasattr(model, "module") else model
    state = {"model": model.state_dict(), "config": config, "epoch": epoch,
             "rng": capture_rng_state()}
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler),
                     ("ema", ema)):
        if obj is not None:
            state[key] = obj.state_dict()
    if extra:
        state.update(extra)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise RuntimeError(f"refusing to save {path}: parameter {name} is not finite")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_state(path, map_location="cpu", what="checkpoint"):
    """Whatever torch.save stored at `path`, loaded with weights_only=True; UserError if unusable.

    Weights holding NaN or inf (a plain state dict, or a checkpoint's model or EMA weights) are
    refused here, the one place every script loads weights through (check_finite_weights).
    """
    require_file(path, what)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or foreign files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable llvision {what} ({reason[:200]})") from None
    if is_plain_state_dict(state):
        check_finite_weights(state, path)
    elif isinstance(state, dict):
        ema = state.get("ema")
        for weights in (state.get("model"), ema.get("shadow") if isinstance(ema, dict) else None):
            if isinstance(weights, dict):
                check_finite_weights(weights, path)
    return state


def check_finite_weights(weights, path):
    """UserError naming `path` and the first tensor when a state dict holds NaN or inf.

    Such weights give no detections (AP 0, an empty inference) or a NaN loss at the first step,
    which would otherwise look like a bad --lr.
    """
    bad = [name for name, value in weights.items() if torch.is_tensor(value)
           and value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        more = f" and {len(bad) - 1} more tensor{'s' if len(bad) > 2 else ''}" if len(bad) > 1 else ""
        raise UserError(f"{path}: the weights hold NaN or infinite values (in {bad[0]}{more}); "
                        f"no model can run on them: choose another checkpoint or train again")
    return weights


def is_plain_state_dict(state):
    """True for `torch.save(model.state_dict())`: a non-empty mapping of names to tensors."""
    return (isinstance(state, dict) and bool(state)
            and all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()))


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint saved by save_checkpoint (weights_only=True); UserError if unusable."""
    state = read_state(path, map_location)
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"{path}: not an llvision checkpoint (no 'model' state dict)")
    return state


def check_same_config(path, saved, requested, keys=None):
    """UserError naming `path` and each differing setting unless the checkpoint's config matches.

    `keys` limits the comparison (e.g. the model name and class count); all of `requested`'s
    keys by default. Used before resuming, where a different model would not load (or, worse,
    would silently replace the flags).
    """
    saved = saved if isinstance(saved, dict) else {}
    differences = []
    for key in keys or requested:
        there, here = saved.get(key), requested.get(key)
        if isinstance(there, dict) and isinstance(here, dict):  # name the nested setting
            differences += [f"{key}.{k} {there.get(k)!r} there, {here.get(k)!r} here"
                            for k in dict.fromkeys([*there, *here]) if there.get(k) != here.get(k)]
        elif there != here:
            differences.append(f"{key} {there!r} there, {here!r} here")
    if differences:
        raise UserError(f"{path}: the checkpoint was made with other settings ("
                        f"{'; '.join(differences)}); pass the flags it was trained with or "
                        f"choose another checkpoint directory")


def resume_training(state, model, optimizer=None, scheduler=None, scaler=None, ema=None):
    """Restore training state from a loaded checkpoint; returns the next epoch to run."""
    target = model.module if hasattr(model, "module") else model
    target.load_state_dict(state["model"])
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler),
                     ("ema", ema)):
        if obj is not None and state.get(key):  # a disabled GradScaler saves {}: nothing to restore
            obj.load_state_dict(state[key])
    if "rng" in state:
        restore_rng_state(state["rng"])
    return (state.get("epoch") or 0) + 1


def checkpoint_to_resume(resume, checkpoint_dir, announce=True):
    """The checkpoint a training run continues from (--resume's meaning), or None for a new run.

    `resume` is None (no --resume), RESUME_LAST (--resume without a value: CHECKPOINT_DIR/last.pth)
    or a path. A missing file starts a new run and says so. A new run never replaces a run
    already in `checkpoint_dir`: that is a UserError naming the way on.
    """
    last = os.path.join(checkpoint_dir, "last.pth")
    path = None if resume is None else last if resume == RESUME_LAST else resume
    if path is not None and os.path.isfile(path):
        if announce:
            print(f"resuming from {path}")
        return path
    if os.path.isfile(last):
        missing = f"--resume {path}: no such file, and " if path else ""
        raise UserError(f"{last}: {missing}a training run is already there; pass --resume to "
                        f"continue it or choose another --checkpoint_dir")
    if path is not None and announce:
        print(f"--resume: no checkpoint at {path}; starting a new run")
    return None


def prepare_checkpoint_dir(checkpoint_dir, start_epoch, log_name="train_log.jsonl"):
    """Ready `checkpoint_dir` for a run starting at `start_epoch`; returns the log's path.

    Removes temporaries left by a run killed while writing a checkpoint, and keeps in the log
    only the steps of epochs before `start_epoch` (those the checkpoint holds; none for a fresh
    run), so the log holds each epoch once however often the run was interrupted.
    """
    os.makedirs(checkpoint_dir, exist_ok=True)
    log_path = os.path.join(checkpoint_dir, log_name)
    if is_main_process():
        remove_stale_temporaries(checkpoint_dir)
        if os.path.isfile(log_path):
            kept = [r for r in read_jsonl(log_path) if r.get("epoch", 0) < start_epoch]
            atomic_write_json_lines(log_path, kept)
    return log_path
