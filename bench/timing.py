"""Timing shared by the benchmarks: interleaved runs, median wall seconds."""
import time

import numpy as np
import torch


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fns, repeats, warmup=1):
    """Median wall seconds of each function in `fns`, run in turn `repeats` times after a warm-up.

    Interleaving puts every candidate under the same background load (shared machines); CUDA
    work is synchronised before and after each call so that it is counted.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            _sync()
            start = time.perf_counter()
            fn()
            _sync()
            record.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]
