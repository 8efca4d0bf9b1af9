"""The one training run every trainer shares (detectron2's DefaultTrainer is the model).

A trainer subclasses Trainer and supplies what differs: `build()` (model, optimizer, scheduler,
data loader, config), `loss`, `hooks()`, `inputs()` and, optionally, `resume_keys` and
`run_info()`. `Trainer(args).run()` does the rest, the same way for all: inputs and outputs
apart, torchrun set-up, seeding (--seed + rank), AMP, --resume with its config check, run.json,
the DDP wrap, loss scaling, engine.fit, and the process group's clean-up.

The flags it reads: --device, --seed, --amp, --resume, --checkpoint_dir, --epochs,
--max_grad_norm, and where a script has them --warmup_iters and --checkpoint_epoch.
"""
import os

import torch

from torch_utils_lib.runtime.checkpoint import (check_same_config, checkpoint_to_resume, load_checkpoint,
                                        resume_training)
from torch_utils_lib.toolkit.guards import check_outputs_apart
from torch_utils_lib.runtime.devices import resolve_amp, seed_everything
from torch_utils_lib.runtime.distributed import cleanup_distributed, init_distributed
from torch_utils_lib.engine.loop import detection_losses, fit
from torch_utils_lib.engine.hooks import PeriodicCheckpoint
from torch_utils_lib.toolkit.runinfo import write_run_metadata


class Trainer:
    """Subclass, supply the parts below, call `run()`.

    `build()` runs after seeding, with `self.dist` (distributed.DistInfo), `self.device`,
    `self.amp`, `self.resume_path` and `self.resume_state` (the checkpoint --resume continues
    and its path, or None) set. It sets
    `self.model` (what trains; the skeleton moves it to the device and wraps it for DDP),
    `self.optimizer`, `self.loader`, `self.config` (stored in checkpoints) and optionally
    `self.scheduler` and `self.saved_model` (what checkpoints hold and --resume restores, when
    only part of `self.model` learns).
    """

    resume_keys = None  # the config keys a checkpoint must match to be resumed (None: all)

    def __init__(self, args):
        self.args = args
        self.scheduler = self.saved_model = None

    # ---------------------------------------------------------------- what a trainer supplies

    def inputs(self):
        """{flag: path or paths} the run reads (never written over)."""
        return {}

    def outputs(self):
        """{flag: path} the run writes."""
        return {"--checkpoint_dir": self.args.checkpoint_dir}

    def build(self):
        raise NotImplementedError

    def loss(self, model, batch, device):
        """{name: loss tensor} of a batch; their sum is minimised."""
        return detection_losses(model, batch, device)

    def batch_names(self, batch):
        """The file names of a batch's images, for the line that stops a diverged run (default:
        a COCO batch's, by image id; None where unknown)."""
        dataset = getattr(self.loader, "dataset", None)
        images = getattr(dataset, "images_by_id", None)
        try:
            return [images[int(t["image_id"])]["file_name"] for t in batch[1]] if images else None
        except (KeyError, TypeError, IndexError, ValueError):
            return None

    def hooks(self):
        """torch_utils_lib.engine.hooks.Hook objects fit runs (validation, previews, EMA, ...)."""
        return []

    def run_info(self):
        """Extra fields for run.json (called on the main process only, after resuming: the place
        for a one-line summary of what trains)."""
        return {}

    # ---------------------------------------------------------------- the run

    def run(self):
        """Train (or resume) to --epochs; returns engine.fit's per-epoch records."""
        check_outputs_apart(self.inputs(), self.outputs())
        self.dist = init_distributed(self.args.device)
        try:
            return self._run()
        finally:
            cleanup_distributed()

    def _run(self):
        args, dist = self.args, self.dist
        self.device = dist.device
        seed_everything(args.seed + dist.rank)
        self.amp = resolve_amp(args.amp, self.device)
        self.resume_path = checkpoint_to_resume(args.resume, args.checkpoint_dir,
                                                announce=dist.is_main)
        self.resume_state = load_checkpoint(self.resume_path) if self.resume_path else None
        self.build()
        self.model.to(self.device)  # before resuming, so the optimizer's state lands beside it
        saved_model = self.model if self.saved_model is None else self.saved_model
        hooks = [*self.hooks(), PeriodicCheckpoint(getattr(args, "checkpoint_epoch", 0))]
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        start_epoch = 0
        if self.resume_state is not None:
            check_same_config(self.resume_path, self.resume_state.get("config"), self.config,
                              self.resume_keys)
            hook_state = {k: v for hook in hooks for k, v in hook.checkpoint_state().items()}
            start_epoch = resume_training(self.resume_state, saved_model, self.optimizer,
                                          self.scheduler, scaler, **hook_state)
        if dist.is_main:
            os.makedirs(args.checkpoint_dir, exist_ok=True)
            write_run_metadata(args.checkpoint_dir, args, amp=self.amp,
                               world_size=dist.world_size, **self.run_info())
        model = self.model
        if dist.distributed:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[dist.local_rank] if self.device.type == "cuda" else None)
        return fit(model, self.optimizer, self.scheduler, self.loader, self.device,
                   epochs=args.epochs, checkpoint_dir=args.checkpoint_dir, config=self.config,
                   start_epoch=start_epoch, loss_fn=self.loss, scaler=scaler, amp=self.amp,
                   warmup_iters=getattr(args, "warmup_iters", 0),
                   max_grad_norm=args.max_grad_norm or None, saved_model=saved_model, hooks=hooks,
                   batch_names=self.batch_names)
