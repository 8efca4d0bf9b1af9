"""bench/gpu_check.py: one line without a GPU; --device cpu --smoke runs every check's code path."""
import json
import os
import subprocess
import sys

from torch_utils_lib.toolkit.paths import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "bench", "gpu_check.py")
NO_GPU = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def test_without_a_gpu_it_says_so_and_succeeds():
    result = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env=NO_GPU,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "gpu-check: no GPU (torch.cuda.is_available() is False); nothing to check"]


def test_smoke_run_on_cpu_exercises_every_check(tmp_path):
    result = subprocess.run([sys.executable, SCRIPT, "--device", "cpu", "--smoke",
                             "--output_dir", str(tmp_path)], capture_output=True, text=True,
                            env=NO_GPU, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["rows"]
    assert (tmp_path / "run.json").is_file()
    assert all(row["status"] in ("ok", "skipped") for row in rows.values()), rows
    expected = ["Mask R-CNN R18-FPN train step, fp32", "diffusion UNet train step, fp32",
                "GenISP + frozen maskrcnn_resnet18_fpn train step, fp32",
                "Mask R-CNN inference (engine.predict), fp32", "DDIM-1 sampling, fp32",
                "GenISP batched vs per-image loop, 2x32x48", "DDP (GLOO), 2 processes"]
    assert all(name in rows for name in expected), list(rows)
    assert rows["DDP (GLOO), 2 processes"]["result"].startswith("all_reduce 1+2=3")
    study = rows["study step (evaluate.py), 3 images, fp32"]
    assert study["s/step"] > 1 and study["result"].startswith("fixed cost ")
    loss = float(rows["diffusion UNet train step, fp32"]["result"].split()[1])
    assert 0.1 < loss < 10  # an MSE of unit-variance noise
    assert "| check | status | s/step | peak MiB | result |" in result.stdout
