"""What engine.fit runs at fixed points of training (detectron2's hooks are the model).

A hook overrides the methods it needs; fit calls them on every process, in list order:
  before_train(start_epoch)      once, before the first epoch of this run
  after_step()                   after every optimizer step (EMA updates)
  after_epoch(epoch, record)     after an epoch and the lr schedule's step, before last.pth; may
                                 return a dict of metrics for the epoch's record (validation AP,
                                 a preview's path). If it raises, last.pth still keeps the epoch.
  after_checkpoint(epoch, path)  on the main process, after last.pth (`path`) is written
  after_train(history)           once, after the last epoch
`checkpoint_state()` names objects with a state_dict that checkpoints carry and --resume
restores (an EMA: {"ema": ema}).
"""
import os

from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes


class Hook:
    """No-op base: override what the hook needs."""

    def before_train(self, start_epoch):
        pass

    def after_step(self):
        pass

    def after_epoch(self, epoch, record):
        return None

    def after_checkpoint(self, epoch, path):
        pass

    def after_train(self, history):
        pass

    def checkpoint_state(self):
        return {}


def every(n, epoch, epochs=None):
    """True after every `n`-th epoch and, when `epochs` is given, after the last (n 0: never)."""
    return bool(n) and ((epoch + 1) % n == 0 or epoch + 1 == epochs)


class PeriodicCheckpoint(Hook):
    """Keep a copy of last.pth as epoch_N.pth every `every_n` epochs (0: never)."""

    def __init__(self, every_n):
        self.every_n = every_n

    def after_checkpoint(self, epoch, path):
        if every(self.every_n, epoch):
            with open(path, "rb") as f:
                atomic_write_bytes(os.path.join(os.path.dirname(path), f"epoch_{epoch + 1}.pth"),
                                   f.read())
