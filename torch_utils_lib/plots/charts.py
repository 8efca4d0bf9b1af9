"""PNG figures: loss curves from JSON-lines logs, AP bar charts and AP-against-darkness small
multiples (matplotlib, no display); every series its own colour and marker, one hue per family."""
import colorsys
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


# One hue per family (HLS hues: blue, orange, green, red, purple, gold, pink, teal), shades of it
# within a family; the baseline black, the rest of its family grey.
FAMILY_HUES = (0.60, 0.08, 0.33, 0.99, 0.77, 0.14, 0.90, 0.48)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
BASELINE_STYLE = {"color": (0.0, 0.0, 0.0), "marker": "o"}
REFERENCE_STYLE = {"color": (0.45, 0.45, 0.45), "linestyle": "--"}


def series_styles(names, families=None, baseline=None):
    """{name: {"color": (r, g, b), "marker"}}: every series its own colour and marker; the series
    of one family ({name: family}; default: one family for all) in shades of one hue, `baseline`
    black and the rest of its family grey.

    Families take hues in order of first appearance; markers run on across families, so no two
    series share a marker while there are markers left (12).
    """
    families = families or {}
    home = families.get(baseline, "") if baseline in names else None
    order = []
    for name in names:
        if name != baseline and families.get(name, "") not in order:
            order.append(families.get(name, ""))
    styles, marker, hues = {}, 1 if baseline in names else 0, iter(FAMILY_HUES * 4)
    for family in order:
        members = [n for n in names if n != baseline and families.get(n, "") == family]
        hue, saturation = (0.0, 0.0) if family == home else (next(hues), 0.75)
        for j, name in enumerate(members):
            lightness = 0.32 + 0.30 * j / max(1, len(members) - 1)  # dark to mid: visible on white
            styles[name] = {"color": colorsys.hls_to_rgb(hue, lightness, saturation),
                            "marker": MARKERS[marker % len(MARKERS)]}
            marker += 1
    if baseline in names:
        styles[baseline] = dict(BASELINE_STYLE)
    return styles


def plot_bars(values, png_path, ylabel="AP", title="", intervals=None, families=None,
              baseline=None):
    """Grouped bar chart of {group: {series: value}}; `intervals` ({group: {series: [low,
    high]}}) draws each bar's interval as an error bar. Each series has its own colour (one hue
    per family of `families`, `baseline` black) and its marker on the bar's top."""
    plt = _pyplot()
    groups = list(values)
    series = sorted({s for g in groups for s in values[g]}, key=lambda s: list(
        k for g in groups for k in values[g]).index(s))
    width = 0.8 / max(1, len(series))
    styles = series_styles(series, families, baseline)
    fig, ax = plt.subplots(figsize=(min(16, max(5, 0.35 * len(groups) * max(1, len(series)))), 4))
    for i, name in enumerate(series):
        # a group without this series (a remedy not scored on a set) gets no bar and no marker
        present = [g for g in range(len(groups)) if name in values[groups[g]]]
        xs = [g + i * width for g in present]
        heights = [values[groups[g]][name] for g in present]
        groups_of = [groups[g] for g in present]
        ax.bar(xs, heights, width, color=styles[name]["color"], edgecolor="white", linewidth=0.3)
        ax.plot(xs, heights, linestyle="none", marker=styles[name]["marker"], markersize=4,
                color=styles[name]["color"], markeredgecolor="black", markeredgewidth=0.4,
                label=name)
        spans = [(x, h, (intervals or {}).get(g, {}).get(name)) for x, h, g in zip(xs, heights, groups_of)]
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
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, png_path)


def _darkness_curve(ax, curve, style, label):
    """One remedy's AP from its normal-light P at 0 EV through each level, with its band."""
    levels = sorted(curve["levels"], key=float)
    evs = [0.0] + [float(e) for e in levels]
    ax.plot(evs, [curve["P"]] + [curve["levels"][e] for e in levels], color=style["color"],
            marker=style["marker"], markersize=4, linewidth=1.3, label=label)
    if "P_ci" in curve and "levels_ci" in curve:
        bands = [curve["P_ci"]] + [curve["levels_ci"][e] for e in levels]
        ax.fill_between(evs, [b[0] for b in bands], [b[1] for b in bands], color=style["color"],
                        alpha=0.18, linewidth=0)
    return evs


def plot_darkness_curves(curves, png_path, ylabel="AP", title="", families=None, baseline="none",
                         reference="normal-light pair (reference)"):
    """AP against darkness in stops as small multiples: one panel per family of `families`
    ({remedy: family}; default one panel), each remedy with its 95% band where it has one, and in
    every panel `baseline` and the `reference` (the normal-light detector on the normal-light
    pair of every level: `baseline`'s P, a dashed line with its band).

    `curves` is {remedy: robustness.robustness_summary(...)} ("P", "levels", optional "P_ci",
    "levels_ci"). Panels share both axes, so curves compare across panels.
    """
    plt = _pyplot()
    names = list(curves)
    styles = series_styles(names, families, baseline)
    groups = {}
    for name in names:
        if name != baseline:
            groups.setdefault((families or {}).get(name, ""), []).append(name)
    if not groups:
        groups = {"": []}
    columns = min(3, len(groups))
    rows = -(-len(groups) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows), sharex=True,
                             sharey=True, squeeze=False)
    top = max([c["P"] for c in curves.values()] +
              [max(c.get("P_ci", [0])) for c in curves.values()] + [0.05])
    for ax, (family, members) in zip(axes.flat, groups.items()):
        if baseline in curves:
            evs = _darkness_curve(ax, curves[baseline], styles[baseline], baseline)
            base = curves[baseline]
            ax.plot([0, max(evs)], [base["P"]] * 2, label=reference, **REFERENCE_STYLE)
            if "P_ci" in base:
                ax.axhspan(base["P_ci"][0], base["P_ci"][1], color=REFERENCE_STYLE["color"],
                           alpha=0.1, linewidth=0)
        for name in members:
            _darkness_curve(ax, curves[name], styles[name], name)
        ax.set_title(family or title, fontsize=9)
        ax.set_ylim(0, top * 1.05)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for column in range(columns):  # the lowest panel of each column carries the EV axis
        ax = [a for a in axes[:, column] if a.get_visible()][-1]
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("darkness (EV: 2^EV times darker)")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    if title and any(groups):
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
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
