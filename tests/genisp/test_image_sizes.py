"""Real-world RAW files on the GenISP scripts (issue 32): the smallest RAW LibRaw reads (22 px),
elongated, constant (all-black) and mixed-size files train to finite weights, infer and
evaluate; a file too elongated for the frozen detector's resize is refused in one line naming
it before the first step. Inputs are hashed before and after."""
import json

import numpy as np
import torch

from dataset.dng import write_dng
from tests.genisp.test_genisp_raw import XYZ_TO_CAM
from tests.genisp.test_genisp_scripts import tiny_detector
from tests.helpers import assert_user_error, run_script
from tests.test_user_errors import tree_digest
from torch_utils_lib.runtime.checkpoint import load_checkpoint

BLACK, WHITE = 64, 4095


def raw_set(folder, sizes, black=()):
    """One RGGB DNG per (width, height) in sensor pixels (index in `black`: all at the black
    level) and annotations.json with a box in each file's top-left quarter (packed pixels)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for n, (w, h) in enumerate(sizes, 1):
        bayer = (np.full((h, w), BLACK) if n - 1 in black
                 else rng.integers(BLACK, WHITE, (h, w))).astype(np.uint16)
        name = f"raw_{w}x{h}.dng"
        write_dng(str(folder / name), bayer, "RGGB", BLACK, WHITE, XYZ_TO_CAM, [0.5, 1.0, 0.7])
        images.append({"id": n, "file_name": name, "width": w // 2, "height": h // 2})
        bw, bh = max(1, w // 4), max(1, h // 4)
        annotations.append({"id": n, "image_id": n, "category_id": 1, "bbox": [0, 0, bw, bh],
                            "area": bw * bh, "iscrowd": 0})
    (folder / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "circle"}]}))
    return folder


def train(raw_dir, detector, out):
    return run_script("genisp/train.py", "--raw_dir", raw_dir, "--detector", detector,
                      "--checkpoint_dir", out, "--cache_dir", "none", "--epochs", 1,
                      "--batch_size", 2, "--resize", 0, 0, "--parameter_size", 8, "--device", "cpu")


SIZES = [(22, 22), (22, 200), (64, 48), (48, 64)]  # sensor pixels; the second all black


def tiny_genisp(path, detector):
    """An untrained GenISP checkpoint (8 px thumbnails) over `detector`, as train.py writes it."""
    from genisp.detection import GENISP_CONFIG_NAME
    from genisp.model import GenISP
    from torch_utils_lib.runtime.checkpoint import save_checkpoint
    torch.manual_seed(0)
    save_checkpoint(str(path), GenISP(8), {
        "model": GENISP_CONFIG_NAME, "parameter_size": 8, "resize": None, "detector": str(detector),
        "detector_weights": "coco", "categories": ["__background__", "circle", "square", "triangle"]})
    return path


def test_small_elongated_black_and_mixed_raw_files_train(tmp_path):
    raw = raw_set(tmp_path / "raw", SIZES, black={1})
    detector = tiny_detector(tmp_path / "detector.pth")  # 64 px input: up to 64:1
    before = tree_digest(raw)
    result = train(raw, detector, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    for key, value in load_checkpoint(str(tmp_path / "run" / "last.pth"))["model"].items():
        assert torch.isfinite(value).all(), key
    assert tree_digest(raw) == before


def test_small_elongated_black_and_mixed_raw_files_infer(tmp_path):
    raw = raw_set(tmp_path / "raw", SIZES, black={1})
    weights = tiny_genisp(tmp_path / "genisp.pth", tiny_detector(tmp_path / "detector.pth"))
    before = tree_digest(raw)
    result = run_script("genisp/inference.py", "--raw_dir", raw, "--weight_path", weights,
                        "--output_dir", tmp_path / "inference", "--detect", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "inference").glob("raw_*x*.png")
                  if "_detections" not in p.name) == sorted(f"raw_{w}x{h}.png" for w, h in SIZES)
    assert tree_digest(raw) == before


def test_small_elongated_black_and_mixed_raw_files_evaluate(tmp_path):
    raw = raw_set(tmp_path / "raw", SIZES, black={1})
    weights = tiny_genisp(tmp_path / "genisp.pth", tiny_detector(tmp_path / "detector.pth"))
    before = tree_digest(raw)
    result = run_script("genisp/evaluate.py", "--raw_dir", raw, "--weight_path", weights,
                        "--pipelines", "genisp", "minimal", "--output_dir", tmp_path / "eval",
                        "--cache_dir", "none", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| genisp |" in result.stdout and "| minimal |" in result.stdout
    assert tree_digest(raw) == before


def test_a_raw_file_too_elongated_for_the_detector_is_refused_before_the_first_step(tmp_path):
    raw = raw_set(tmp_path / "raw", [(64, 48), (22, 1500)])  # packed 11x750: past 64:1
    detector = tiny_detector(tmp_path / "detector.pth")
    before = tree_digest(raw)
    result = train(raw, detector, tmp_path / "run")
    assert_user_error(result, "raw_22x1500.dng: 11x750:", "up to 64:1")
    assert not (tmp_path / "run" / "last.pth").exists()
    result = run_script("genisp/evaluate.py", "--raw_dir", raw, "--weight_path", detector,
                        "--pipelines", "minimal", "--detector", detector,
                        "--output_dir", tmp_path / "eval", "--cache_dir", "none", "--device", "cpu")
    assert_user_error(result, "raw_22x1500.dng: 11x750:")
    assert tree_digest(raw) == before
