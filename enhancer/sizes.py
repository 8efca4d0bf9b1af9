"""What image sizes each enhancer can take, and the ranges of enhancer/train.py's size flags.

Torch-free: the flag checks (at parse time, before torch loads) and the per-image checks (the
models and the training data) read these same numbers.
"""

# Zero-DCE++ training: the exposure loss averages 16x16 patches (the release's), so a training
# image (or --image_size crop) needs at least 16 pixels a side. Enhancing has no minimum.
ZERO_DCE_EXPOSURE_PATCH = 16
ZERO_DCE_MIN_TRAINING_SIZE = ZERO_DCE_EXPOSURE_PATCH
# --image_size: a crop of 2048 px a side holds 16x the release's 512 px; memory grows with
# image_size^2 x batch_size (at --scale_factor 1, about 10 GB per 2048 px image).
ZERO_DCE_MAX_CROP = 2048
# --scale_factor: the curve maps are estimated on the input downscaled by this (release: 12 at
# test, 1 in training); past 64 a 2048 px crop is estimated on 32 pixels a side.
ZERO_DCE_MAX_SCALE_FACTOR = 64

# The DIP enhancer takes any image (its sharpening pads small images by replication). Its
# parameter CNN's five stride-2 convolutions reach 1x1 at a 32 px thumbnail; 1024 px is 16x
# IA-YOLO's 256 px.
DIP_MIN_PARAMETER_SIZE = 32
DIP_MAX_PARAMETER_SIZE = 1024

# what each model needs of an image: {model: (to train on, to enhance)} in pixels a side
MIN_IMAGE_SIZE = {"zero_dce": (ZERO_DCE_MIN_TRAINING_SIZE, 1), "dip": (1, 1)}
