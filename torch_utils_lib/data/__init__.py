"""Data: COCO json reading, the detection dataset, image I/O, paired transforms, loaders, camera.

May import `toolkit`, `runtime` and `evaluation.metrics` (the IoU-type vocabulary).
"""
