"""Models: the detector families' registry, building and loading detectors, the frozen detector.

May import `toolkit`, `runtime`, `data` and `evaluation`.
"""
