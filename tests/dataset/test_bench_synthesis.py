"""bench/bench_synthesis.py runs end to end on a few images and reports every ratio."""
import json
import os
import subprocess
import sys

from torch_utils_lib.toolkit.paths import REPO_ROOT


def test_bench_runs_and_reports(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "bench_synthesis.py", "--num_images", "4", "--skip_seed",
                             "--output", str(out)], cwd=os.path.join(REPO_ROOT, "bench"),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["num_images"] == 4 and report["size"] == [640, 480]
    for stage in ("floor", "gamma_noise w1", "gamma_noise w2", "physics w1", "physics w2",
                  "gamma_noise w1 psnr", "gamma_noise CLI w1", "Poisson draws alone"):
        assert report["seconds"][stage] > 0
    assert report["x_floor"]["floor"] == 1.0  # every stage against a floor timed beside it
    assert all(len(r) == 1 for r in report["x_floor_per_repeat"].values())
    # synthesis does strictly more than decoding and encoding
    assert report["cpu_seconds"]["physics w1"] > report["cpu_seconds"]["floor"]
    assert set(report["workers_speedup"]) == {"gamma_noise", "physics"}
    assert report["torch_imported"] is False
    assert "x floor" in result.stdout and (tmp_path / "bench_synthesis_run.json").is_file()
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
