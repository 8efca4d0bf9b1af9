"""torchrun / DDP: process-group set-up, rank queries, gathering and averaging across processes."""
import os

import torch
import torch.distributed as dist

from torch_utils_lib.toolkit.errors import UserError


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
