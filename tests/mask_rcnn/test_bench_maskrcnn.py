"""bench/bench_maskrcnn.py times real training steps and reports images/s per setting."""
import json
import subprocess
import sys

from torch_utils_lib.toolkit.paths import REPO_ROOT


def test_bench_reports_light_model_throughput(tmp_path):
    out = tmp_path / "maskrcnn.json"
    result = subprocess.run([sys.executable, "bench/bench_maskrcnn.py", "--steps", "1", "--models",
                             "maskrcnn_resnet18_fpn", "--output", str(out)], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    cpu = [r for r in report["rows"] if r["device"] == "cpu"]
    assert [(r["model"], r["size"], r["batch"], r["amp"]) for r in cpu] == [
        ("maskrcnn_resnet18_fpn", 128, 4, False)]
    assert cpu[0]["images_per_second"] == cpu[0]["batch"] / cpu[0]["seconds_per_step"] > 0
    assert "images/s" in result.stdout and (tmp_path / "bench_maskrcnn_run.json").is_file()
