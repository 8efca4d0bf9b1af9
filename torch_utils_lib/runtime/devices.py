"""Seeding, the default device, AMP's default and autocast (the shared flags are in cli)."""
import contextlib
import random

import numpy as np
import torch


def seed_everything(seed, deterministic=True):
    """Seed Python, NumPy and torch; on CPU this makes training repeatable run to run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False


def seed_worker(worker_id):
    """DataLoader worker_init_fn: derive NumPy/random seeds from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def default_device():
    """'cuda' when a GPU is visible, else 'cpu': the default of every --device flag."""
    return "cuda" if torch.cuda.is_available() else "cpu"



def resolve_amp(amp_flag, device):
    """AMP is on by default on CUDA and unavailable on CPU (bfloat16 CPU autocast is slower there)."""
    if amp_flag is None:
        return device.type == "cuda"
    return bool(amp_flag) and device.type == "cuda"


def autocast(device, enabled):
    """Mixed precision on CUDA when enabled; a no-op context otherwise."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
