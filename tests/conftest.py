"""Shared fixtures: paths, a script runner, and one light detector trained once per session."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.helpers import REPO, SHARED_DATA, run_script  # noqa: E402


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


# The light Mask R-CNN on the normal-light sample set: AdamW 1e-3, batch 4, warm-up, clipping,
# flips and quarter turns (the shapes have no up), lr x0.1 for the last quarter (about 9 s an
# epoch on 2 cores). Measured: val bbox AP50 0.63 after 40 epochs, 0.53-0.55 after 30 (two seeds).
DETECTOR_EPOCHS = 40


@pytest.fixture(scope="session")
def trained_sample_detector(tmp_path_factory):
    """Checkpoint directory of maskrcnn_resnet18_fpn trained from scratch on data/sample/train."""
    out = tmp_path_factory.mktemp("detector")
    result = run_script("mask_rcnn/train.py", "--checkpoint_dir", out, "--epoch", DETECTOR_EPOCHS,
                        "--eval_every", DETECTOR_EPOCHS, "--lr_step_size", 30, "--augment", "dihedral",
                        "--device", "cpu", "--seed", 0)
    assert result.returncode == 0, result.stderr[-3000:]
    return out
