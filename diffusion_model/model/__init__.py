"""The conditional diffusion model: the UNet and the diffusion wrapper with its samplers."""
from diffusion_model.model.diffusion import ConditionalDiffusion, build_diffusion, make_betas
from diffusion_model.model.unet import UNet

__all__ = ["UNet", "ConditionalDiffusion", "build_diffusion", "make_betas"]
