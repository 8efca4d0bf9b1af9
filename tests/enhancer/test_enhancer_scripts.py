"""enhancer/train.py, inference.py, evaluate.py as a user runs them: resume equals an
uninterrupted run, inference never writes an input, evaluate prints the two-stage table."""
import json
import os

import torch

from tests.helpers import assert_user_error, run_script
from torch_utils_lib.runtime.checkpoint import load_checkpoint, save_checkpoint
from torch_utils_lib.models.detectors import build_detector, detector_config
from torch_utils_lib.data.image_io import list_images
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images, sample_low_light

LOW = sample_low_light("train", "gamma_noise")


def names_file(tmp_path, count=16):
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"filename": list_images(LOW)[:count]}))
    return path


def train(out, *extra):
    result = run_script("enhancer/train.py", "--model", "zero_dce", "--checkpoint_dir", out,
                        "--device", "cpu", "--seed", 3, "--image_size", 64, "--lr", 1e-3, *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_resume_equals_an_uninterrupted_run(tmp_path):
    names = names_file(tmp_path)
    train(tmp_path / "full", "--annotation", names, "--epochs", 2)
    train(tmp_path / "resumed", "--annotation", names, "--epochs", 1)
    train(tmp_path / "resumed", "--annotation", names, "--epochs", 2, "--resume")
    full = load_checkpoint(str(tmp_path / "full" / "last.pth"))
    resumed = load_checkpoint(str(tmp_path / "resumed" / "last.pth"))
    assert full["epoch"] == resumed["epoch"] == 1
    assert full["config"] == resumed["config"]
    assert full["config"]["model"] == "zero_dce" and full["config"]["scale_factor"] == 1  # the release trains at 1
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    other = run_script("enhancer/train.py", "--checkpoint_dir", tmp_path / "full", "--annotation",
                       names, "--epochs", 3, "--resume", "--exposure", 0.5, "--device", "cpu",
                       "--image_size", 64)
    assert_user_error(other, "exposure 0.6 there, 0.5 here")
    dip = run_script("enhancer/train.py", "--model", "zero_dce", "--objective", "joint",
                     "--checkpoint_dir", tmp_path / "x")
    assert_user_error(dip, "--objective joint: --model zero_dce trains with zero_reference")


def test_inference_refuses_to_write_inputs_and_evaluate_prints_the_table(tmp_path):
    names = names_file(tmp_path, 8)
    train(tmp_path / "run", "--annotation", names, "--epochs", 1)
    weights = tmp_path / "run" / "last.pth"
    same = run_script("enhancer/inference.py", "--weight_path", weights, "--input_dir", LOW,
                      "--output_dir", LOW)
    assert_user_error(same, "--output_dir is the input")
    for bad in ("../x.png", os.path.abspath(os.path.join(LOW, list_images(LOW)[0]))):
        listed = tmp_path / "bad.json"
        listed.write_text(json.dumps({"filename": [bad]}))
        result = run_script("enhancer/inference.py", "--weight_path", weights, "--input_dir", LOW,
                            "--annotation", listed, "--output_dir", tmp_path / "out")
        assert_user_error(result, "points outside")
        assert len(result.stderr.strip().splitlines()) == 1
    out = tmp_path / "enhanced"
    result = run_script("enhancer/inference.py", "--weight_path", weights, "--input_dir", LOW,
                        "--annotation", names, "--output_dir", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(list_images(out)) == sorted(json.loads(names.read_text())["filename"])

    torch.manual_seed(0)
    detector = build_detector("maskrcnn_resnet18_fpn", 4, "none", min_size=64, max_size=64)
    categories = ["__background__", "circle", "square", "triangle"]
    with open(sample_annotation("val")) as f:
        assert sorted(c["name"] for c in json.load(f)["categories"]) == sorted(categories[1:])
    detector_path = tmp_path / "detector.pth"
    save_checkpoint(str(detector_path), detector,
                    detector_config("maskrcnn_resnet18_fpn", categories, 64, 64, [0, 1, 2, 3]))
    val = run_script("enhancer/evaluate.py", "--weight_path", weights, "--detector", detector_path,
                     "--output_dir", tmp_path / "eval", "--device", "cpu")
    assert val.returncode == 0, val.stderr[-2000:]
    rows = [line for line in val.stdout.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:4]] == ["normal", "low_light", "enhanced"]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for name in ("normal", "low_light", "enhanced"):
        assert 0 <= metrics["two_stage_ap"][name]["bbox"]["AP"] <= 1
    assert metrics["quality"]["enhanced"]["psnr"]["mean"] != metrics["quality"]["low_light"]["psnr"]["mean"]
    assert len(list_images(tmp_path / "eval" / "enhanced")) == len(list_images(sample_images("val")))
