"""What image sizes GenISP takes, and the ranges of its scripts' size flags.

Torch-free: the flags are checked at parse time, before torch loads. A RAW file is packed 2x2
(its Bayer cell) into a half-size image; GenISP's ConvWB and ConvCC see it through a
--parameter_size thumbnail (any size resizes to it), and the frozen detector resizes it to its
input, which takes images up to max_size:1 (models.detectors.check_detector_input refuses the
more elongated ones by name before the first step).
"""
from torch_utils_lib.toolkit.flag_choices import DETECTOR_SIZE_RANGE

# --parameter_size: ConvWB and ConvCC's three 2x2 poolings need 8 px; 1024 is 4x the paper's 256
PARAMETER_SIZE_RANGE = (8, 1024)
# --resize LONG SHORT: a detector's input, or 0 0 for the packed size
RESIZE_RANGE = DETECTOR_SIZE_RANGE
# the smallest RAW file: LibRaw declares images under 22 pixels a side "not RAW" (its decode
# error names the file); dataset/dng.py and the physics synthesis' --save_raw refuse them
MIN_RAW_SIZE = 22
