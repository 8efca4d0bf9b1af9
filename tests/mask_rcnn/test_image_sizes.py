"""Real-world images on the Mask R-CNN scripts (issue 32): tiny images (1x1, 2x2, 1xN) and
constant (all-black) frames of mixed sizes infer, evaluate and train through (finite weights);
an image too elongated for the detector's resize, and an input size under what the light
model's BatchNorm trains on, are refused in one line before anything is written. Inputs are
hashed before and after."""
import json

import numpy as np
import pytest
import torch

from tests.genisp.test_genisp_scripts import tiny_detector
from tests.helpers import assert_user_error, run_script
from tests.test_user_errors import tree_digest
from torch_utils_lib.data.image_io import write_image
from torch_utils_lib.models.detectors import resized_short_side
from torch_utils_lib.runtime.checkpoint import load_checkpoint


def coco_set(folder, sizes, black=()):
    """One image per (width, height), a square filling its top-left quarter (at least 1 px) with
    a mask; images whose index is in `black` are all zeros."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for n, (w, h) in enumerate(sizes, 1):
        name = f"image_{w}x{h}_{n}.png"
        pixels = np.zeros((h, w, 3), np.uint8) if n - 1 in black else rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        write_image(str(folder / "images" / name), pixels)
        images.append({"id": n, "file_name": name, "width": w, "height": h})
        bw, bh = max(1, w // 2), max(1, h // 2)
        annotations.append({"id": n, "image_id": n, "category_id": 1, "bbox": [0, 0, bw, bh],
                            "area": bw * bh, "iscrowd": 0,
                            "segmentation": [[0, 0, bw, 0, bw, bh, 0, bh]]})
    annotation = folder / "instances.json"
    annotation.write_text(json.dumps({"images": images, "annotations": annotations,
                                      "categories": [{"id": 1, "name": "circle"}]}))
    return folder / "images", annotation


def train(images, annotation, out, *extra):
    return run_script("mask_rcnn/train.py", "--image_dir", images, "--annotation", annotation,
                      "--val_image_dir", images, "--val_annotation", annotation,
                      "--checkpoint_dir", out, "--epochs", 1, "--eval_every", 0,
                      "--warmup_iters", 0, "--device", "cpu", *extra)


def test_the_resize_leaves_a_short_side_of_a_pixel_up_to_max_size_to_one():
    assert resized_short_side(1, 1, 64, 64) == 64  # tiny images are upscaled
    assert resized_short_side(1, 64, 64, 64) == 1 and resized_short_side(64, 1, 64, 64) == 1
    assert resized_short_side(1, 65, 64, 64) == 0 and resized_short_side(3, 200, 64, 64) == 0
    assert resized_short_side(600, 800, 800, 1333) == 800


def test_inference_takes_tiny_images(tmp_path):
    detector = tiny_detector(tmp_path / "detector.pth")  # input 64 px: takes up to 64:1
    folder = tmp_path / "tiny"
    folder.mkdir()
    for w, h in ((1, 1), (2, 2), (1, 40)):
        write_image(str(folder / f"tiny_{w}x{h}.png"), np.full((h, w, 3), 40, np.uint8))
    before = tree_digest(folder)
    result = run_script("mask_rcnn/inference.py", "--image_dir", folder, "--weight_path", detector,
                        "--output_dir", tmp_path / "out", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3 images" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").glob("*_pred.png")) == [
        "tiny_1x1_pred.png", "tiny_1x40_pred.png", "tiny_2x2_pred.png"]
    assert isinstance(json.loads((tmp_path / "out" / "detections.json").read_text()), list)
    assert tree_digest(folder) == before


def test_inference_refuses_an_image_too_elongated_for_the_resize_before_any_output(tmp_path):
    detector = tiny_detector(tmp_path / "detector.pth")  # input 64 px: takes up to 64:1
    folder = tmp_path / "images"
    folder.mkdir()
    write_image(str(folder / "square.png"), np.full((8, 8, 3), 40, np.uint8))
    write_image(str(folder / "wire_1x65.png"), np.full((65, 1, 3), 40, np.uint8))
    before = tree_digest(folder)
    result = run_script("mask_rcnn/inference.py", "--image_dir", folder, "--weight_path", detector,
                        "--output_dir", tmp_path / "out2", "--device", "cpu")
    assert_user_error(result, "wire_1x65.png: 1x65:", "up to 64:1")
    assert not (tmp_path / "out2").exists()
    assert tree_digest(folder) == before


def test_training_runs_through_black_tiny_and_mixed_size_images(tmp_path):
    images, annotation = coco_set(tmp_path / "set", [(2, 2), (1, 40), (64, 48), (40, 1)],
                                  black={1, 2})
    before = tree_digest(tmp_path / "set")
    result = train(images, annotation, tmp_path / "run", "--min_size", 64, "--max_size", 64,
                   "--batch_size", 2)
    assert result.returncode == 0, result.stderr[-3000:]
    assert tree_digest(tmp_path / "set") == before
    for key, value in load_checkpoint(str(tmp_path / "run" / "last.pth"))["model"].items():
        assert torch.isfinite(value).all(), key


def test_evaluate_scores_tiny_images_with_intervals(tmp_path):
    images, annotation = coco_set(tmp_path / "set", [(2, 2), (1, 40), (8, 8)], black={0})
    detector = tiny_detector(tmp_path / "detector.pth")
    before = tree_digest(tmp_path / "set")
    result = run_script("mask_rcnn/evaluate.py", "--weight_path", detector, "--annotation", annotation,
                        "--normal_light_image_dir", images, "--low_light_image_dir", "none",
                        "--pretrained", "none", "--count", 3, "--bootstrap", 20,
                        "--output_dir", tmp_path / "eval", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads((tmp_path / "eval" / "ap_table.json").read_text())
    assert "[" in (tmp_path / "eval" / "ap_table.md").read_text()  # AP with its interval
    assert table
    assert tree_digest(tmp_path / "set") == before


@pytest.mark.parametrize("extra,fragments", [
    (["--min_size", 32], ["--min_size 32:", "at least 64 px"]),
    (["--max_size", 48], ["--max_size 48:", "at least 64 px"]),
    (["--min_size", 64, "--max_size", 64], ["image_1x65_2.png: 1x65:", "up to 64:1"]),
])
def test_what_cannot_train_is_refused_before_the_first_step(tmp_path, extra, fragments):
    images, annotation = coco_set(tmp_path / "set", [(8, 8), (1, 65)])
    before = tree_digest(tmp_path / "set")
    result = train(images, annotation, tmp_path / "run", *extra)
    assert_user_error(result, *fragments)
    assert not (tmp_path / "run" / "last.pth").exists()
    assert tree_digest(tmp_path / "set") == before


def test_a_diverging_run_names_its_step_and_image(tmp_path):
    images, annotation = coco_set(tmp_path / "set", [(64, 64), (48, 64)])
    result = train(images, annotation, tmp_path / "run", "--min_size", 64, "--max_size", 64,
                   "--batch_size", 1, "--lr", 1e30, "--max_grad_norm", 0, "--optimizer", "sgd")
    assert_user_error(result, "at epoch 0, iteration", "on image image_", "no checkpoint was written")
    assert not (tmp_path / "run" / "last.pth").exists()
