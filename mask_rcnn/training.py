"""Mask R-CNN training: data, model, optimizer and schedule from flags; resumable; DDP-ready."""
import os

import torch

from torch_utils_lib import transforms as T
from torch_utils_lib.categories import (all_categories_match, load_category_map, match_categories,
                                       present_categories)
from torch_utils_lib.checkpoint import (check_same_config, checkpoint_to_resume, load_checkpoint,
                                        resume_training)
from torch_utils_lib.cli import UserError, check_outputs_apart
from torch_utils_lib.coco_utils import CocoDetection
from torch_utils_lib.data import detection_loader
from torch_utils_lib.detection_models import (COCO_CATEGORY_NAMES, build_detector, detector_config,
                                              load_detector_checkpoint, load_detector_weights)
from torch_utils_lib.engine import build_lr_scheduler, evaluate, fit
from torch_utils_lib.atomic_io import atomic_write_json
from torch_utils_lib.runinfo import write_run_metadata
from torch_utils_lib.devices import resolve_amp, seed_everything
from torch_utils_lib.distributed import init_distributed, is_main_process, sync_buffers, unwrap


def label_space(categories, weights, init_config=None, category_map=None, source="annotation",
                present=None):
    """(label_map, names by label, category id by label) for training.

    Classes match by name (torch_utils_lib.categories), never by id. A checkpoint given with
    --weight_path fixes the label space; COCO weights on a dataset whose every class maps onto a
    COCO class keep COCO's 91 labels (the pretrained head is reused); otherwise labels 1..K.
    Mapping onto an existing label space needs only the `present` (annotated) categories.
    """
    present = categories if present is None else present
    if init_config is not None:
        label_map = match_categories(present, init_config["categories"], category_map, source)
        return label_map, init_config["categories"], init_config["category_ids"]
    if weights == "coco" and all_categories_match(present, COCO_CATEGORY_NAMES, category_map):
        return (match_categories(present, COCO_CATEGORY_NAMES, category_map, source),
                COCO_CATEGORY_NAMES, list(range(len(COCO_CATEGORY_NAMES))))
    ordered = sorted(categories, key=lambda c: c["id"])
    return ({c["id"]: i for i, c in enumerate(ordered, 1)}, ["__background__"] + [c["name"] for c in ordered],
            [None] + [c["id"] for c in ordered])


def make_optimizer(name, params, lr, weight_decay):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def train(args):
    """Train (or fine-tune, or resume) Mask R-CNN as the flags say; returns the final val stats."""
    check_outputs_apart({"--image_dir": args.image_dir, "--annotation": args.annotation,
                         "--val_image_dir": args.val_image_dir, "--val_annotation": args.val_annotation,
                         "--weight_path": args.weight_path,
                         "--weights": args.weights if os.path.isfile(args.weights) else None},
                        {"--checkpoint_dir": args.checkpoint_dir})
    dist = init_distributed(args.device)
    seed_everything(args.seed + dist.rank)
    amp = resolve_amp(args.amp, dist.device)
    init_state, init_config = (load_detector_checkpoint(args.weight_path) if args.weight_path
                               else (None, None))
    model_name = init_config["model"] if init_config else args.model
    probe = CocoDetection(args.image_dir, args.annotation, train=True, with_masks=False)
    category_map = load_category_map(args.category_map)
    label_map, names, category_ids = label_space(probe.categories, args.weights, init_config,
                                                 category_map, args.annotation,
                                                 present_categories(probe.coco_dict))
    # Mask R-CNN needs a mask on every instance: a box-only or mixed set stops with the way out
    train_set = CocoDetection(args.image_dir, args.annotation, train=True, label_map=label_map,
                              transforms=T.training_augmentation(args.augment),
                              with_masks=model_name.startswith("maskrcnn"))
    num_classes = args.num_classes or len(names)
    if num_classes < len(names):
        raise UserError(f"--num_classes {num_classes}: the annotation needs {len(names)} "
                        f"(background included)")
    names = names + [f"class_{i}" for i in range(len(names), num_classes)]
    category_ids = list(category_ids) + [None] * (num_classes - len(category_ids))
    model = build_detector(model_name, num_classes, "none" if init_state else args.weights,
                           args.trainable_backbone_layers, args.min_size, args.max_size)
    if init_state:
        load_detector_weights(model, init_state, args.weight_path)
    config = detector_config(model_name, names, model.transform.min_size[0], model.transform.max_size,
                             category_ids)
    resume_path = checkpoint_to_resume(args.resume, args.checkpoint_dir, announce=dist.is_main)
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    if dist.is_main:
        write_run_metadata(args.checkpoint_dir, args, world_size=dist.world_size)
    model.to(dist.device)
    if dist.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(args.optimizer, params, args.lr, args.weight_decay)
    scheduler = build_lr_scheduler(optimizer, args.lr_step_size, args.lr_milestones, args.lr_gamma)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    start_epoch = 0
    if resume_path:
        state = load_checkpoint(resume_path)
        check_same_config(resume_path, state.get("config"), config, ("model", "num_classes"))
        start_epoch = resume_training(state, model, optimizer, scheduler, scaler)

    loader = detection_loader(train_set, args.batch_size, train=True, workers=args.workers,
                              seed=args.seed)
    val_loader = None
    if args.val_image_dir and args.val_annotation and args.eval_every > 0:
        val_probe = CocoDetection(args.val_image_dir, args.val_annotation)
        val_set = CocoDetection(args.val_image_dir, args.val_annotation, label_map=match_categories(
            present_categories(val_probe.coco_dict), names, category_map, args.val_annotation))
        val_loader = detection_loader(val_set, args.batch_size, train=False, workers=args.workers)
    last_stats = {}

    def validate(epoch):
        if val_loader is None or args.eval_every <= 0:
            return None
        if (epoch + 1) % args.eval_every and epoch + 1 != args.epochs:
            return None
        sync_buffers(model)
        iou_types = ("bbox", "segm") if model_name.startswith("maskrcnn") else ("bbox",)
        stats = evaluate(unwrap(model), val_loader, dist.device, iou_types, amp=amp,
                         backend=args.coco_backend)
        last_stats.clear()
        last_stats.update(stats)
        return {f"val_{t}_{k}": v for t, s in stats.items() for k, v in s.items() if k in ("AP", "AP50")}

    fit(model, optimizer, scheduler, loader, dist.device, epochs=args.epochs,
        checkpoint_dir=args.checkpoint_dir, config=config, start_epoch=start_epoch, scaler=scaler,
        amp=amp, warmup_iters=args.warmup_iters, max_grad_norm=args.max_grad_norm or None,
        checkpoint_every=args.checkpoint_epoch, on_epoch_end=validate)
    if last_stats and is_main_process():
        atomic_write_json(os.path.join(args.checkpoint_dir, "val_stats.json"), last_stats)
    return last_stats
