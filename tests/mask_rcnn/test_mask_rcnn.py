"""Mask R-CNN: learns from scratch on the sample set, evaluate.py's AP is pycocotools', exact resume,
torchrun DDP on CPU, inference outputs, flags the user already types, clear errors."""
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tests.helpers import REPO, assert_user_error, run_script
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images


def test_light_model_learns_on_the_sample_set(trained_sample_detector):
    with open(trained_sample_detector / "val_stats.json") as f:
        stats = json.load(f)
    print("val stats after training:", {t: round(s["AP50"], 3) for t, s in stats.items()})
    assert stats["bbox"]["AP50"] >= 0.5
    assert stats["segm"]["AP50"] >= 0.5
    assert (trained_sample_detector / "loss_curve.png").stat().st_size > 1000
    with open(trained_sample_detector / "run.json") as f:
        assert json.load(f)["args"]["epochs"] > 0


def test_evaluate_prints_the_table_and_its_ap_is_pycocotools(trained_sample_detector, tmp_path):
    out = tmp_path / "eval"
    result = run_script("mask_rcnn/evaluate.py", "--weight_path", trained_sample_detector / "last.pth",
                        "--output_dir", out, "--count", 2, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bbox AP normal" in result.stdout and "| checkpoint |" in result.stdout
    with open(out / "ap_table.json") as f:
        table = json.load(f)
    printed = table["stats"]["checkpoint"]
    for split, image_set in (("normal", "normal"), ("low_light", "low_light")):
        for iou_type in ("bbox", "segm"):
            with contextlib.redirect_stdout(io.StringIO()):
                gt = COCO(sample_annotation("val"))
                dt = gt.loadRes(str(out / "checkpoint" / f"detections_{image_set}_{iou_type}.json"))
                e = COCOeval(gt, dt, iou_type)
                e.evaluate(), e.accumulate(), e.summarize()
            assert printed[split][iou_type]["AP"] == pytest.approx(e.stats[0], abs=1e-9)
            assert printed[split][iou_type]["AP50"] == pytest.approx(e.stats[1], abs=1e-9)
    row = table["rows"]["checkpoint"]
    assert row["bbox AP50 normal"] > row["bbox AP50 low"]  # low light hurts
    assert f"{row['bbox AP normal']:.3f}" in result.stdout
    assert len(list((out / "figures").glob("*_comparison.png"))) == 2
    assert (out / "ap_table.md").exists() and (out / "run.json").exists()


def test_inference_writes_overlays_and_coco_results(trained_sample_detector, tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    for name in sorted(os.listdir(sample_images("val")))[:3]:
        shutil.copy(os.path.join(sample_images("val"), name), images / name)
    out = tmp_path / "out"
    result = run_script("mask_rcnn/inference.py", "--image_dir", images, "--weight_path",
                        trained_sample_detector / "last.pth", "--output_dir", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out / "detections.json") as f:
        detections = json.load(f)
    assert detections and {d["category_name"] for d in detections} <= {"circle", "square", "triangle"}
    assert all(d["score"] >= 0.5 and len(d["bbox"]) == 4 and "segmentation" in d for d in detections)
    assert len(list(out.glob("*_pred.png"))) == 3


def tiny_annotation(tmp_path, count=8):
    with open(sample_annotation("train")) as f:
        coco = json.load(f)
    ids = {image["id"] for image in coco["images"][:count]}
    coco["images"] = coco["images"][:count]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(coco))
    return path


def tiny_train_args(tmp_path, out, epochs):
    return ["--annotation", tiny_annotation(tmp_path), "--checkpoint_dir", out, "--epoch", epochs,
            "--batch_size", 2, "--min_size", 64, "--max_size", 64, "--eval_every", 0,
            "--device", "cpu", "--seed", 3, "--lr_step_size", 1, "--lr_gamma", 0.9]


def test_resume_continues_exactly(tmp_path):
    straight = run_script("mask_rcnn/train.py", *tiny_train_args(tmp_path, tmp_path / "a", 2))
    assert straight.returncode == 0, straight.stderr[-2000:]
    first = run_script("mask_rcnn/train.py", *tiny_train_args(tmp_path, tmp_path / "b", 1))
    resumed = run_script("mask_rcnn/train.py", *tiny_train_args(tmp_path, tmp_path / "b", 2), "--resume")
    assert first.returncode == 0 and resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout
    a = torch.load(tmp_path / "a" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pth", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["scheduler"]["_last_lr"] == b["scheduler"]["_last_lr"] == pytest.approx([1e-3 * 0.81])


def test_torchrun_ddp_trains_and_shards_evaluation(tmp_path):
    out = tmp_path / "ddp"
    args = tiny_train_args(tmp_path, out, 1)
    args[args.index("--eval_every") + 1] = 1
    args += ["--val_image_dir", sample_images("train"), "--val_annotation", tiny_annotation(tmp_path)]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node", "2", os.path.join(REPO, "mask_rcnn", "train.py"),
                             *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "run.json") as f:
        assert json.load(f)["world_size"] == 2
    with open(out / "val_stats.json") as f:
        sharded = json.load(f)
    # the same checkpoint evaluated in one process scores the same
    from mask_rcnn.evaluation import evaluate_image_sets
    single = evaluate_image_sets(str(out / "last.pth"), str(tiny_annotation(tmp_path)),
                                 {"train": sample_images("train")})["train"]
    for iou_type in ("bbox", "segm"):
        assert sharded[iou_type]["AP"] == pytest.approx(single[iou_type]["AP"], abs=1e-9)


def test_user_flags_parse_as_typed():
    from mask_rcnn.train import build_parser
    args = build_parser().parse_args(["--learning_rate", "0.02", "--lr_gamma", "0.9", "--epoch", "3",
                                      "--trainable_backbone_layers", "2", "--checkpoint_epoch", "1"])
    assert args.lr == 0.02 and args.lr_gamma == 0.9 and args.epochs == 3
    assert args.trainable_backbone_layers == 2 and args.checkpoint_epoch == 1


def test_bad_inputs_end_in_one_line(tmp_path):
    assert_user_error(run_script("mask_rcnn/train.py", "--annotation", tmp_path / "none.json"),
                      "none.json", "not found")
    (tmp_path / "bad.json").write_text("{")
    assert_user_error(run_script("mask_rcnn/evaluate.py", "--annotation", tmp_path / "bad.json",
                                 "--weight_path", tmp_path / "x.pth"), "x.pth")
    assert_user_error(run_script("mask_rcnn/train.py", "--weights", "coco", "--model",
                                 "maskrcnn_resnet18_fpn", "--device", "cpu"), "no COCO weights")
    assert_user_error(run_script("mask_rcnn/train.py", "--device", "cuda:7"), "--device")
