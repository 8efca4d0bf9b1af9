"""What image sizes GenISP takes, and the ranges of its scripts' size flags.

Torch-free: the flags are checked at parse time, before torch loads. A RAW file is packed 2x2
(its Bayer cell) into a half-size 4-channel image, so it needs at least 2x2 sensor pixels; the
detector then resizes the packed image to its input (--resize, or its min/max size).
"""
from torch_utils_lib.toolkit.flag_choices import DETECTOR_SIZE_RANGE

# --parameter_size: ConvWB and ConvCC's three 2x2 poolings need 8 px; 1024 is 4x the paper's 256
PARAMETER_SIZE_RANGE = (8, 1024)
# --resize LONG SHORT: a detector's input, or 0 0 for the packed size
RESIZE_RANGE = DETECTOR_SIZE_RANGE
# one Bayer cell: the smallest RAW image the packing makes a pixel of
MIN_RAW_SIZE = 2
