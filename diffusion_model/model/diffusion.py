"""Image-conditioned Gaussian diffusion: noise schedules, training loss, DDPM and DDIM samplers.

Images and conditions live in [-1, 1]. The network predicts either the noise (`eps`, as in
DDPM, Ho et al. 2020) or `v = sqrt(a) * eps - sqrt(1 - a) * x0` (Salimans & Ho 2022), which keeps the target's
scale constant across steps. DDIM (Song et al. 2021) reuses the same trained network with far
fewer steps; eta=0 makes it deterministic given the initial noise.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from diffusion_model.model.unet import UNet
from torch_utils_lib.toolkit.flag_choices import DIFFUSION_OBJECTIVES, DIFFUSION_SCHEDULES
from torch_utils_lib.toolkit.progress import progress

SCHEDULES, OBJECTIVES = DIFFUSION_SCHEDULES, DIFFUSION_OBJECTIVES
SAMPLERS = ("ddim", "ddpm")


def linear_betas(timesteps):
    """Ho et al.'s 1e-4..0.02 over 1000 steps, rescaled so shorter schedules also end near pure noise."""
    scale = 1000.0 / timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)


def cosine_betas(timesteps, s=0.008):
    """Nichol & Dhariwal's cosine schedule: alphas_cumprod follows cos^2, betas capped at 0.999."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    return (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(0, 0.999)


def make_betas(schedule, timesteps):
    """Betas (float64) of the named schedule."""
    if schedule == "linear":
        return linear_betas(timesteps)
    if schedule == "cosine":
        return cosine_betas(timesteps)
    raise ValueError(f"unknown schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")


def _extract(values, t, ndim):
    """values[t] shaped to broadcast over a batch of images."""
    return values.gather(0, t).reshape(-1, *([1] * (ndim - 1)))


def gaussian_noise(shape, device, generators=None):
    """Standard normal noise; with one CPU generator per image, each image's noise is the same
    whatever the batch it is in and whatever the device (so outputs are reproducible)."""
    if generators is None:
        return torch.randn(shape, device=device)
    return torch.stack([torch.randn(shape[1:], generator=g) for g in generators]).to(device)


class ConditionalDiffusion(nn.Module):
    """Wraps the UNet: `forward(x0, cond)` is the training loss, `sample(cond)` restores."""

    def __init__(self, unet, timesteps=1000, schedule="linear", objective="eps"):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r} (choose from {', '.join(OBJECTIVES)})")
        self.unet, self.timesteps, self.schedule, self.objective = unet, timesteps, schedule, objective
        betas = make_betas(schedule, timesteps)
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
        posterior_variance = betas * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)
        buffers = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt(),
            # the first posterior variance is 0; its log is clipped to the second's (as in DDPM)
            "posterior_log_variance": torch.log(torch.cat((posterior_variance[1:2],
                                                           posterior_variance[1:]))),
            "posterior_mean_coef1": betas * alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod),
            "posterior_mean_coef2": (1 - alphas_cumprod_prev) * (1 - betas).sqrt() / (1 - alphas_cumprod),
        }
        # computed in float64, stored in float32; not persistent: they follow from the config
        for name, value in buffers.items():
            self.register_buffer(name, value.float(), persistent=False)

    @property
    def config(self):
        """Everything needed to rebuild this model (stored in checkpoints)."""
        return {"unet": dict(self.unet.config), "timesteps": self.timesteps,
                "schedule": self.schedule, "objective": self.objective}

    # ------------------------------------------------------------ training

    def q_sample(self, x0, t, noise):
        """x_t ~ q(x_t | x_0)."""
        return (_extract(self.sqrt_alphas_cumprod, t, x0.ndim) * x0
                + _extract(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise)

    def forward(self, x0, cond):
        """Mean squared error of the network's eps or v prediction at a random step per image."""
        t = torch.randint(0, self.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.q_sample(x0, t, noise)
        prediction = self.unet(x_t, t, cond).float()
        if self.objective == "eps":
            target = noise
        else:
            target = (_extract(self.sqrt_alphas_cumprod, t, x0.ndim) * noise
                      - _extract(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * x0)
        return F.mse_loss(prediction, target)

    # ------------------------------------------------------------ sampling

    def predict(self, x_t, t, cond, clip=True, amp=False):
        """The network's (eps, x0) estimates at step t; x0 clipped to [-1, 1] and eps re-derived
        from it, which keeps few-step DDIM from drifting out of range."""
        with torch.autocast(x_t.device.type, enabled=amp):
            out = self.unet(x_t, t, cond).float()
        sqrt_a = _extract(self.sqrt_alphas_cumprod, t, x_t.ndim)
        sqrt_1ma = _extract(self.sqrt_one_minus_alphas_cumprod, t, x_t.ndim)
        if self.objective == "eps":
            x0 = (x_t - sqrt_1ma * out) / sqrt_a
        else:
            x0 = sqrt_a * x_t - sqrt_1ma * out
        if clip:
            x0 = x0.clamp(-1, 1)
        eps = (x_t - sqrt_a * x0) / sqrt_1ma
        return eps, x0

    @torch.no_grad()
    def ddpm_sample(self, cond, generators=None, on_step=None, amp=False, progress=False):
        """Ancestral sampling through all `timesteps` steps (DDPM's sampler)."""
        x = gaussian_noise(cond.shape[:1] + (self.unet.channels,) + cond.shape[2:], cond.device,
                           generators)
        steps = list(reversed(range(self.timesteps)))
        for i, step in enumerate(_progress(steps, progress, "ddpm")):
            t = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
            _, x0 = self.predict(x, t, cond, amp=amp)
            mean = (_extract(self.posterior_mean_coef1, t, x.ndim) * x0
                    + _extract(self.posterior_mean_coef2, t, x.ndim) * x)
            if step > 0:
                noise = gaussian_noise(x.shape, x.device, generators)
                x = mean + (0.5 * _extract(self.posterior_log_variance, t, x.ndim)).exp() * noise
            else:
                x = mean
            if on_step is not None:
                on_step(i, len(steps), x, x0)
        return x

    @torch.no_grad()
    def ddim_sample(self, cond, steps=50, eta=0.0, generators=None, on_step=None, amp=False,
                    progress=False):
        """DDIM with `steps` evenly spaced steps; eta=0 deterministic, eta=1 DDPM-like noise."""
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"DDIM steps must be between 1 and {self.timesteps}, got {steps}")
        if not 0 <= eta <= 1:
            raise ValueError(f"DDIM eta must be between 0 and 1, got {eta}")
        times = torch.linspace(-1, self.timesteps - 1, steps + 1).round().long().tolist()
        pairs = list(zip(reversed(times[1:]), reversed(times[:-1])))
        x = gaussian_noise(cond.shape[:1] + (self.unet.channels,) + cond.shape[2:], cond.device,
                           generators)
        for i, (step, next_step) in enumerate(_progress(pairs, progress, "ddim")):
            t = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
            eps, x0 = self.predict(x, t, cond, amp=amp)
            if next_step < 0:
                x = x0
            else:
                alpha, alpha_next = self.alphas_cumprod[step], self.alphas_cumprod[next_step]
                sigma = eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
                # clamped: with eta 1 and few steps of the cosine schedule (alphas_cumprod[-1]
                # ~ 2e-9) the difference is a rounding error below zero in float32
                x = alpha_next.sqrt() * x0 + (1 - alpha_next - sigma ** 2).clamp(min=0).sqrt() * eps
                if eta > 0:
                    x = x + sigma * gaussian_noise(x.shape, x.device, generators)
            if on_step is not None:
                on_step(i, len(pairs), x, x0)
        return x

    def sample(self, cond, sampler="ddim", steps=50, eta=0.0, generators=None, on_step=None,
               amp=False, progress=False):
        """Restore a batch of conditions ([-1, 1]) with the chosen sampler; returns [-1, 1]."""
        if sampler == "ddpm":
            return self.ddpm_sample(cond, generators, on_step, amp, progress)
        if sampler == "ddim":
            return self.ddim_sample(cond, steps, eta, generators, on_step, amp, progress)
        raise ValueError(f"unknown sampler {sampler!r} (choose from {', '.join(SAMPLERS)})")


def _progress(iterable, enabled, desc):
    if not enabled:
        return iterable
    return progress(iterable, desc=desc)


def build_diffusion(config):
    """Rebuild a ConditionalDiffusion from its `config` (as stored in a checkpoint)."""
    unet_config = dict(config["unet"])
    unet = UNet(**unet_config)
    return ConditionalDiffusion(unet, timesteps=config["timesteps"], schedule=config["schedule"],
                                objective=config["objective"])
