"""Mask R-CNN training: data, model, optimizer and schedule from flags; resumable; DDP-ready."""
import os

import torch

from torch_utils_lib.evaluation.metrics import SUMMARY_STATS
from torch_utils_lib.data import transforms as T
from torch_utils_lib.data.categories import (all_categories_match, load_category_map, match_categories,
                                       present_categories)
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.flag_choices import check_detector_training_sizes
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.data.loaders import detection_loader
from torch_utils_lib.models.detectors import (COCO_CATEGORY_NAMES, build_detector,
                                              check_dataset_inputs, detector_config, family_of,
                                              load_detector_checkpoint, load_detector_weights)
from torch_utils_lib.engine.loop import build_lr_scheduler, evaluate
from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.runtime.distributed import is_main_process, sync_buffers
from torch_utils_lib.engine.hooks import Hook, every
from torch_utils_lib.engine.training import Trainer


def label_space(categories, weights, init_config=None, category_map=None, source="annotation",
                present=None):
    """(label_map, names by label, category id by label) for training.

    Classes match by name (torch_utils_lib.data.categories), never by id. A checkpoint given with
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


class MaskRCNNTrainer(Trainer):
    """Mask R-CNN (or another torchvision detector) on a COCO set, validated every --eval_every."""

    resume_keys = ("model", "num_classes")

    def inputs(self):
        args = self.args
        return {"--image_dir": args.image_dir, "--annotation": args.annotation,
                "--val_image_dir": args.val_image_dir, "--val_annotation": args.val_annotation,
                "--weight_path": args.weight_path,
                "--weights": args.weights if os.path.isfile(args.weights) else None}

    def build(self):
        args = self.args
        init_state, init_config = (load_detector_checkpoint(args.weight_path) if args.weight_path
                                   else (None, None))
        self.model_name = init_config["model"] if init_config else args.model
        check_detector_training_sizes(self.model_name, args.min_size, args.max_size)
        probe = CocoDetection(args.image_dir, args.annotation, train=True, with_masks=False)
        self.category_map = load_category_map(args.category_map)
        label_map, names, category_ids = label_space(probe.categories, args.weights, init_config,
                                                     self.category_map, args.annotation,
                                                     present_categories(probe.coco_dict))
        # Mask R-CNN needs a mask on every instance: a box-only or mixed set stops with the way out
        train_set = CocoDetection(args.image_dir, args.annotation, train=True, label_map=label_map,
                                  transforms=T.training_augmentation(args.augment),
                                  with_masks=family_of(self.model_name).has_masks)
        num_classes = args.num_classes or len(names)
        if num_classes < len(names):
            raise UserError(f"--num_classes {num_classes}: the annotation needs {len(names)} "
                            f"(background included)")
        self.names = names + [f"class_{i}" for i in range(len(names), num_classes)]
        category_ids = list(category_ids) + [None] * (num_classes - len(category_ids))
        self.model = build_detector(self.model_name, num_classes,
                                    "none" if init_state else args.weights,
                                    args.trainable_backbone_layers, args.min_size, args.max_size)
        if init_state:
            load_detector_weights(self.model, init_state, args.weight_path)
        check_dataset_inputs(self.model, train_set)
        self.config = detector_config(self.model_name, self.names, self.model.transform.min_size[0],
                                      self.model.transform.max_size, category_ids)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(args.optimizer, params, args.lr, args.weight_decay)
        self.scheduler = build_lr_scheduler(self.optimizer, args.lr_step_size, args.lr_milestones,
                                            args.lr_gamma)
        self.loader = detection_loader(train_set, args.batch_size, train=True,
                                       workers=args.workers, seed=args.seed)

    def hooks(self):
        args = self.args
        if not (args.val_image_dir and args.val_annotation and args.eval_every > 0):
            return []
        val_probe = CocoDetection(args.val_image_dir, args.val_annotation)
        val_set = CocoDetection(args.val_image_dir, args.val_annotation, label_map=match_categories(
            present_categories(val_probe.coco_dict), self.names, self.category_map,
            args.val_annotation))
        check_dataset_inputs(self.model, val_set)
        loader = detection_loader(val_set, args.batch_size, train=False, workers=args.workers)
        self.validation = Validation(self, loader, family_of(self.model_name).iou_types)
        return [self.validation]


class Validation(Hook):
    """COCO AP on the validation set every --eval_every epochs and after the last; the last
    stats go to val_stats.json."""

    def __init__(self, trainer, loader, iou_types):
        self.trainer, self.loader, self.iou_types = trainer, loader, iou_types
        self.stats = {}

    def after_epoch(self, epoch, record):
        t = self.trainer
        if not every(t.args.eval_every, epoch, t.args.epochs):
            return None
        sync_buffers(t.model)
        self.stats = evaluate(t.model, self.loader, t.device, self.iou_types, amp=t.amp,
                              backend=t.args.coco_backend)
        return {f"val_{i}_{k}": v for i, s in self.stats.items() for k, v in s.items()
                if k in SUMMARY_STATS}

    def after_train(self, history):
        if self.stats and is_main_process():
            atomic_write_json(os.path.join(self.trainer.args.checkpoint_dir, "val_stats.json"),
                              self.stats)


def train(args):
    """Train (or fine-tune, or resume) Mask R-CNN as the flags say; returns the final val stats."""
    trainer = MaskRCNNTrainer(args)
    trainer.run()
    validation = getattr(trainer, "validation", None)
    return validation.stats if validation else {}
