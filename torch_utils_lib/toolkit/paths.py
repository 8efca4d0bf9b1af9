"""Where the bundled sample data lives, so every script's defaults work from any directory."""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_DIR = os.path.join(REPO_ROOT, "data", "sample")
RUNS_DIR = os.path.join(REPO_ROOT, "runs")


def sample_images(split):
    """Normal-light images of the sample set's `split` ('train' or 'val')."""
    return os.path.join(SAMPLE_DIR, split)


def sample_annotation(split):
    """COCO instance annotations of the sample set's `split`."""
    return os.path.join(SAMPLE_DIR, "annotations", f"instances_{split}.json")


def sample_low_light(split, method="gamma_noise"):
    """Synthetic low-light copy of the sample set's `split` made by `method` (dataset/)."""
    return os.path.join(SAMPLE_DIR, "low_light", method, split)


def sample_raw(split):
    """Noisy low-light DNGs of `split` written by the physics synthesis with --save_raw."""
    return os.path.join(sample_low_light(split, "physics"), "raw")
