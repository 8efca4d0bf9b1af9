"""Training and evaluation loops shared by Mask R-CNN, the diffusion restorer and GenISP."""
import math
import os
import sys
import time

import torch

from torch_utils_lib.evaluation.metrics import IOU_TYPES
from torch_utils_lib.toolkit.atomic_io import atomic_write_json, read_json
from torch_utils_lib.runtime.checkpoint import prepare_checkpoint_dir, save_checkpoint
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.loaders import set_loader_epoch
from torch_utils_lib.models.detectors import detections_to_cpu, keep_labels
from torch_utils_lib.runtime.devices import autocast
from torch_utils_lib.runtime.distributed import is_main_process, reduce_mean
from torch_utils_lib.engine.metric_logger import MetricLogger
from torch_utils_lib.plots.charts import plot_loss_curves


class NonFiniteLossError(UserError):
    """Training diverged: reported as one line, and no checkpoint of the broken model is written."""


class NonFiniteGradient(Exception):
    """optimizer_step met a NaN/inf gradient (train_one_epoch names the step and the images)."""


def _which_images(batch_names, batch):
    names = batch_names(batch) if batch_names is not None else None
    if not names:
        return ""
    shown = ", ".join(str(n) for n in names[:4]) + (f" and {len(names) - 4} more"
                                                   if len(names) > 4 else "")
    return f" on {'image' if len(names) == 1 else 'images'} {shown}"


def detection_losses(model, batch, device):
    """Loss dict of a torchvision detector on a (images, targets) batch."""
    images, targets = batch
    images = [image.to(device, non_blocking=True) for image in images]
    targets = [{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
                for k, v in t.items()} for t in targets]
    return model(images, targets)


def optimizer_params(optimizer):
    return [p for group in optimizer.param_groups for p in group["params"]]


def optimizer_step(loss, optimizer, scaler=None, max_grad_norm=None, params=None,
                   check_finite=False):
    """Backward and step: loss scaling when `scaler` is enabled (AMP), optional norm clipping.

    `check_finite` (without AMP, whose scaler skips such steps itself): a NaN/inf gradient
    raises NonFiniteGradient before the step, so the weights stay finite."""
    optimizer.zero_grad(set_to_none=True)
    if check_finite and not (scaler is not None and scaler.is_enabled()):
        loss.backward()
        try:  # the norm is needed for clipping anyway; unclipped: a scale by 1, values unchanged
            torch.nn.utils.clip_grad_norm_(params or optimizer_params(optimizer),
                                           max_grad_norm or math.inf, error_if_nonfinite=True)
        except RuntimeError as e:
            if "non-finite" not in str(e):
                raise
            raise NonFiniteGradient() from None
        optimizer.step()
    elif scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        if max_grad_norm:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(params or optimizer_params(optimizer), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params or optimizer_params(optimizer), max_grad_norm)
        optimizer.step()


def train_one_epoch(model, optimizer, data_loader, device, epoch, *, loss_fn=detection_losses,
                    scaler=None, amp=False, warmup_iters=0, max_grad_norm=None, log_path=None,
                    after_step=None, desc=None, batch_names=None):
    """One pass over `data_loader`; returns the mean of each loss.

    The learning rate ramps linearly from 1/1000 to its value over the first `warmup_iters`
    iterations of epoch 0. A non-finite loss stops training with NonFiniteLossError before the
    optimizer step, so the weights stay finite; so does a NaN/inf gradient of a finite loss.
    Both name the step and, where `batch_names(batch)` knows them, the batch's images.
    `after_step()` runs after every optimizer step (the hooks' EMA updates).
    """
    model.train()
    warmup = None
    if epoch == 0 and warmup_iters > 0:
        iters = min(warmup_iters, len(data_loader))
        warmup = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda i: 1.0 if i >= iters else 1e-3 + (1 - 1e-3) * i / iters)
    logger = MetricLogger(log_path, desc=desc or f"epoch {epoch}", total=len(data_loader))
    params = optimizer_params(optimizer)
    for iteration, batch in enumerate(data_loader):
        with autocast(device, amp):
            losses = loss_fn(model, batch, device)
        loss = sum(losses.values())
        if not math.isfinite(loss.item()):
            logger.close()
            detail = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            raise NonFiniteLossError(
                f"loss became {loss.item()} at epoch {epoch}, iteration {iteration}"
                f"{_which_images(batch_names, batch)} ({detail}): lower --lr or set gradient "
                f"clipping; no checkpoint was written from this state")
        try:
            optimizer_step(loss, optimizer, scaler, max_grad_norm, params, check_finite=True)
        except NonFiniteGradient:
            logger.close()
            raise NonFiniteLossError(
                f"the gradient became NaN or inf at epoch {epoch}, iteration {iteration}"
                f"{_which_images(batch_names, batch)} (loss {loss.item():.4g}): an input the "
                f"loss cannot differentiate; no checkpoint was written from this state") from None
        if after_step is not None:
            after_step()
        if warmup is not None:
            warmup.step()
        logged = {"loss": loss.detach(), **{k: v.detach() for k, v in losses.items() if k != "loss"}}
        logger.update({"epoch": epoch, "iteration": iteration, "lr": optimizer.param_groups[0]["lr"]},
                      **reduce_mean(logged))
    return logger.close()


@torch.no_grad()
def predict(model, data_loader, device, amp=False, desc="evaluating"):
    """Run `model(images)` over the loader; yields (targets, outputs on CPU) per batch."""
    model.eval()
    logger = MetricLogger(desc=desc, total=len(data_loader))
    for images, targets in data_loader:
        images = [image.to(device, non_blocking=True) for image in images]
        with autocast(device, amp):
            outputs = model(images)
        outputs = [detections_to_cpu(o) for o in outputs]
        logger.update()
        yield targets, outputs
    logger.close()


def evaluate(model, data_loader, device, iou_types=IOU_TYPES, backend="pycocotools",
             dump_to=None, amp=False, matches=None, per_category=None):
    """COCO stats of `model` on a CocoDetection loader: {iou_type: {AP, AP50, ... ARl}}.

    Only detections of labels the dataset's label map knows are scored (and dumped, with the
    dataset's own category ids). Under torchrun each process predicts its shard; results are
    gathered before scoring. `dump_to` = (folder, set name) dumps the detections in COCO results
    format per IoU type (coco_eval.detections_file). `matches` (a dict) receives the matching's ImageMatches per IoU type
    (CocoEvaluator.summarize) for a bootstrap, `per_category` (a dict) {iou_type: {class name:
    {AP, AP50, AP75}}}.
    """
    from torch_utils_lib.evaluation.coco_eval import CocoEvaluator  # pycocotools: only where AP is computed
    dataset = data_loader.dataset
    dataset = getattr(dataset, "dataset", dataset)  # a Subset of a CocoDetection
    evaluator = CocoEvaluator(dataset, iou_types, backend=backend)
    labels = set(dataset.label_map.values())
    for targets, outputs in predict(model, data_loader, device, amp):
        evaluator.update(targets, keep_labels(outputs, labels))
    stats = evaluator.summarize(matches, per_category)
    if dump_to:
        evaluator.dump(*dump_to)
    return stats


def build_lr_scheduler(optimizer, step_size=0, milestones=None, gamma=0.1):
    """The epoch-wise lr schedule of --lr_milestones or --lr_step_size (None: a constant lr)."""
    if milestones:
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, sorted(milestones), gamma)
    if step_size:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)
    return None


PLOT_INTERVAL_S = 60


def fit(model, optimizer, scheduler, train_loader, device, *, epochs, checkpoint_dir, config,
        start_epoch=0, loss_fn=detection_losses, scaler=None, amp=False, warmup_iters=0,
        max_grad_norm=None, saved_model=None, hooks=(), batch_names=None):
    """Train from `start_epoch` to `epochs`, checkpointing after every epoch.

    `checkpoint_dir/last.pth` is rewritten atomically after each epoch (what --resume reads). It
    holds `saved_model`'s weights (default: `model`; GenISP saves itself without the frozen
    detector it trains through) and the state of the objects the hooks name. Everything else a
    trainer does at the epoch's end (validation, previews, epoch_N.pth, EMA updates) is a hook
    (torch_utils_lib.engine.hooks); metrics an `after_epoch` returns are logged with the epoch's losses.
    Losses go to `train_log.jsonl`; the loss-curve PNG is redrawn at the end and at most once
    every PLOT_INTERVAL_S seconds before (drawing it costs ~1 s, more than a short epoch).
    Returns the list of per-epoch records.
    """
    log_path = prepare_checkpoint_dir(checkpoint_dir, start_epoch)
    history_path = os.path.join(checkpoint_dir, "history.json")
    last_path = os.path.join(checkpoint_dir, "last.pth")
    history = []
    if start_epoch > 0 and os.path.isfile(history_path):
        history = [h for h in read_json(history_path, "training history") if h["epoch"] < start_epoch]
    if start_epoch >= epochs and is_main_process():
        print(f"{last_path}: already trained for {start_epoch} epochs (raise --epochs to go on)")
    saved_model = model if saved_model is None else saved_model
    hook_state = {k: v for hook in hooks for k, v in hook.checkpoint_state().items()}
    last_plot = time.monotonic()

    def save_last(epoch):
        save_checkpoint(last_path, saved_model, config, optimizer=optimizer, scheduler=scheduler,
                        scaler=scaler, epoch=epoch, **hook_state)

    def after_step():
        for hook in hooks:
            hook.after_step()

    for hook in hooks:
        hook.before_train(start_epoch)
    for epoch in range(start_epoch, epochs):
        set_loader_epoch(train_loader, epoch)
        losses = train_one_epoch(model, optimizer, train_loader, device, epoch, loss_fn=loss_fn,
                                 scaler=scaler, amp=amp, warmup_iters=warmup_iters,
                                 max_grad_norm=max_grad_norm, log_path=log_path,
                                 after_step=after_step if hooks else None,
                                 desc=f"epoch {epoch + 1}/{epochs}", batch_names=batch_names)
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        record = {"epoch": epoch, "lr": lr, **{f"train_{k}": v for k, v in losses.items()}}
        try:
            for hook in hooks:
                record.update(hook.after_epoch(epoch, record) or {})
        except BaseException:  # validation or a preview failed: keep the finished epoch
            if is_main_process():
                save_last(epoch)
            raise
        history.append(record)
        if is_main_process():
            save_last(epoch)
            for hook in hooks:
                hook.after_checkpoint(epoch, last_path)
            atomic_write_json(history_path, history)
            if epoch + 1 == epochs or time.monotonic() - last_plot > PLOT_INTERVAL_S:
                plot_path = os.path.join(checkpoint_dir, "loss_curve.png")
                try:
                    plot_loss_curves(log_path, plot_path)
                except (OSError, UserError) as e:  # the checkpoint is saved; the plot is optional
                    print(f"warning: {plot_path}: loss curve not drawn ({e})", file=sys.stderr)
                last_plot = time.monotonic()
        if is_main_process():
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in record.items() if not isinstance(v, dict)))
    for hook in hooks:
        hook.after_train(history)
    return history
