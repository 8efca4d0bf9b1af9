"""bench/bench_score.py at a tiny size: every step in the table with finite numbers."""
import json
import math
import subprocess
import sys

from torch_utils_lib.toolkit.paths import REPO_ROOT


def test_bench_score_table_has_every_step_with_finite_numbers(tmp_path):
    out = tmp_path / "score.json"
    result = subprocess.run([sys.executable, "bench/bench_score.py", "--images", "8",
                             "--detections_per_image", "12", "--bootstrap", "10", "--output", str(out)],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"score.py", "pycocotools evaluate bbox", "faster_coco_eval evaluate segm"} <= set(report["rows"])
    for name, row in report["rows"].items():
        assert math.isfinite(row["seconds"]) and row["seconds"] > 0 and row["peak GB"] > 0, name
    assert ("hotcoco compare" in report["rows"]) == report["hotcoco"]
    assert "| score.py |" in result.stdout
