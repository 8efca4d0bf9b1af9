"""bench/bench_bootstrap.py runs at a tiny size: the weighted bootstrap matches the naive loop."""
import json
import subprocess
import sys

from torch_utils_lib.toolkit.paths import REPO_ROOT


def test_bench_reports_ratio_and_equal_stats(tmp_path):
    out = tmp_path / "bootstrap.json"
    result = subprocess.run([sys.executable, "bench/bench_bootstrap.py", "--num_images", "20",
                             "--num_detections", "200", "--num_categories", "5", "--bootstrap", "20",
                             "--naive_runs", "2", "--output", str(out)], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["stats_equal"] is True
    assert report["num_images"] == 20 and report["num_detections"] == 200 and report["resamples"] == 20
    assert report["seconds"]["ours"] > 0 and report["naive_over_ours"] > 0
    assert "naive / ours" in result.stdout and (tmp_path / "bench_bootstrap_run.json").is_file()
