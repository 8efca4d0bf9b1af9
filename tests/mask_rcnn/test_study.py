"""The study end to end at toy scale: every step runs as the real scripts and every row is filled."""
import json

from tests.helpers import run_script

ROWS = ("normal light", "low light (gamma_noise)", "low light (physics)",
        "low light (gamma_noise) + fine-tuning", "diffusion-restored (gamma_noise) + Mask R-CNN",
        "RAW (physics), minimal pipeline", "GenISP on RAW (physics)")


def test_study_writes_every_row_figure_and_command_and_resumes(tmp_path):
    data = tmp_path / "data"
    made = run_script("dataset/make_sample.py", "--output_dir", data, "--train", 8, "--val", 4,
                      "--size", 64)
    assert made.returncode == 0, made.stderr[-2000:]
    out = tmp_path / "study"
    args = ["--output_dir", out, "--train_image_dir", data / "train",
            "--train_annotation", data / "annotations" / "instances_train.json",
            "--val_image_dir", data / "val", "--val_annotation", data / "annotations" / "instances_val.json",
            "--min_size", 64, "--epochs", 1, "--finetune_epochs", 1, "--batch_size", 4,
            "--diffusion_epochs", 1, "--diffusion_batch_size", 4, "--diffusion_steps", 2,
            "--genisp_epochs", 1, "--genisp_batch_size", 4, "--genisp_parameter_size", 32,
            "--figure_images", 2, "--device", "cpu"]
    result = run_script("mask_rcnn/study.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "report.json") as f:
        report = json.load(f)
    rows = report["rows"]
    assert set(ROWS) <= set(rows), sorted(rows)
    for name in ROWS:
        assert 0 <= rows[name]["bbox AP50"] <= 1, (name, rows[name])
    assert rows["low light (gamma_noise)"]["PSNR"] < 30  # darkened and noisy vs normal light
    for figure in ("examples.png", "loss_curves.png", "ap_bars.png"):
        assert (out / figure).stat().st_size > 1000
    text = (out / "report.md").read_text()
    assert "| normal light |" in text and "mask_rcnn/train.py" in text and "--augment hflip" in text
    # A second run finds every step done and only rewrites the report.
    detector = out / "mask_rcnn" / "normal" / "last.pth"
    trained_at = detector.stat().st_mtime_ns
    again = run_script("mask_rcnn/study.py", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[study] synthesis gamma_noise: reusing" in again.stdout
    assert detector.stat().st_mtime_ns == trained_at
    with open(out / "report.json") as f:
        assert json.load(f)["rows"].keys() == rows.keys()
