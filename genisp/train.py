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


def build_parser():
    from torch_utils_lib.cli import (ArgumentParser, add_common_args, add_training_args,
                                     non_negative_float, non_negative_int, positive_float,
                                     positive_int)
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--batch_size", type=positive_int, default=8)
    parser.add_argument("--lr", "--learning_rate", dest="lr", type=positive_float, default=1e-2,
                        help="Adam learning rate")
    add_training_args(parser, epochs=15, max_grad_norm=0.0, lr_milestones=[5, 10], lr_gamma=0.1)
    parser.add_argument("--resize", type=non_negative_int, nargs=2, default=[1333, 800],
                        metavar=("LONG", "SHORT"),
                        help="fit images into LONG x SHORT keeping aspect; 0 0 keeps the packed size")
    parser.add_argument("--parameter_size", type=positive_int, default=256,
                        help="side of the thumbnail ConvWB and ConvCC look at (paper: 256)")
    parser.add_argument("--color_loss_weight", type=non_negative_float, default=0.0,
                        help="weight of the paper's gray-world colour loss (equation 4); 0: off")
    parser.add_argument("--cache_dir", default=os.path.join(RUNS_DIR, "cache", "genisp_raw"),
                        help="cache of pre-processed RAW arrays ('none': decode every epoch)")
    add_common_args(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.annotation is None:
        args.annotation = os.path.join(args.raw_dir, "annotations.json")
    import torch

    from genisp.detection import GENISP_CONFIG_NAME, load_frozen_detector, load_genisp, raw_dataset
    from genisp.model import GenISP, GenISPDetector
    from torch_utils_lib.checkpoint import (check_same_config, checkpoint_to_resume, load_checkpoint,
                                            resume_training)
    from torch_utils_lib.cli import check_outputs_apart
    from torch_utils_lib.data import detection_loader
    from torch_utils_lib.devices import resolve_amp, seed_everything
    from torch_utils_lib.distributed import cleanup_distributed, init_distributed
    from torch_utils_lib.engine import build_lr_scheduler, fit
    from torch_utils_lib.runinfo import write_run_metadata

    cache_dir = None if args.cache_dir.lower() == "none" else args.cache_dir
    check_outputs_apart({"--raw_dir": args.raw_dir, "--annotation": args.annotation,
                         "--weight_path": args.weight_path,
                         "--detector": args.detector, "--detector_weights": args.detector_weights},
                        {"--checkpoint_dir": args.checkpoint_dir, "--cache_dir": cache_dir})
    dist_info = init_distributed(args.device)
    device = dist_info.device
    amp = resolve_amp(args.amp, device)
    seed_everything(args.seed + dist_info.rank)
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
    scheduler = build_lr_scheduler(optimizer, args.lr_step_size, args.lr_milestones, args.lr_gamma)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    config = {"model": GENISP_CONFIG_NAME, "parameter_size": genisp.parameter_size,
              "resize": list(resize) if resize else None, "detector": args.detector,
              "detector_weights": args.detector_weights, "categories": detector_categories}

    resume_path = checkpoint_to_resume(args.resume, args.checkpoint_dir, announce=dist_info.is_main)
    start_epoch = 0
    if resume_path:
        state = load_checkpoint(resume_path)
        check_same_config(resume_path, state.get("config"), config,
                          ("model", "parameter_size", "resize", "detector", "detector_weights"))
        start_epoch = resume_training(state, genisp, optimizer, scheduler, scaler)
    if dist_info.is_main:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
        write_run_metadata(args.checkpoint_dir, args, amp=amp, world_size=dist_info.world_size)
    train_model = model
    if dist_info.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    try:
        history = fit(train_model, optimizer, scheduler, loader, device, epochs=args.epochs,
                      checkpoint_dir=args.checkpoint_dir, config=config, start_epoch=start_epoch,
                      scaler=scaler, amp=amp, max_grad_norm=args.max_grad_norm or None,
                      saved_model=genisp)
    finally:
        cleanup_distributed()
    if dist_info.is_main:
        print(loss_table(history))
        print(f"GenISP weights: {os.path.join(args.checkpoint_dir, 'last.pth')}")
    return 0


def loss_table(history):
    """The per-epoch losses as a Markdown table."""
    keys = [k for k in history[-1] if k not in ("epoch", "lr")] if history else []
    lines = ["| epoch | lr | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for row in history:
        lines.append(f"| {row['epoch'] + 1} | {row['lr']:.0e} | " +
                     " | ".join(f"{row.get(k, float('nan')):.4f}" for k in keys) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_main(main)
