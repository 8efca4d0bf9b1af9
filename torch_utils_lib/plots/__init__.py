"""Plots: loss curves and bar charts (matplotlib, loaded on use) and drawings of detections.

May import `toolkit` only.
"""
