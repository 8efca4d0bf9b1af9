"""The training run behind train.py: data, model, EMA, resume and the epoch loop (engine.fit)."""
import os

import torch
from torch.utils.data import default_collate

from diffusion_model.data import PairedImageDataset, read_pair, resolve_names, size_groups
from diffusion_model.ema import EMA, EMAUpdate
from diffusion_model.model.diffusion import build_diffusion
from diffusion_model.preview import center_crop, save_training_preview
from torch_utils_lib.runtime.checkpoint import load_checkpoint
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.loaders import detection_loader
from torch_utils_lib.engine.loop import build_lr_scheduler
from torch_utils_lib.engine.hooks import Hook, every
from torch_utils_lib.engine.training import Trainer

CONFIG_KEYS = ("unet", "timesteps", "schedule", "objective")
PREVIEW_PAIRS, PREVIEW_SIZE = 4, 128


def checkpoint_config(state, path):
    """The model config stored in a diffusion checkpoint; UserError for other checkpoints."""
    config = state.get("config")
    if not isinstance(config, dict) or any(k not in config for k in CONFIG_KEYS):
        raise UserError(f"{path}: not a diffusion checkpoint (its config lacks "
                        f"{', '.join(CONFIG_KEYS)})")
    return config


def sampling_weights(state):
    """The weights to sample with: the EMA copy when the checkpoint has one."""
    return state["ema"]["shadow"] if state.get("ema") else state["model"]


def load_diffusion(path, device="cpu"):
    """Rebuild the diffusion model of a checkpoint from the file alone, with its EMA weights."""
    state = load_checkpoint(path)
    model = build_diffusion(checkpoint_config(state, path))
    try:
        model.load_state_dict(sampling_weights(state))
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not match the stored config ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), state


def diffusion_loss(model, batch, device):
    """engine.train_one_epoch's loss_fn: the denoising MSE of a (x0, cond[, index]) batch."""
    x0, cond = batch[:2]
    return {"mse": model(x0.to(device, non_blocking=True), cond.to(device, non_blocking=True))}


def config_from_args(args):
    return {"unet": {"dim": args.dim, "dim_mults": list(args.dim_mults),
                     "num_blocks": args.num_blocks, "channels": 3, "cond_channels": 3,
                     "attn_levels": list(range(1, len(args.dim_mults))), "convnext_mult": 2},
            "timesteps": args.timesteps, "schedule": args.schedule, "objective": args.objective}


class DiffusionTrainer(Trainer):
    """The conditional diffusion model on (normal, low-light) pairs, with EMA weights and
    preview PNGs."""

    def inputs(self):
        args = self.args
        self.names = resolve_names([args.input_image_dir, args.conditional_image_dir], args.annotation)
        return {"--input_image_dir": args.input_image_dir,
                "--conditional_image_dir": args.conditional_image_dir,
                "--annotation": args.annotation, "--weight_path": args.weight_path,
                "--annotation entry": [os.path.join(d, n) for n in self.names
                                       for d in (args.input_image_dir, args.conditional_image_dir)]}

    def build(self):
        args, names = self.args, self.names
        init = None
        if self.resume_state is not None:  # the skeleton checks its config against the flags
            checkpoint_config(self.resume_state, self.resume_path)
            self.config = config_from_args(args)
        elif args.weight_path:
            init = load_checkpoint(args.weight_path)
            self.config = checkpoint_config(init, args.weight_path)
        else:
            self.config = config_from_args(args)
        diffusion = build_diffusion(self.config).to(self.device)
        if init is not None:
            diffusion.load_state_dict(sampling_weights(init))
        self.model = diffusion
        self.ema = EMA(diffusion, args.ema_decay)
        self.optimizer = torch.optim.AdamW(diffusion.parameters(), lr=args.lr,
                                           weight_decay=args.weight_decay)
        self.scheduler = build_lr_scheduler(self.optimizer, args.lr_step_size, args.lr_milestones,
                                            args.lr_gamma)
        dataset = PairedImageDataset(args.input_image_dir, args.conditional_image_dir, names,
                                     image_size=args.image_size or None, with_index=True)
        # whole images (--image_size 0) of mixed sizes: each batch holds pairs of one size
        group_ids = size_groups(args.input_image_dir, args.conditional_image_dir, names) \
            if args.image_size == 0 else None
        self.loader = detection_loader(dataset, args.batch_size, train=True, workers=args.workers,
                                       seed=args.seed, collate=default_collate, group_ids=group_ids)

    def loss(self, model, batch, device):
        return diffusion_loss(model, batch, device)

    def batch_names(self, batch):
        dataset = self.loader.dataset
        return [os.path.join(dataset.cond_dir, dataset.names[int(i)]) for i in batch[2]]

    def hooks(self):
        return [EMAUpdate(self.ema, self.model), Preview(self)]

    def run_info(self):
        n_params = sum(p.numel() for p in self.model.parameters())
        c = self.config
        print(f"{len(self.names)} pairs, UNet {n_params / 1e6:.2f} M parameters, {c['schedule']} "
              f"schedule, {c['timesteps']} steps, {c['objective']} objective, on {self.device}"
              f"{' with AMP' if self.amp else ''}")
        return {"config": c, "pairs": len(self.names), "parameters": n_params}


class Preview(Hook):
    """samples_epoch_N.png every --sample_every epochs: the EMA model restoring a few pairs."""

    def __init__(self, trainer):
        self.trainer = trainer
        args = trainer.args
        preview = [read_pair(os.path.join(args.input_image_dir, n), os.path.join(args.conditional_image_dir, n))
                   for n in trainer.names[:PREVIEW_PAIRS]]
        self.targets = [center_crop(t, PREVIEW_SIZE) for t, _ in preview]
        self.conds = [center_crop(c, PREVIEW_SIZE) for _, c in preview]
        if len({t.shape for t in self.targets}) > 1:  # mixed sizes: preview the first only
            self.targets, self.conds = self.targets[:1], self.conds[:1]

    def after_epoch(self, epoch, record):
        t = self.trainer
        if not (t.dist.is_main and every(t.args.sample_every, epoch)):
            return None
        path = os.path.join(t.args.checkpoint_dir, f"samples_epoch_{epoch + 1}.png")
        save_training_preview(path, t.ema.shadow, self.targets, self.conds, t.device,
                              steps=min(t.args.sample_steps, t.config["timesteps"]), amp=t.amp)
        return {"preview": path}


def train(args):
    """Train (or resume) as configured by train.py's arguments."""
    trainer = DiffusionTrainer(args)
    trainer.run()
    if trainer.dist.is_main:
        print(f"checkpoint: {os.path.join(args.checkpoint_dir, 'last.pth')}")
