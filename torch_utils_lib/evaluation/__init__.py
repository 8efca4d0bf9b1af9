"""Evaluation: the metric vocabulary (`metrics`), COCO AP, bootstrap intervals, robustness, PSNR/SSIM.

May import `toolkit`, `runtime` and `data`.
"""
