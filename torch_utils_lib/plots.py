"""PNG figures: loss curves from JSON-lines logs and AP bar charts (matplotlib, no display)."""
import io
import os

from torch_utils_lib.runinfo import atomic_write_bytes, read_jsonl


def _pyplot():
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


def plot_loss_curves(log_path, png_path, smooth=20):
    """Plot every loss column of a JSON-lines training log against the global iteration."""
    records = [r for r in read_jsonl(log_path) if "loss" in r]
    if not records:
        return None
    plt = _pyplot()
    keys = [k for k in records[0] if k.startswith("loss")]
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = range(len(records))
    for key in keys:
        values = [r.get(key, float("nan")) for r in records]
        window = max(1, min(smooth, len(values) // 10))
        smoothed = [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
                    for i in range(len(values))]
        ax.plot(steps, smoothed, label=key, linewidth=1.5 if key == "loss" else 1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (moving average)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(os.path.basename(os.path.dirname(os.path.abspath(log_path))) or "training")
    return save_figure(fig, png_path)


def plot_bars(values, png_path, ylabel="AP", title=""):
    """Grouped bar chart of {group: {series: value}}."""
    plt = _pyplot()
    groups = list(values)
    series = sorted({s for g in groups for s in values[g]}, key=lambda s: list(
        k for g in groups for k in values[g]).index(s))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(groups) * max(1, len(series)) / 2), 4))
    for i, name in enumerate(series):
        xs = [g + i * width for g in range(len(groups))]
        ax.bar(xs, [values[g].get(name, 0) for g in groups], width, label=name)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels(groups, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, png_path)
