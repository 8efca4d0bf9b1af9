"""What image sizes the diffusion model takes, and the ranges of its scripts' size flags.

Torch-free: the flags are checked at parse time, before torch loads. The UNet pads any input to
a multiple of 2**(levels - 1) (replicate) and crops back, so restoring has no minimum image size.
"""

# --image_size: the training crop (0: whole images). 8 px is the default UNet's three
# downsamplings to one pixel; a 2048 px crop is 32x the default 64 px and, batched, fills a GPU.
CROP_RANGE = (8, 2048)
# --timesteps: 10000 is 10x Ho et al.'s 1000; DDPM sampling runs every one of them per image
TIMESTEPS_RANGE = (1, 10000)
# --steps / --sample_steps: DDIM steps, at most the model's timesteps (checked against a checkpoint)
SAMPLING_STEPS_RANGE = TIMESTEPS_RANGE
# --dim: UNet channels at full resolution (even: sin/cos time features); 1024 is 16x the
# released models' 64
DIM_RANGE = (2, 1024)
# --num_blocks: ConvNeXt blocks per level
NUM_BLOCKS_RANGE = (1, 16)
# --dim_mults: at most 8 levels (a 2**7 = 128 px padding multiple)
MAX_LEVELS = 8
