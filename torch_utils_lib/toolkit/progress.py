"""One progress bar for every long loop: live on a terminal, a line at most every 30 s in a log.

tqdm redraws with carriage returns several times a second; written to a file (`make demo > log`)
that is megabytes of updates. When stderr is not a terminal the bar prints whole lines no more
often than LOG_INTERVAL_S. No torch import: the synthesis CLI uses it.
"""
import sys

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


class _Lines:
    """A stream wrapper that turns tqdm's carriage-return redraws into whole lines."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self):
        self.stream.flush()


def progress(iterable=None, total=None, desc="", disable=False, file=None, **kwargs):
    """A tqdm bar over `iterable` (or updated by hand up to `total`), quiet in logs."""
    stream = file if file is not None else sys.stderr
    interactive = hasattr(stream, "isatty") and stream.isatty()
    options = {"dynamic_ncols": True, "leave": False} if interactive else {
        "mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S, "miniters": 1,
        "ncols": 100, "leave": True, "ascii": True}
    options.update(kwargs)
    return tqdm(iterable, total=total, desc=desc, disable=disable,
                file=stream if interactive else _Lines(stream), **options)
