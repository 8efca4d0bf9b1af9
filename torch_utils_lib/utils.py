"""Seeding, device choice, torchrun/DDP set-up, and metric logging shared by every model."""
import json
import os
import random
import time
from collections import defaultdict

import numpy as np
import torch
import torch.distributed as dist

from torch_utils_lib.cli import UserError


# ---------------------------------------------------------------- seeding and devices

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


# ---------------------------------------------------------------- distributed

class DistInfo:
    """Where this process sits in a torchrun job (world_size 1 for a plain run)."""

    def __init__(self, rank=0, world_size=1, local_rank=0, device=torch.device("cpu")):
        self.rank, self.world_size, self.local_rank, self.device = rank, world_size, local_rank, device

    @property
    def distributed(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def init_distributed(device_name):
    """Set up torch.distributed from torchrun's environment: nccl on CUDA, gloo on CPU.

    Without torchrun's RANK/WORLD_SIZE variables this is a plain single-process run.
    """
    try:
        device = torch.device(device_name)
    except RuntimeError:
        raise UserError(f"--device {device_name}: not a device name (cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device_name}: CUDA is not available on this machine; use --device cpu")
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo(device=device)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, device)


def is_dist():
    return dist.is_available() and dist.is_initialized()


def get_rank():
    return dist.get_rank() if is_dist() else 0


def get_world_size():
    return dist.get_world_size() if is_dist() else 1


def is_main_process():
    return get_rank() == 0


def barrier():
    if is_dist():
        dist.barrier()


def all_gather_object(obj):
    """List of `obj` from every process (a one-element list outside torchrun)."""
    if not is_dist():
        return [obj]
    gathered = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def reduce_mean(values):
    """Average a dict of float tensors across processes (for logging only)."""
    if not is_dist():
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float() for k in keys])
    dist.all_reduce(stacked)
    stacked /= get_world_size()
    return dict(zip(keys, stacked))


def sync_buffers(model):
    """Copy rank 0's buffers (BatchNorm statistics) to every process.

    DDP broadcasts buffers before each forward, so after the last training step each process
    holds its own update; evaluation must use the statistics that rank 0 saves.
    """
    if is_dist():
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer.data, src=0)


def cleanup_distributed():
    if is_dist():
        dist.destroy_process_group()


def unwrap(model):
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


# ---------------------------------------------------------------- logging

class MetricLogger:
    """Running means of scalar metrics, a JSON-lines log of every step, and a tqdm bar.

    Only the main process writes the log file and shows the bar.
    """

    def __init__(self, log_path=None, desc="", total=None, disable=None):
        from tqdm import tqdm
        self.sums, self.counts = defaultdict(float), defaultdict(int)
        self.log_path = log_path if is_main_process() else None
        disable = (not is_main_process()) if disable is None else disable
        self.bar = tqdm(total=total, desc=desc, disable=disable, dynamic_ncols=True, leave=False)
        self.start = time.time()

    def update(self, step_record=None, **metrics):
        """Add one step's metrics (floats or 0-d tensors); log them with `step_record` fields."""
        values = {k: float(v) for k, v in metrics.items()}
        for k, v in values.items():
            self.sums[k] += v
            self.counts[k] += 1
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(json.dumps({**(step_record or {}), **values}) + "\n")
        self.bar.update(1)
        self.bar.set_postfix({k: f"{self.sums[k] / self.counts[k]:.4f}"
                              for k in list(values)[:4]}, refresh=False)

    def means(self):
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def close(self):
        self.bar.close()
        return self.means()
