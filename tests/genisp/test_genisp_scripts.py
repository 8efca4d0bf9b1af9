"""genisp/ scripts end to end on the sample set's physics RAW, with a detector trained once."""
import json
import os
import shutil

import pytest

from tests.helpers import assert_user_error, run_script
from torch_utils_lib.toolkit.paths import sample_raw

SCRIPTS = ("genisp/train.py", "genisp/evaluate.py", "genisp/inference.py")
# Small but real: 64x64 packed images, 64-pixel thumbnails for ConvWB/ConvCC, two epochs.
TRAIN_ARGS = ("--epochs", 2, "--batch_size", 8, "--lr_steps", 1, "--resize", 0, 0,
              "--parameter_size", 64, "--device", "cpu", "--seed", 0)


def require_sample_raw():
    if not os.path.isfile(os.path.join(sample_raw("train"), "annotations.json")):
        pytest.skip("sample physics RAW missing: run dataset/data_preprocessing.py --method physics --save_raw")


@pytest.fixture(scope="module")
def trained_genisp(trained_sample_detector, tmp_path_factory):
    """(GenISP checkpoint dir, detector checkpoint, cache dir) after a short training run."""
    require_sample_raw()
    root = tmp_path_factory.mktemp("genisp")
    detector = os.path.join(trained_sample_detector, "last.pth")
    cache = root / "cache"
    result = run_script("genisp/train.py", "--detector", detector, "--checkpoint_dir",
                        root / "run", "--cache_dir", cache, *TRAIN_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| epoch |" in result.stdout
    return root / "run", detector, cache


def test_genisp_raises_the_frozen_detectors_ap_over_the_minimal_pipeline(trained_genisp, tmp_path):
    run_dir, detector, cache = trained_genisp
    for name in ("last.pth", "history.json", "run.json", "train_log.jsonl", "loss_curve.png"):
        assert (run_dir / name).is_file(), name
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1] and history[1]["lr"] == pytest.approx(1e-3)
    out = tmp_path / "eval"
    result = run_script("genisp/evaluate.py", "--weight_path", run_dir / "last.pth",
                        "--output_dir", out, "--cache_dir", cache, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads((out / "results.json").read_text())
    assert set(table) == {"genisp", "minimal", "rawpy"}
    assert all(len(stats) == 12 for stats in table.values())
    print({name: round(stats["AP50"], 3) for name, stats in table.items()})
    assert table["genisp"]["AP50"] > table["minimal"]["AP50"] + 0.05
    assert table["genisp"]["AP"] > table["minimal"]["AP"]
    assert "| genisp |" in (out / "results.md").read_text() and (out / "ap.png").is_file()
    # a second run reuses the saved detections of every pipeline
    again = run_script("genisp/evaluate.py", "--weight_path", run_dir / "last.pth",
                       "--output_dir", out, "--cache_dir", cache, "--device", "cpu")
    assert again.returncode == 0 and json.loads((out / "results.json").read_text()) == table
    assert "evaluating" not in again.stderr


def test_resume_and_repeatable_training(trained_genisp, tmp_path):
    run_dir, detector, cache = trained_genisp
    result = run_script("genisp/train.py", "--detector", detector, "--checkpoint_dir", run_dir,
                        "--cache_dir", cache, "--resume", *TRAIN_ARGS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already trained for 2 epochs" in result.stdout
    # one step on eight images, twice with the same seed: identical weights
    subset = tmp_path / "subset.json"
    coco = json.loads(open(os.path.join(sample_raw("train"), "annotations.json")).read())
    coco["images"] = coco["images"][:8]
    ids = {i["id"] for i in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    subset.write_text(json.dumps(coco))
    import torch
    states = []
    for name in ("a", "b"):
        result = run_script("genisp/train.py", "--detector", detector, "--annotation", subset,
                            "--raw_dir", sample_raw("train"), "--checkpoint_dir", tmp_path / name,
                            "--cache_dir", cache, "--epochs", 1, "--batch_size", 8, "--resize",
                            0, 0, "--parameter_size", 32, "--device", "cpu", "--seed", 3)
        assert result.returncode == 0, result.stderr[-2000:]
        states.append(torch.load(tmp_path / name / "last.pth", weights_only=True)["model"])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_inference_writes_pngs_overlays_and_coco_results(trained_genisp, tmp_path):
    run_dir, detector, _ = trained_genisp
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for name in ("val_0001.dng", "val_0002.dng", "val_0003.dng"):
        shutil.copy(os.path.join(sample_raw("val"), name), raw_dir / name)
    out = tmp_path / "out"
    args = ("--raw_dir", raw_dir, "--weight_path", run_dir / "last.pth", "--output_dir", out,
            "--detect", "--annotation", os.path.join(sample_raw("val"), "annotations.json"),
            "--device", "cpu")
    result = run_script("genisp/inference.py", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    from torch_utils_lib.data.image_io import read_rgb
    for stem in ("val_0001", "val_0002", "val_0003"):
        assert read_rgb(str(out / f"{stem}.png")).shape == (64, 64, 3)
        assert (out / f"{stem}_detections.png").is_file()
    detections = json.loads((out / "detections.json").read_text())
    assert {d["image_id"] for d in detections} <= {1, 2, 3} and detections
    assert all(d["category_id"] in (1, 2, 3) for d in detections)
    # boxes are in the RAW's 128x128 frame, not the 64x64 packed one
    assert max(d["bbox"][0] + d["bbox"][2] for d in detections) > 64
    assert all(d["bbox"][0] + d["bbox"][2] <= 128.01 for d in detections)
    again = run_script("genisp/inference.py", *args)
    assert again.returncode == 0 and "3 already done, 0 processed" in again.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_from_inside_the_folder(repo, script):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, os.path.basename(script), "--help"],
                            cwd=os.path.join(repo, "genisp"), capture_output=True, text=True)
    assert result.returncode == 0 and "usage:" in result.stdout, result.stderr


def test_bad_inputs_are_one_line_errors(tmp_path):
    result = run_script("genisp/train.py", "--raw_dir", tmp_path / "nowhere", "--detector",
                        "maskrcnn_resnet18_fpn_nope", "--device", "cpu")
    assert_user_error(result, "maskrcnn_resnet18_fpn_nope")
    result = run_script("genisp/evaluate.py", "--weight_path", tmp_path / "missing.pth",
                        "--device", "cpu")
    assert_user_error(result, "missing.pth", "GenISP checkpoint not found")
    fake = tmp_path / "fake.pth"
    import torch
    torch.save({"model": {}, "config": {"model": "maskrcnn_resnet18_fpn"}}, fake)
    result = run_script("genisp/inference.py", "--weight_path", fake, "--device", "cpu")
    assert_user_error(result, "fake.pth", "not a GenISP checkpoint")
    (tmp_path / "raw").mkdir()
    result = run_script("genisp/inference.py", "--raw_dir", tmp_path / "raw", "--device", "cpu")
    assert_user_error(result, "no RAW files")


def test_evaluate_reports_each_camera_of_a_mixed_set(trained_genisp, tmp_path):
    """RAW-NOD mixes Sony .ARW and Nikon .NEF; here two sample DNGs are renamed .NEF (LibRaw
    reads by content), so the table gets a row per file type besides the overall one."""
    run_dir, _, cache = trained_genisp
    coco = json.loads(open(os.path.join(sample_raw("val"), "annotations.json")).read())
    coco["images"] = coco["images"][:4]
    ids = {i["id"] for i in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for k, image in enumerate(coco["images"]):
        name = image["file_name"] if k % 2 else image["file_name"].replace(".dng", ".NEF")
        shutil.copy(os.path.join(sample_raw("val"), image["file_name"]), raw_dir / name)
        image["file_name"] = name
    (raw_dir / "annotations.json").write_text(json.dumps(coco))
    out = tmp_path / "eval"
    result = run_script("genisp/evaluate.py", "--raw_dir", raw_dir, "--weight_path",
                        run_dir / "last.pth", "--pipelines", "genisp", "minimal",
                        "--output_dir", out, "--cache_dir", cache, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    table = json.loads((out / "results.json").read_text())
    assert set(table) == {"genisp", "genisp (DNG)", "genisp (NEF)", "minimal", "minimal (DNG)",
                          "minimal (NEF)"}
    assert "| genisp (NEF) |" in result.stdout


def tiny_detector(path):
    """An untrained light Mask R-CNN checkpoint for the sample shapes (64-pixel inputs)."""
    import torch

    from torch_utils_lib.runtime.checkpoint import save_checkpoint
    from torch_utils_lib.models.detectors import build_detector, detector_config
    torch.manual_seed(0)
    names = ["__background__", "circle", "square", "triangle"]
    model = build_detector("maskrcnn_resnet18_fpn", len(names), "none", min_size=64, max_size=64)
    save_checkpoint(str(path), model, detector_config("maskrcnn_resnet18_fpn", names, 64, 64,
                                                      [None, 1, 2, 3]))
    return path


def test_resume_after_an_interruption_gives_the_same_weights(tmp_path):
    """2 epochs in one go == 1 epoch, stopped, then --resume to 2 (as the other trainers)."""
    require_sample_raw()
    import torch

    from torch_utils_lib.toolkit.atomic_io import read_jsonl
    detector = tiny_detector(tmp_path / "detector.pth")
    subset = tmp_path / "subset.json"
    coco = json.loads(open(os.path.join(sample_raw("train"), "annotations.json")).read())
    coco["images"] = coco["images"][:8]
    ids = {i["id"] for i in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    subset.write_text(json.dumps(coco))

    def train(name, epochs, *extra):
        result = run_script("genisp/train.py", "--detector", detector, "--annotation", subset,
                            "--checkpoint_dir", tmp_path / name, "--cache_dir", "none",
                            "--epochs", epochs, "--batch_size", 4, "--lr_milestones", 1,
                            "--resize", 0, 0, "--parameter_size", 32, "--device", "cpu",
                            "--seed", 3, *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        return result

    train("straight", 2)
    train("split", 1)
    assert "resuming from" in train("split", 2, "--resume").stdout
    a = torch.load(tmp_path / "straight" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pth", weights_only=True)
    assert a["epoch"] == b["epoch"] == 1
    assert set(a["model"]) == set(b["model"]) and not any(k.startswith("detector") for k in a["model"])
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for name in ("straight", "split"):
        run = tmp_path / name
        assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [0, 1]
        # two steps per epoch, each logged once
        assert [r["epoch"] for r in read_jsonl(str(run / "train_log.jsonl"))] == [0, 0, 1, 1]
        assert (run / "loss_curve.png").is_file()
    history = [json.loads((tmp_path / n / "history.json").read_text()) for n in ("straight", "split")]
    assert history[0] == history[1] and history[0][1]["lr"] == pytest.approx(1e-3)
