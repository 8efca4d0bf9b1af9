"""mPC, rPC and EV50 on known values; intervals from paired resamples; the darkness figure."""
import numpy as np
import pytest

from tests.torch_utils_lib.evaluation.test_coco_bootstrap import as_type, synthetic_set
from torch_utils_lib.evaluation.coco_bootstrap import resampled_stats
from torch_utils_lib.evaluation.coco_eval import coco_stats
from torch_utils_lib.plots.charts import plot_darkness_curves
from torch_utils_lib.evaluation.robustness import ev50, mpc, robustness_summary, rpc


def test_mpc_rpc_ev50_on_known_values():
    levels, aps, clean = [2, 4, 6, 8], [0.40, 0.30, 0.20, 0.10], 0.50
    assert mpc(aps) == pytest.approx(0.25)
    assert rpc(mpc(aps), clean) == pytest.approx(0.5)
    assert ev50(levels, aps, clean) == pytest.approx(5.0)  # 0.25: halfway from 0.30 (4 EV) to 0.20 (6 EV)
    assert ev50(levels, [0.1, 0.05, 0, 0], clean) == pytest.approx(2 * 0.25 / 0.4)  # from P at 0 EV
    assert ev50(levels, [0.45, 0.4, 0.35, 0.3], clean) is None  # never halved: "> max level"
    assert ev50([2, 4], [0.25, 0.1], clean) == 2.0
    summary = robustness_summary(levels, clean, aps)
    assert summary == {"P": 0.5, "levels": {2.0: 0.4, 4.0: 0.3, 6.0: 0.2, 8.0: 0.1}, "mPC": pytest.approx(0.25),
                       "rPC": pytest.approx(0.5), "EV50": pytest.approx(5.0)}


def test_intervals_from_paired_draws():
    rng = np.random.default_rng(0)
    clean = 0.5 + rng.normal(0, 0.02, 400)
    levels = np.stack([clean - d + rng.normal(0, 0.005, 400) for d in (0.1, 0.2, 0.3, 0.4)])
    summary = robustness_summary([2, 4, 6, 8], 0.5, [0.4, 0.3, 0.2, 0.1], clean, levels)
    low, high = summary["mPC_ci"]
    assert low < 0.25 < high and high - low < 0.1
    assert summary["EV50_ci"][0] < 5.0 < summary["EV50_ci"][1]
    assert summary["rPC_ci"][0] < 0.5 < summary["rPC_ci"][1]
    flat = robustness_summary([2, 4], 0.5, [0.45, 0.44], clean, np.stack([clean - 0.05, clean - 0.06]))
    assert flat["EV50"] is None and flat["EV50_ci"] == [None, None]


def test_darkness_curve_from_detections(tmp_path):
    gt, results = synthetic_set(30, seed=2, empty_images=0)
    clean = as_type(results, "bbox")
    shifted = {ev: [{**r, "bbox": [r["bbox"][0] + ev, *r["bbox"][1:]]} for r in clean] for ev in (1, 2, 3)}
    # as study.statistics.darkness_curves: normal light and every level resampled together
    full, draws = resampled_stats(gt, {"normal": clean, **{f"ev{e}": shifted[e] for e in (1, 2, 3)}},
                                  "bbox", n=200, seed=0)
    curve = robustness_summary([1, 2, 3], full["normal"][0], [full[f"ev{e}"][0] for e in (1, 2, 3)],
                               draws["normal"][:, 0], np.stack([draws[f"ev{e}"][:, 0] for e in (1, 2, 3)]))
    assert curve["P"] == pytest.approx(coco_stats(gt, clean, "bbox")["AP"], abs=1e-12)
    expected = [coco_stats(gt, shifted[ev], "bbox")["AP"] for ev in (1, 2, 3)]
    assert list(curve["levels"].values()) == pytest.approx(expected, abs=1e-12)
    assert curve["mPC"] == pytest.approx(np.mean(expected)) and expected[0] > expected[2]
    assert curve["mPC_ci"][0] < curve["mPC"] < curve["mPC_ci"][1]
    path = plot_darkness_curves({"none": curve, "other": robustness_summary([1, 2, 3], 0.6, [0.5, 0.3, 0.2])},
                                str(tmp_path / "darkness.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
