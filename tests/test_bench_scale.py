"""bench/bench_scale.py at tiny sizes: every step in the table with finite numbers."""
import json
import math
import subprocess
import sys

from bench.bench_scale import STEPS
from torch_utils_lib.toolkit.paths import REPO_ROOT


def test_bench_scale_table_has_every_step_with_finite_numbers(tmp_path):
    out = tmp_path / "scale.json"
    result = subprocess.run([sys.executable, "bench/bench_scale.py", "--sizes", "5", "10", "20",
                             "--image_sizes", "2", "3", "4", "--study_sizes", "5", "10", "20",
                             "--bootstrap", "50", "--output", str(out)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["rows"]) == set(STEPS)
    for name, row in report["rows"].items():
        values = [v for v in row.values()]
        assert values and all(math.isfinite(v) for v in values), name
        assert row["largest s/image"] > 0 and row["largest MB"] > 10, name
        if name != "GenISP RAW cache 5472x3648":
            assert row["small n"] < row["middle n"] < row["largest n"] and row["growth"] > 0, name
    raw = report["records"]["GenISP RAW cache 5472x3648"]["1"]
    assert raw["image_shape"] == [800, 1200, 3] and 0 < raw["entry_mb"] < raw["dng_mb"]
    assert "| step |" in result.stdout and "bootstrap @ 20" in result.stdout
