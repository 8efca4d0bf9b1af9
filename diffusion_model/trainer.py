"""The training run behind train.py: data, model, EMA, resume and the epoch loop (engine.fit)."""
import os

import torch
from torch.utils.data import default_collate

from diffusion_model.data import PairedImageDataset, read_pair, resolve_names
from diffusion_model.ema import EMA
from diffusion_model.model.diffusion import build_diffusion
from diffusion_model.preview import center_crop, save_training_preview
from torch_utils_lib.checkpoint import (check_same_config, checkpoint_to_resume, load_checkpoint,
                                        resume_training)
from torch_utils_lib.cli import UserError, check_outputs_apart
from torch_utils_lib.data import detection_loader
from torch_utils_lib.devices import resolve_amp, seed_everything
from torch_utils_lib.distributed import cleanup_distributed, init_distributed
from torch_utils_lib.engine import build_lr_scheduler, fit
from torch_utils_lib.runinfo import write_run_metadata

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
    """engine.train_one_epoch's loss_fn: the denoising MSE of a (x0, cond) batch."""
    x0, cond = batch
    return {"mse": model(x0.to(device, non_blocking=True), cond.to(device, non_blocking=True))}


def config_from_args(args):
    return {"unet": {"dim": args.dim, "dim_mults": list(args.dim_mults),
                     "num_blocks": args.num_blocks, "channels": 3, "cond_channels": 3,
                     "attn_levels": list(range(1, len(args.dim_mults))), "convnext_mult": 2},
            "timesteps": args.timesteps, "schedule": args.schedule, "objective": args.objective}


def train(args):
    """Train (or resume) as configured by train.py's arguments."""
    dist_info = init_distributed(args.device)
    device = dist_info.device
    amp = resolve_amp(args.amp, device)
    seed_everything(args.seed + dist_info.rank)
    names = resolve_names([args.input_image_dir, args.conditional_image_dir], args.annotation)
    check_outputs_apart(
        {"--input_image_dir": args.input_image_dir, "--conditional_image_dir": args.conditional_image_dir,
         "--annotation": args.annotation, "--weight_path": args.weight_path,
         "--annotation entry": [os.path.join(d, n) for n in names
                                for d in (args.input_image_dir, args.conditional_image_dir)]},
        {"--checkpoint_dir": args.checkpoint_dir})

    resume_path = checkpoint_to_resume(args.resume, args.checkpoint_dir, announce=dist_info.is_main)
    state = init = None
    if resume_path:
        state = load_checkpoint(resume_path)
        config = checkpoint_config(state, resume_path)
        check_same_config(resume_path, config, config_from_args(args))
    elif args.weight_path:
        init = load_checkpoint(args.weight_path)
        config = checkpoint_config(init, args.weight_path)
    else:
        config = config_from_args(args)

    diffusion = build_diffusion(config).to(device)
    if init is not None:
        diffusion.load_state_dict(sampling_weights(init))
    ema = EMA(diffusion, args.ema_decay)
    optimizer = torch.optim.AdamW(diffusion.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = build_lr_scheduler(optimizer, args.lr_step_size, args.lr_milestones, args.lr_gamma)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    start_epoch = 0
    if state is not None:
        start_epoch = resume_training(state, diffusion, optimizer, scheduler, scaler, ema)
    n_params = sum(p.numel() for p in diffusion.parameters())
    if dist_info.is_main:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
        write_run_metadata(args.checkpoint_dir, args, config=config, pairs=len(names),
                           parameters=n_params, amp=amp, world_size=dist_info.world_size)
        print(f"{len(names)} pairs, UNet {n_params / 1e6:.2f} M parameters, {config['schedule']} "
              f"schedule, {config['timesteps']} steps, {config['objective']} objective, on {device}"
              f"{' with AMP' if amp else ''}")

    model = diffusion
    if dist_info.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            diffusion, device_ids=[device.index] if device.type == "cuda" else None)
    dataset = PairedImageDataset(args.input_image_dir, args.conditional_image_dir, names,
                                 image_size=args.image_size or None)
    loader = detection_loader(dataset, args.batch_size, train=True, workers=args.workers,
                              seed=args.seed, collate=default_collate)
    if args.image_size == 0 and args.batch_size > 1:
        sizes = {read_pair(os.path.join(args.input_image_dir, n),
                           os.path.join(args.conditional_image_dir, n))[0].shape for n in names}
        if len(sizes) > 1:
            raise UserError(f"{args.input_image_dir}: images differ in size; set --image_size "
                            f"to crop them or use --batch_size 1")

    preview = [read_pair(os.path.join(args.input_image_dir, n), os.path.join(args.conditional_image_dir, n))
               for n in names[:PREVIEW_PAIRS]]
    preview_targets = [center_crop(t, PREVIEW_SIZE) for t, _ in preview]
    preview_conds = [center_crop(c, PREVIEW_SIZE) for _, c in preview]
    if len({t.shape for t in preview_targets}) > 1:  # mixed sizes: preview the first only
        preview_targets, preview_conds = preview_targets[:1], preview_conds[:1]

    def on_epoch_end(epoch):
        if not (dist_info.is_main and args.sample_every and (epoch + 1) % args.sample_every == 0):
            return {}
        path = os.path.join(args.checkpoint_dir, f"samples_epoch_{epoch + 1}.png")
        save_training_preview(path, ema.shadow, preview_targets, preview_conds, device,
                              steps=min(args.sample_steps, config["timesteps"]), amp=amp)
        return {"preview": path}

    try:
        fit(model, optimizer, scheduler, loader, device, epochs=args.epochs,
            checkpoint_dir=args.checkpoint_dir, config=config, start_epoch=start_epoch,
            loss_fn=diffusion_loss, scaler=scaler, amp=amp, max_grad_norm=args.max_grad_norm or None,
            checkpoint_every=args.checkpoint_epoch, on_epoch_end=on_epoch_end,
            after_step=lambda: ema.update(diffusion), ema=ema)
    finally:
        cleanup_distributed()
    if dist_info.is_main:
        print(f"checkpoint: {os.path.join(args.checkpoint_dir, 'last.pth')}")
