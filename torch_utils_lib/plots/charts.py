"""PNG figures: loss curves from JSON-lines logs and AP bar charts (matplotlib, no display)."""
import io
import os

from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes, read_jsonl


def _pyplot():
    """matplotlib's pyplot on the Agg backend, imported on first use: it adds about a second
    to the start-up of every script that imports this module."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path):
    """Write a matplotlib figure as PNG atomically and close it."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def draw_loss_curves(ax, log_path, smooth=20, title=None):
    """Every loss column of a JSON-lines training log against the iteration, on `ax`."""
    records = [r for r in read_jsonl(log_path) if "loss" in r]
    keys = [k for k in records[0] if k.startswith("loss")] if records else []
    for key in keys:
        values = [r.get(key, float("nan")) for r in records]
        window = max(1, min(smooth, len(values) // 10))
        smoothed = [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
                    for i in range(len(values))]
        ax.plot(range(len(values)), smoothed, label=key, linewidth=1.5 if key == "loss" else 1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (moving average)")
    if records and min(min(r[k] for r in records) for k in keys) > 0:
        ax.set_yscale("log")
    if keys:
        ax.legend(fontsize=7)
    ax.set_title(title or os.path.basename(os.path.dirname(os.path.abspath(log_path))) or "training")
    return bool(records)


def plot_loss_curves(log_path, png_path, smooth=20):
    """PNG of one training log's loss curves (None when the log has no losses yet)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    if not draw_loss_curves(ax, log_path, smooth):
        plt.close(fig)
        return None
    return save_figure(fig, png_path)


def plot_loss_grid(logs, png_path, smooth=20):
    """PNG with one panel per {title: JSON-lines log}."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, max(1, len(logs)), figsize=(4.5 * max(1, len(logs)), 3.6), squeeze=False)
    for ax, (title, path) in zip(axes[0], logs.items()):
        draw_loss_curves(ax, path, smooth, title)
    fig.tight_layout()
    return save_figure(fig, png_path)


def plot_bars(values, png_path, ylabel="AP", title="", intervals=None):
    """Grouped bar chart of {group: {series: value}}; `intervals` ({group: {series: [low,
    high]}}) draws each bar's interval as an error bar."""
    plt = _pyplot()
    groups = list(values)
    series = sorted({s for g in groups for s in values[g]}, key=lambda s: list(
        k for g in groups for k in values[g]).index(s))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(groups) * max(1, len(series)) / 2), 4))
    for i, name in enumerate(series):
        xs = [g + i * width for g in range(len(groups))]
        heights = [values[g].get(name, 0) for g in groups]
        ax.bar(xs, heights, width, label=name)
        spans = [(x, h, (intervals or {}).get(g, {}).get(name)) for x, h, g in zip(xs, heights, groups)]
        spans = [(x, h, span) for x, h, span in spans if span]
        if spans:
            ax.errorbar([x for x, _, _ in spans], [h for _, h, _ in spans], fmt="none", ecolor="black",
                        # a percentile interval can miss its point estimate on a few images
                        yerr=[[max(0, h - s[0]) for _, h, s in spans],
                              [max(0, s[1] - h) for _, h, s in spans]],
                        elinewidth=0.8, capsize=2)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels(groups, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, png_path)


def plot_darkness_curves(curves, png_path, ylabel="AP", title=""):
    """AP against darkness in stops: one line per remedy from its normal-light AP at 0 EV through
    each level, with its 95% interval as a band where the curve has one.

    `curves` is {remedy: robustness.robustness_summary(...)} ("P", "levels", optional "P_ci",
    "levels_ci").
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        levels = sorted(curve["levels"], key=float)
        evs = [0.0] + [float(e) for e in levels]
        line, = ax.plot(evs, [curve["P"]] + [curve["levels"][e] for e in levels], marker="o", label=name)
        if "P_ci" in curve and "levels_ci" in curve:
            bands = [curve["P_ci"]] + [curve["levels_ci"][e] for e in levels]
            ax.fill_between(evs, [b[0] for b in bands], [b[1] for b in bands], color=line.get_color(),
                            alpha=0.2, linewidth=0)
    ax.set_xlabel("darkness (EV: exposure 2^EV times darker; 0 = normal light)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return save_figure(fig, png_path)


def plot_forest(rows, iou_types, stat, baseline, png_path):
    """study/score.py's forest plot: per IoU type, each system's `stat` with its 95% interval and,
    against `baseline`, its paired difference with its interval (a line at 0). `rows` is
    {system: {iou type: stats with <stat>_ci and vs_<baseline>}}."""
    plt = _pyplot()
    panels = 2 if baseline else 1
    fig, axes = plt.subplots(len(iou_types), panels, squeeze=False,
                             figsize=(5 * panels, 0.5 * len(rows) * len(iou_types) + 1.5))
    names = list(rows)
    for r, iou_type in enumerate(iou_types):
        y = list(range(len(names)))[::-1]
        ax = axes[r][0]
        for yi, name in zip(y, names):
            s = rows[name][iou_type]
            low, high = s.get(f"{stat}_ci", [s[stat], s[stat]])
            ax.errorbar(s[stat], yi, xerr=[[max(s[stat] - low, 0)], [max(high - s[stat], 0)]],
                        fmt="o", capsize=3,
                        color="tab:blue")
        ax.set_yticks(y, names)
        ax.set_title(f"{iou_type} {stat} (95% interval)")
        if baseline:
            ax = axes[r][1]
            for yi, name in zip(y, names):
                d = rows[name][iou_type].get(f"vs_{baseline}", {}).get(stat)
                if d:
                    low, high = d["ci"]
                    color = "tab:green" if low > 0 else "tab:red" if high < 0 else "tab:gray"
                    ax.errorbar(d["delta"], yi, xerr=[[max(d["delta"] - low, 0)],
                                                      [max(high - d["delta"], 0)]],
                                fmt="s", capsize=3, color=color)
            ax.axvline(0, color="black", linewidth=0.8)
            ax.set_yticks(y, names)
            ax.set_title(f"Δ {stat} vs {baseline} (paired, 95%)")
    fig.tight_layout()
    return save_figure(fig, png_path)
