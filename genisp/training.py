"""The training run behind train.py: GenISP learns through a frozen detector's own losses."""
import os

import torch

from genisp.detection import GENISP_CONFIG_NAME, check_raw_inputs, load_genisp, raw_dataset
from genisp.model import GenISP, GenISPDetector
from torch_utils_lib.data.categories import load_category_map
from torch_utils_lib.data.loaders import detection_loader
from torch_utils_lib.engine.loop import build_lr_scheduler
from torch_utils_lib.models.frozen_detector import load_frozen_detector
from torch_utils_lib.toolkit.tables import markdown_table
from torch_utils_lib.engine.training import Trainer


class GenISPTrainer(Trainer):
    """Only GenISP's weights learn and are saved; the detector (RetinaNet: focal + smooth-L1
    losses) stays frozen inside the trained module."""

    resume_keys = ("model", "parameter_size", "resize", "detector", "detector_weights")

    def cache_dir(self):
        return None if self.args.cache_dir.lower() == "none" else self.args.cache_dir

    def inputs(self):
        args = self.args
        return {"--raw_dir": args.raw_dir, "--annotation": args.annotation, "--weight_path": args.weight_path,
                "--detector": args.detector, "--detector_weights": args.detector_weights}

    def outputs(self):
        return {"--checkpoint_dir": self.args.checkpoint_dir, "--cache_dir": self.cache_dir()}

    def build(self):
        args = self.args
        resize = tuple(args.resize) if all(args.resize) else None
        detector, detector_config = load_frozen_detector(args.detector, args.detector_weights,
                                                         self.device)
        categories = list(detector_config["categories"])
        check_raw_inputs(detector, args.raw_dir, args.annotation)
        dataset = raw_dataset(args.raw_dir, args.annotation, categories, "minimal",
                              self.cache_dir(), resize, train=True,
                              category_map=load_category_map(args.category_map))
        self.loader = detection_loader(dataset, args.batch_size, train=True, workers=args.workers,
                                       seed=args.seed)
        genisp = GenISP(args.parameter_size)
        if args.weight_path:
            genisp.load_state_dict(load_genisp(args.weight_path)[0].state_dict())
        self.model = GenISPDetector(genisp, detector, args.color_loss_weight)
        self.saved_model = genisp
        self.optimizer = torch.optim.Adam(genisp.parameters(), lr=args.lr)
        self.scheduler = build_lr_scheduler(self.optimizer, args.lr_step_size, args.lr_milestones,
                                            args.lr_gamma)
        self.config = {"model": GENISP_CONFIG_NAME, "parameter_size": genisp.parameter_size,
                       "resize": list(resize) if resize else None, "detector": args.detector,
                       "detector_weights": args.detector_weights, "categories": categories}


def loss_table(history):
    """The per-epoch losses as a Markdown table."""
    rows = {r["epoch"] + 1: {k: v for k, v in r.items() if k != "epoch"} for r in history}
    columns = list(rows[max(rows)]) if rows else []
    return markdown_table(rows, "epoch", columns, {"lr": ".0e", **{k: ".4f" for k in columns
                                                                 if k != "lr"}})


def train(args):
    """Train (or resume) GenISP as train.py's flags say; prints the loss table."""
    trainer = GenISPTrainer(args)
    history = trainer.run()
    if trainer.dist.is_main:
        print(loss_table(history))
        print(f"GenISP weights: {os.path.join(args.checkpoint_dir, 'last.pth')}")
    return history
