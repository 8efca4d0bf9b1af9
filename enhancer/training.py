"""enhancer/train.py's trainer: Zero-DCE++ zero-reference, or the DIP enhancer through a frozen
detector or jointly with it; checkpoints, --resume, AMP and torchrun as every trainer."""
import os

import torch

from enhancer.data import DarkImages, detection_set, image_names
from enhancer.models import OBJECTIVES, build_enhancer
from enhancer.zero_dce import ZeroReferenceObjective
from torch_utils_lib.categories import load_category_map
from torch_utils_lib.checkpoint import (check_same_config, checkpoint_to_resume, load_checkpoint,
                                        resume_training, save_checkpoint)
from torch_utils_lib.cli import UserError, check_outputs_apart
from torch_utils_lib.data import detection_loader
from torch_utils_lib.devices import resolve_amp, seed_everything
from torch_utils_lib.distributed import cleanup_distributed, init_distributed
from torch_utils_lib.engine import build_lr_scheduler, fit
from torch_utils_lib.frozen_detector import ImageModuleDetector, load_frozen_detector
from torch_utils_lib.paths import sample_annotation, sample_low_light
from torch_utils_lib.runinfo import write_run_metadata

# Per-model defaults: Zero-DCE++'s release recipe; the DIP enhancer's for the detector objectives.
DEFAULTS = {"zero_dce": {"lr": 1e-4, "weight_decay": 1e-4, "max_grad_norm": 0.1, "epochs": 100},
            "dip": {"lr": 1e-3, "weight_decay": 0.0, "max_grad_norm": 0.0, "epochs": 10}}
JOINT_DETECTOR = "detector.pth"  # beside last.pth after a joint run
RESUME_KEYS = ("model", "objective", "scale_factor", "parameter_size", "exposure", "image_size",
               "detector", "detector_weights")


def resolve_defaults(args):
    """Fill the flags left unset with the model's defaults; refuse a model/objective mismatch."""
    objective = args.objective or OBJECTIVES[args.model][0]
    if objective not in OBJECTIVES[args.model]:
        raise UserError(f"--objective {objective}: --model {args.model} trains with "
                        f"{' or '.join(OBJECTIVES[args.model])}")
    args.objective = objective
    for key, value in DEFAULTS[args.model].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.model == "dip" and args.image_size:
        raise UserError(f"--image_size {args.image_size}: only for zero_dce (the detector sets "
                        f"its own input size)")
    if args.model == "dip" and not args.annotation and (
            os.path.realpath(args.image_dir) == os.path.realpath(sample_low_light("train"))):
        args.annotation = sample_annotation("train")  # the bundled sample's boxes
    if args.model == "dip" and not args.annotation:
        raise UserError(f"--objective {objective}: needs --annotation (COCO boxes of --image_dir)")
    return args


def train(args):
    """Train as the flags say; returns the per-epoch history."""
    args = resolve_defaults(args)
    check_outputs_apart({"--image_dir": args.image_dir, "--annotation": args.annotation,
                         "--detector": args.detector, "--category_map": args.category_map},
                        {"--checkpoint_dir": args.checkpoint_dir})
    dist = init_distributed(args.device)
    device = dist.device
    amp = resolve_amp(args.amp, device)
    seed_everything(args.seed + dist.rank)
    config = {"model": args.model, "objective": args.objective}
    if args.model == "zero_dce":
        config.update(scale_factor=args.scale_factor, exposure=args.exposure,
                      image_size=args.image_size)
        enhancer = build_enhancer(config)
        model, saved = ZeroReferenceObjective(enhancer, args.exposure), enhancer
        dataset = DarkImages(args.image_dir, image_names(args.image_dir, args.annotation),
                             args.image_size)
        loader = detection_loader(dataset, args.batch_size, train=True, workers=args.workers,
                                  seed=args.seed, collate=torch.utils.data.default_collate)
        loss_fn = lambda m, batch, dev: m(batch.to(dev, non_blocking=True))  # noqa: E731
        groups = [{"params": list(enhancer.parameters())}]
    else:
        detector, detector_config = load_frozen_detector(args.detector, args.detector_weights,
                                                         device)
        config.update(parameter_size=args.parameter_size, detector=args.detector,
                      detector_weights=args.detector_weights, detector_config=detector_config)
        enhancer = build_enhancer(config)
        dataset = detection_set(args.image_dir, args.annotation, detector_config["categories"],
                                load_category_map(args.category_map))
        joint = args.objective == "joint"
        if joint:
            detector.requires_grad_(True)
        model = ImageModuleDetector(enhancer, detector, frozen=not joint,
                                    boxes_only=not dataset.with_masks)
        saved = model if joint else enhancer  # joint: the enhancer and the detector together
        loader = detection_loader(dataset, args.batch_size, train=True, workers=args.workers,
                                  seed=args.seed)
        loss_fn = None
        groups = [{"params": list(enhancer.parameters())}]
        if joint:
            groups.append({"params": [p for p in detector.parameters()], "lr": args.detector_lr})
    model.to(device)
    optimizer = torch.optim.Adam(groups, lr=args.lr, weight_decay=args.weight_decay)
    scheduler = build_lr_scheduler(optimizer, args.lr_step_size, args.lr_milestones, args.lr_gamma)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    resume_path = checkpoint_to_resume(args.resume, args.checkpoint_dir, announce=dist.is_main)
    start_epoch = 0
    if resume_path:
        state = load_checkpoint(resume_path)
        check_same_config(resume_path, state.get("config"), config, RESUME_KEYS)
        start_epoch = resume_training(state, saved, optimizer, scheduler, scaler)
    if dist.is_main:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
        write_run_metadata(args.checkpoint_dir, args, amp=amp, world_size=dist.world_size)
    train_model = model
    if dist.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    extra = {"loss_fn": loss_fn} if loss_fn else {}
    try:
        history = fit(train_model, optimizer, scheduler, loader, device, epochs=args.epochs,
                      checkpoint_dir=args.checkpoint_dir, config=config, start_epoch=start_epoch,
                      scaler=scaler, amp=amp, max_grad_norm=args.max_grad_norm or None,
                      saved_model=saved, **extra)
    finally:
        cleanup_distributed()
    if args.objective == "joint" and dist.is_main:
        # the fine-tuned detector alone, as mask_rcnn/train.py writes one: what scores the
        # enhanced images (mask_rcnn/evaluate.py --weight_path, the study)
        save_checkpoint(os.path.join(args.checkpoint_dir, JOINT_DETECTOR), model.detector,
                        config["detector_config"], epoch=args.epochs - 1)
    return history
