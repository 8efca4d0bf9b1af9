"""Exponential moving average of the weights: sampling uses these smoother weights."""
import copy

import torch

from torch_utils_lib.engine.hooks import Hook


class EMA:
    """Shadow copy of a model, updated as shadow = d * shadow + (1 - d) * weights after each step.

    The decay warms up as min(decay, (1 + n) / (10 + n)) so that short runs are not dominated
    by the random initial weights.
    """

    def __init__(self, model, decay=0.999):
        self.decay = decay
        self.num_updates = 0
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        shadow = self.shadow.state_dict()
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                shadow[name].lerp_(value.detach(), 1 - decay)
            else:
                shadow[name].copy_(value)

    def state_dict(self):
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow": self.shadow.state_dict()}

    def load_state_dict(self, state):
        self.decay, self.num_updates = state["decay"], state["num_updates"]
        self.shadow.load_state_dict(state["shadow"])


class EMAUpdate(Hook):
    """engine.fit hook: update `ema` from `model` after every step; checkpoints carry it."""

    def __init__(self, ema, model):
        self.ema, self.model = ema, model

    def after_step(self):
        self.ema.update(self.model)

    def checkpoint_state(self):
        return {"ema": self.ema}
