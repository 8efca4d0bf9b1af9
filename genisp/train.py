"""Train GenISP on camera RAW through a frozen detector (Morawski et al., CVPRW 2022).

Only GenISP learns; the detector's own losses (RetinaNet: focal + smooth-L1) guide it. Defaults
are the paper's recipe (Adam, lr 1e-2 x0.1 at epochs 5 and 10, 15 epochs, batch 8, images fitted
to 1333x800) on the sample set's physics RAW. Pre-processed RAW is cached on disk, so only the
first epoch decodes RAW files. Multi-GPU: torchrun --nproc_per_node N genisp/train.py ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from torch_utils_lib.cli import run_main
from torch_utils_lib.paths import RUNS_DIR, sample_raw


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw_dir", default=sample_raw("train"), help="folder of RAW files")
    parser.add_argument("--annotation", default=None,
                        help="COCO boxes of the RAW files (default: <raw_dir>/annotations.json)")
    parser.add_argument("--checkpoint_dir", default=os.path.join(RUNS_DIR, "genisp"),
                        help="where last.pth, the log and figures go")
    parser.add_argument("--weight_path", default=None,
                        help="start from this GenISP checkpoint's weights (not its optimizer)")
    parser.add_argument("--detector", default="retinanet_resnet50_fpn_v2",
                        help="frozen detector: a torchvision name (retinanet_resnet50_fpn_v2, "
                             "fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn, ...) or a "
                             "mask_rcnn/train.py checkpoint")
    parser.add_argument("--detector_weights", default="coco",
                        help="weights of a named detector: 'coco' (torch hub cache) or a file")
    parser.add_argument("--category_map", default=None, metavar="FILE",
                        help="JSON {dataset class name: detector class name}: overrides the built-in synonyms")
    parser.add_argument("--epochs", "--epoch", dest="epochs", type=int, default=15)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    parser.add_argument("--lr_steps", type=int, nargs="*", default=[5, 10],
                        help="epochs at which the learning rate is multiplied by --lr_gamma")
    parser.add_argument("--lr_gamma", type=float, default=0.1)
    parser.add_argument("--resize", type=int, nargs=2, default=[1333, 800], metavar=("LONG", "SHORT"),
                        help="fit images into LONG x SHORT keeping aspect; 0 0 keeps the packed size")
    parser.add_argument("--parameter_size", type=int, default=256,
                        help="side of the thumbnail ConvWB and ConvCC look at (paper: 256)")
    parser.add_argument("--color_loss_weight", type=float, default=0.0,
                        help="weight of the paper's gray-world colour loss (equation 4); 0: off")
    parser.add_argument("--max_grad_norm", type=float, default=None, help="gradient clipping")
    parser.add_argument("--cache_dir", default=os.path.join(RUNS_DIR, "cache", "genisp_raw"),
                        help="cache of pre-processed RAW arrays ('none': decode every epoch)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from <checkpoint_dir>/last.pth when it exists")
    from torch_utils_lib.utils import add_common_args
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.annotation is None:
        args.annotation = os.path.join(args.raw_dir, "annotations.json")
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch_size must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from genisp.detection import GENISP_CONFIG_NAME, load_frozen_detector, load_genisp, raw_dataset
    from genisp.model import GenISP, GenISPDetector
    from torch_utils_lib.checkpoint import (latest_checkpoint, load_checkpoint, resume_training,
                                            save_checkpoint)
    from torch_utils_lib.data import detection_loader, set_loader_epoch
    from torch_utils_lib.engine import train_one_epoch
    from torch_utils_lib.runinfo import atomic_write_json, write_run_metadata
    from torch_utils_lib.utils import (barrier, cleanup_distributed, init_distributed, resolve_amp,
                                       seed_everything)

    dist_info = init_distributed(args.device)
    device = dist_info.device
    amp = resolve_amp(args.amp, device)
    seed_everything(args.seed + dist_info.rank)
    cache_dir = None if args.cache_dir.lower() == "none" else args.cache_dir
    resize = tuple(args.resize) if all(args.resize) else None

    detector, detector_config = load_frozen_detector(args.detector, args.detector_weights, device)
    detector_categories = list(detector_config["categories"])
    from torch_utils_lib.categories import load_category_map
    dataset = raw_dataset(args.raw_dir, args.annotation, detector_categories, "minimal", cache_dir,
                          resize, train=True, category_map=load_category_map(args.category_map))
    loader = detection_loader(dataset, args.batch_size, train=True, workers=args.workers,
                              seed=args.seed)

    genisp = GenISP(args.parameter_size)
    if args.weight_path:
        genisp.load_state_dict(load_genisp(args.weight_path)[0].state_dict())
    model = GenISPDetector(genisp, detector, args.color_loss_weight).to(device)
    optimizer = torch.optim.Adam(genisp.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, args.lr_steps, args.lr_gamma)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    config = {"model": GENISP_CONFIG_NAME, "parameter_size": genisp.parameter_size,
              "resize": list(resize) if resize else None, "detector": args.detector,
              "detector_weights": args.detector_weights, "categories": detector_categories}

    os.makedirs(args.checkpoint_dir, exist_ok=True)
    last = os.path.join(args.checkpoint_dir, "last.pth")
    history_path = os.path.join(args.checkpoint_dir, "history.json")
    log_path = os.path.join(args.checkpoint_dir, "train_log.jsonl")
    start_epoch, history = 0, []
    if args.resume and latest_checkpoint(args.checkpoint_dir):
        state = load_checkpoint(last)
        start_epoch = resume_training(state, genisp, optimizer, scheduler, scaler)
        history = list(state.get("history", []))
        if dist_info.is_main:
            print(f"resuming from {last} at epoch {start_epoch}")
    elif dist_info.is_main and os.path.exists(log_path):
        os.remove(log_path)  # a fresh run starts a fresh log
    if dist_info.is_main:
        write_run_metadata(args.checkpoint_dir, args, amp=amp, world_size=dist_info.world_size)
    train_model = model
    if dist_info.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    for epoch in range(start_epoch, args.epochs):
        set_loader_epoch(loader, epoch)
        means = train_one_epoch(train_model, optimizer, loader, device, epoch, scaler=scaler,
                                amp=amp, max_grad_norm=args.max_grad_norm,
                                log_path=log_path if dist_info.is_main else None,
                                desc=f"GenISP epoch {epoch + 1}/{args.epochs}")
        history.append({"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], **means})
        scheduler.step()
        if dist_info.is_main:
            save_checkpoint(last, genisp, config, optimizer, scheduler, scaler, epoch,
                            extra={"history": history})
            atomic_write_json(history_path, history)
            print(f"epoch {epoch + 1}/{args.epochs}  " +
                  "  ".join(f"{k} {v:.4f}" for k, v in means.items()))
        barrier()
    if dist_info.is_main:
        _report(history, log_path, args.checkpoint_dir)
        if start_epoch >= args.epochs:
            print(f"{last}: already trained for {args.epochs} epochs (raise --epochs to go on)")
        print(f"GenISP weights: {last}")
    cleanup_distributed()
    return 0


def _report(history, log_path, out_dir):
    """Print the per-epoch loss table and plot the loss curves."""
    if not history:
        return
    keys = [k for k in history[-1] if k not in ("epoch", "lr")]
    print("| epoch | lr | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for row in history:
        print(f"| {row['epoch'] + 1} | {row['lr']:.0e} | " +
              " | ".join(f"{row.get(k, float('nan')):.4f}" for k in keys) + " |")
    if os.path.isfile(log_path):
        from torch_utils_lib.plots import plot_loss_curves
        plot_loss_curves(log_path, os.path.join(out_dir, "loss_curves.png"))


if __name__ == "__main__":
    run_main(main)
