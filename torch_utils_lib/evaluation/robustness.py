"""AP against darkness: mPC, rPC and EV50 with bootstrap intervals.

As Michaelis et al. 2019 ("Benchmarking Robustness in Object Detection") report performance under
corruption: P is the AP on normal light, mPC the mean AP over the darkness levels, rPC = mPC / P.
EV50 is the darkness in stops (exposure 2**EV times darker) at which AP falls to half of P,
interpolated linearly between levels, starting from P at 0 EV; None when it never does ("> max
level"). Intervals come from a paired bootstrap: every level and the normal-light set are
scored on the same resampled images (coco_bootstrap.resampled_stats), so mPC, rPC and EV50 are
computed per resample and their percentile intervals taken.
"""
import numpy as np

from torch_utils_lib.evaluation.coco_bootstrap import percentile_interval


def mpc(level_aps):
    """Mean AP over the darkness levels (an array of shape (levels, ...) averages the first axis)."""
    return np.mean(np.asarray(level_aps, dtype=float), axis=0)


def rpc(mpc_value, clean_ap):
    """mPC / P (NaN where P is 0)."""
    clean_ap = np.asarray(clean_ap, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(clean_ap > 0, np.asarray(mpc_value, dtype=float) / clean_ap, np.nan)


def ev50(levels, level_aps, clean_ap):
    """EV at which AP first falls to half of `clean_ap`, linear between (0, P) and the levels.

    `levels` in stops, increasing; None when AP stays above half of P up to the last level.
    """
    half = clean_ap / 2
    points = [(0.0, float(clean_ap))] + [(float(e), float(a)) for e, a in zip(levels, level_aps)]
    for (e0, a0), (e1, a1) in zip(points, points[1:]):
        if a1 <= half:
            return e1 if a0 == a1 else e0 + (a0 - half) / (a0 - a1) * (e1 - e0)
    return None


def _interval_or_beyond(values):
    """Percentile interval of EV50 draws in which None (beyond the last level) sorts last; an
    end beyond the last level is None."""
    finite = np.array([np.inf if v is None else v for v in values], dtype=float)
    low = np.percentile(finite, 2.5, method="lower")
    high = np.percentile(finite, 97.5, method="higher")
    return [None if not np.isfinite(low) else float(low), None if not np.isfinite(high) else float(high)]


def robustness_summary(levels, clean_ap, level_aps, clean_draws=None, level_draws=None):
    """{"P", "levels": {ev: AP}, "mPC", "rPC", "EV50"} and, given paired bootstrap draws
    ((n,) for P, (levels, n) for the levels), "<name>_ci" for P, each level, mPC, rPC and EV50."""
    levels = [float(e) for e in levels]
    out = {"P": float(clean_ap), "levels": {e: float(a) for e, a in zip(levels, level_aps)},
           "mPC": float(mpc(level_aps)), "rPC": float(rpc(mpc(level_aps), clean_ap)),
           "EV50": ev50(levels, level_aps, clean_ap)}
    if clean_draws is None or len(clean_draws) == 0:
        return out
    clean_draws, level_draws = np.asarray(clean_draws, float), np.asarray(level_draws, float)
    mpc_draws = mpc(level_draws)
    out["P_ci"] = percentile_interval(clean_draws)
    out["levels_ci"] = {e: percentile_interval(d) for e, d in zip(levels, level_draws)}
    out["mPC_ci"] = percentile_interval(mpc_draws)
    rpc_draws = rpc(mpc_draws, clean_draws)
    finite = rpc_draws[np.isfinite(rpc_draws)]
    out["rPC_ci"] = percentile_interval(finite) if len(finite) else None
    out["EV50_ci"] = _interval_or_beyond([ev50(levels, level_draws[:, r], clean_draws[r])
                                          for r in range(len(clean_draws))])
    return out

