"""Progress bars: whole lines at most every 30 s in a log, a live bar on a terminal."""
import io
import os
import subprocess
import sys

from torch_utils_lib.toolkit.paths import REPO_ROOT
from torch_utils_lib.toolkit.progress import LOG_INTERVAL_S, progress

LOOP = """
import sys, time
sys.path.insert(0, sys.argv[1])
from torch_utils_lib.engine.metric_logger import MetricLogger
from torch_utils_lib.toolkit.progress import progress
logger = MetricLogger(desc="train", total=20000)
start = time.time()
while time.time() - start < 2.0:
    logger.update(loss=0.5)
logger.close()
for _ in progress(range(200000), desc="score"):
    pass
"""


def test_a_log_file_gets_a_few_whole_lines(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "wb") as stderr:
        subprocess.run([sys.executable, "-c", LOOP, REPO_ROOT], stderr=stderr, check=True,
                       timeout=60)
    text = log.read_bytes().decode()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    # each bar: its first line and its last, no redraws in between (the run is under 30 s)
    assert len(lines) == 4, text
    assert lines[0].startswith("train:") and lines[-1].startswith("score: 100%")
    assert "200000/200000" in lines[-1] and os.path.getsize(log) < 1000
    assert LOG_INTERVAL_S == 30.0


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_live_bar():
    stream = _Terminal()
    bar = progress(total=3, desc="live", file=stream, mininterval=0, miniters=1)
    for _ in range(3):
        bar.update(1)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") >= 4 and "live" in text and "3/3" in text
