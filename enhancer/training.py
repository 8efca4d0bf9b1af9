"""enhancer/train.py's trainer: Zero-DCE++ zero-reference, or the DIP enhancer through a frozen
detector or jointly with it, on the one trainer skeleton (torch_utils_lib.engine.training)."""
import os

import torch

from enhancer.data import DarkImages, detection_set, image_names
from enhancer.models import OBJECTIVES, build_enhancer
from enhancer.zero_dce import ZeroReferenceObjective
from torch_utils_lib.data.categories import load_category_map
from torch_utils_lib.runtime.checkpoint import save_checkpoint
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.loaders import detection_loader
from torch_utils_lib.engine.loop import build_lr_scheduler, detection_losses
from torch_utils_lib.models.detectors import check_dataset_inputs
from torch_utils_lib.models.frozen_detector import ImageModuleDetector, load_frozen_detector
from torch_utils_lib.toolkit.paths import sample_annotation, sample_low_light
from torch_utils_lib.engine.training import Trainer

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


class EnhancerTrainer(Trainer):
    """Zero-DCE++ learns from its zero-reference losses on dark images alone; the DIP enhancer from
    the detector's losses on boxed dark images, the detector frozen or (joint) learning too."""

    resume_keys = RESUME_KEYS

    def inputs(self):
        args = self.args
        return {"--image_dir": args.image_dir, "--annotation": args.annotation, "--detector": args.detector,
                "--category_map": args.category_map}

    def build(self):
        args = self.args
        self.config = {"model": args.model, "objective": args.objective}
        if args.model == "zero_dce":
            self.config.update(scale_factor=args.scale_factor, exposure=args.exposure,
                               image_size=args.image_size)
            enhancer = build_enhancer(self.config)
            self.model, self.saved_model = ZeroReferenceObjective(enhancer, args.exposure), enhancer
            dataset = DarkImages(args.image_dir, image_names(args.image_dir, args.annotation),
                                 args.image_size, min_size=enhancer.min_training_size,
                                 with_index=True)
            # whole images (--image_size 0) of mixed sizes: each batch holds one size
            self.loader = detection_loader(dataset, args.batch_size, train=True,
                                           workers=args.workers, seed=args.seed,
                                           collate=torch.utils.data.default_collate,
                                           group_ids=dataset.group_ids)
            groups = [{"params": list(enhancer.parameters())}]
        else:
            detector, detector_config = load_frozen_detector(args.detector, args.detector_weights,
                                                             self.device)
            self.config.update(parameter_size=args.parameter_size, detector=args.detector,
                               detector_weights=args.detector_weights,
                               detector_config=detector_config)
            enhancer = build_enhancer(self.config)
            dataset = detection_set(args.image_dir, args.annotation, detector_config["categories"],
                                    load_category_map(args.category_map))
            check_dataset_inputs(detector, dataset)  # before the first step, naming the file
            joint = args.objective == "joint"
            if joint:
                detector.requires_grad_(True)
            self.model = ImageModuleDetector(enhancer, detector, frozen=not joint,
                                             boxes_only=not dataset.with_masks)
            # joint: checkpoints hold the enhancer and the detector together
            self.saved_model = self.model if joint else enhancer
            self.loader = detection_loader(dataset, args.batch_size, train=True,
                                           workers=args.workers, seed=args.seed)
            groups = [{"params": list(enhancer.parameters())}]
            if joint:
                groups.append({"params": list(detector.parameters()), "lr": args.detector_lr})
        self.optimizer = torch.optim.Adam(groups, lr=args.lr, weight_decay=args.weight_decay)
        self.scheduler = build_lr_scheduler(self.optimizer, args.lr_step_size, args.lr_milestones,
                                            args.lr_gamma)

    def loss(self, model, batch, device):
        if self.args.model == "zero_dce":
            images, _ = batch  # (images, their indices)
            return model(images.to(device, non_blocking=True))  # the four zero-reference terms
        return detection_losses(model, batch, device)

    def batch_names(self, batch):
        if self.args.model == "zero_dce":
            dataset = self.loader.dataset
            return [os.path.join(dataset.image_dir, dataset.names[int(i)]) for i in batch[1]]
        return super().batch_names(batch)


def train(args):
    """Train (or resume) as the flags say; returns the per-epoch history."""
    trainer = EnhancerTrainer(resolve_defaults(args))
    history = trainer.run()
    if args.objective == "joint" and trainer.dist.is_main:
        # the fine-tuned detector alone, as mask_rcnn/train.py writes one: what scores the
        # enhanced images (mask_rcnn/evaluate.py --weight_path, the study)
        save_checkpoint(os.path.join(args.checkpoint_dir, JOINT_DETECTOR), trainer.model.detector,
                        trainer.config["detector_config"], epoch=args.epochs - 1)
    return history
