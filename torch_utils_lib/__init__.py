"""llvision's shared library: COCO data, paired transforms, train/eval engine, COCO AP, checkpoints.

Modules that do not need torch (cli, paths, image_io, runinfo) never import it, so torch-free
scripts such as the low-light synthesis start fast.
"""
