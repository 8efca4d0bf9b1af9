"""One process of gpu_check's DDP check: an all_reduce and one DistributedDataParallel step.

Started twice by bench/gpu_check.py (as torchrun would, one process per rank); importing only
torch keeps the start of each process short. Rank 0 writes what it saw to --result_file.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import json

from torch_utils_lib.toolkit.cli import ArgumentParser, non_negative_int, positive_int
from torch_utils_lib.toolkit.errors import run_main


def build_parser():
    parser = ArgumentParser(
        example='python bench/ddp_check.py --rank 0 --world_size 1 --backend gloo --init_method tcp://127.0.0.1:29500 --result_file runs/ddp_check.json',
        description=__doc__)
    parser.add_argument("--rank", type=non_negative_int, required=True)
    parser.add_argument("--world_size", type=positive_int, default=2)
    parser.add_argument("--backend", choices=("nccl", "gloo"), default="nccl")
    parser.add_argument("--init_method", required=True,
                        help="rendezvous URL shared by the ranks (tcp://127.0.0.1:PORT)")
    parser.add_argument("--result_file", required=True)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    import torch  # after parsing, so --help is instant
    import torch.distributed as dist
    from torch import nn

    rank, world_size = args.rank, args.world_size
    device = torch.device("cuda", rank) if args.backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(args.backend, init_method=args.init_method, rank=rank,
                            world_size=world_size)
    try:
        value = torch.tensor([float(rank + 1)], device=device)
        dist.all_reduce(value)
        torch.manual_seed(rank)  # different data per rank; DDP gives every rank rank 0's weights
        model = nn.parallel.DistributedDataParallel(
            nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1)).to(device),
            device_ids=[rank] if device.type == "cuda" else None)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loss = model(torch.rand(2, 3, 16, 16, device=device)).square().mean()
        optimizer.zero_grad()
        loss.backward()  # gradients are averaged across ranks here
        optimizer.step()
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.zeros_like(weights) for _ in range(world_size)]
        dist.all_gather(gathered, weights)
        if rank == 0:
            with open(args.result_file, "w") as f:
                json.dump({"all_reduce": value.item(),
                           "weights_equal": all(torch.equal(gathered[0], g) for g in gathered)}, f)
        dist.barrier()  # every rank is done with gloo before any tears its group down
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    run_main(main)
