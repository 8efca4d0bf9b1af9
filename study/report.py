"""The study's report: what the benchmark computed, formatted. A compact main table (one column
per test set: bbox AP with its 95% interval and whether it differs from `none` and from the best
classical enhancement beyond the noise), the details per IoU type, AP against darkness (P / mPC /
rPC / EV50), figures, and report.json with everything."""
import os

import cv2

from study.remedies import BASELINE
from study.statistics import BEST_CLASSICAL, FROZEN
from study.sets import COLUMN
from torch_utils_lib.evaluation.metrics import IOU_TYPES, REPORT_QUALITY, SUMMARY_STATS
from torch_utils_lib.toolkit.atomic_io import atomic_write_json, atomic_write_text
from torch_utils_lib.evaluation.coco_bootstrap import (HIGHER, LOWER, NOT_SIGNIFICANT, WITHIN,
                                                       difference_mark, fold_intervals,
                                                       format_interval)
from torch_utils_lib.data.image_io import write_image
from torch_utils_lib.plots.charts import plot_bars, plot_darkness_curves, plot_loss_grid
from torch_utils_lib.toolkit.tables import markdown_table
from torch_utils_lib.plots.drawing import side_by_side

DETAIL_METRICS = {iou_type: SUMMARY_STATS for iou_type in IOU_TYPES}
QUALITY_METRICS = tuple(REPORT_QUALITY.values())
DELTA = "ΔAP"
DELTA_CLASSICAL = "ΔAP vs classical"
DELTA_FROZEN = "ΔAP vs frozen"


def columns(test_sets):
    return [t for t in test_sets if t.role == COLUMN]


def difference_values(prefix, stats):
    """`<prefix> ΔAP` against none and `<prefix> ΔAP vs classical` with their intervals."""
    values = {}
    for key, column in ((f"vs_{BASELINE}", DELTA), (f"vs_{BEST_CLASSICAL}", DELTA_CLASSICAL),
                        (f"vs_{FROZEN}", DELTA_FROZEN)):
        if key in stats:
            delta = stats[key]["AP"]
            values[f"{prefix} {column}"], values[f"{prefix} {column}_ci"] = delta["delta"], delta["ci"]
    return values


def cell_values(cell, iou_type):
    """{column suffix: value} of one (remedy, test set) result for one IoU type (None: the image
    quality), with `<suffix>_ci` intervals where the bootstrap gave them."""
    if iou_type is None:
        return {k: cell[k] for k in QUALITY_METRICS if cell.get(k) is not None}
    if iou_type not in cell:
        return {}
    stats, values = cell[iou_type], {}
    for stat in DETAIL_METRICS[iou_type]:
        values[f"{iou_type} {stat}"] = stats[stat]
        if f"{stat}_ci" in stats:
            values[f"{iou_type} {stat}_ci"] = stats[f"{stat}_ci"]
    values.update(difference_values(iou_type, stats))
    return values


def set_rows(rows, test_set):
    """{row: {"<set> <metric>": value, "<set> <metric>_ci": [low, high]}} of one test set: bbox,
    segm and image quality."""
    return {name: {f"{test_set.name} {k}": v for iou_type in (*IOU_TYPES, None)
                   for k, v in cell_values(cells.get(test_set.name, {}), iou_type).items()}
            for name, cells in rows.items()}


def set_columns(detail, test_set):
    """The columns some row fills, metric by metric: AP, AP50, ΔAP, ΔAP vs classical per IoU
    type, then PSNR, SSIM."""
    order = [f"{iou} {m}" for iou in DETAIL_METRICS
             for m in (*DETAIL_METRICS[iou], DELTA, DELTA_CLASSICAL, DELTA_FROZEN)] + list(QUALITY_METRICS)
    names = [f"{test_set.name} {metric}" for metric in order]
    return [c for c in names if any(c in row for row in detail.values())]


def table_rows(rows, test_sets):
    """{row: {"<set> <metric>": value, "<set> <metric>_ci": [low, high]}} over every column test
    set; the darkness levels have their own table (darkness_rows)."""
    table = {name: {} for name in rows}
    for t in columns(test_sets):
        for name, values in set_rows(rows, t).items():
            table[name].update(values)
    return table


def shown(table):
    """The rows with each `<column>_ci` folded into its column as '0.412 [0.388, 0.437]'; a
    difference whose interval includes 0 is marked ' (n.s.)'."""
    return fold_intervals(table, lambda column: DELTA in column)


def mark(difference):
    """The mark of a paired difference's AP (difference_mark)."""
    return difference_mark(difference["AP"]["ci"])


def headline_rows(rows, test_sets):
    """The main table: {row: {set: 'AP [low, high] <vs none> <vs best classical>'}}, bbox AP."""
    table = {}
    for name, cells in rows.items():
        table[name] = {}
        for t in columns(test_sets):
            stats = cells.get(t.name, {}).get("bbox")
            if stats is None:
                continue
            text = (format_interval(stats["AP"], stats["AP_ci"]) if "AP_ci" in stats
                    else f"{stats['AP']:.3f}")
            if name != BASELINE and f"vs_{BASELINE}" in stats:
                text += " " + mark(stats[f"vs_{BASELINE}"])
                if f"vs_{BEST_CLASSICAL}" in stats:
                    text += mark(stats[f"vs_{BEST_CLASSICAL}"])
            table[name][t.name] = text
    return table


def ev_text(value, last_level):
    """An EV50 (or an end of its interval): None is beyond the last level."""
    return f">{last_level:g}" if value is None else f"{value:.2f}"


def darkness_rows(curves):
    """{row: {"P", "<EV> EV", "mPC", "rPC", "EV50"}} as text (intervals where there are), one row
    per remedy (per remedy and method when several methods have levels)."""
    table = {}
    for method, by_remedy in curves.items():
        for remedy, curve in by_remedy.items():
            levels = sorted(curve["levels"], key=float)
            last = float(levels[-1])

            def value(point, interval):
                return point if interval is None else format_interval(point, interval)
            row = {"P": value(curve["P"], curve.get("P_ci"))}
            row.update({f"{float(e):g} EV": value(curve["levels"][e], curve.get("levels_ci", {}).get(e))
                        for e in levels})
            row["mPC"] = value(curve["mPC"], curve.get("mPC_ci"))
            row["rPC"] = value(curve["rPC"], curve.get("rPC_ci"))
            row["EV50"] = ev_text(curve["EV50"], last) + (
                f" [{ev_text(curve['EV50_ci'][0], last)}, {ev_text(curve['EV50_ci'][1], last)}]"
                if curve.get("EV50_ci") else "")
            table[remedy if len(curves) == 1 else f"{remedy} ({method})"] = row
    return table


def remedy_record(study, remedy):
    """What report.json and report.md say of a remedy: its settings, flags, weights and family."""
    return {"name": remedy.name, "description": remedy.description,
            "settings": remedy.settings(study) if remedy.settings else None,
            "flags": {f"--{remedy.name}_{f.name}": getattr(study.args, f"{remedy.name}_{f.name}")
                      for f in remedy.flags},
            "weights": remedy.trained_weights(study), "classical": remedy.classical,
            "learned": remedy.learned, "family": remedy.family}


def condition_rows(values):
    """{row: {"<value> (<n> images)": 'AP [low, high] <vs none>'}} of one condition field's
    {value: {"images", "rows"}} (study.conditions.condition_stats)."""
    table = {}
    for value, found in values.items():
        column = f"{value} ({found['images']} images)"
        for row, stats in found["rows"].items():
            text = format_interval(stats["AP"], stats["AP_ci"])
            if f"vs_{BASELINE}" in stats:
                text += " " + mark(stats[f"vs_{BASELINE}"])
            table.setdefault(row, {})[column] = text
    return table


def condition_text(conditions):
    """report.md's per-condition section (empty without a set carrying a condition field)."""
    if not conditions:
        return []
    text = ["## AP per real condition", "",
            "bbox AP with its 95% interval on the images of each value of an image-level "
            "condition field of the set's annotation (ExDark: `lighting`, its 10 lighting types, "
            f"and `scene`, indoor or outdoor), each value's images resampled on their own; the "
            f"mark compares the row with `{BASELINE}` on the same resampled images.", ""]
    for set_name, fields in conditions.items():
        for field, values in fields.items():
            text += [f"### {set_name}: {field}", "",
                     markdown_table(condition_rows(values), first_column="remedy"), ""]
    return text


def write_report(study, rows, figures, curves, examples, conditions=None):
    """report.md and report.json in the study folder; returns the main Markdown table.
    `conditions`: study.conditions.condition_tables."""
    args, test_sets = study.args, study.test_sets
    headline = markdown_table(headline_rows(rows, test_sets), first_column="remedy")
    text = ["# Low-light benchmark", "",
            "What low light costs the detector, and which remedy wins it back. Rows are remedies, "
            "columns test sets; AP is COCO AP (pycocotools) on each set's annotation. The "
            "reference row is the normal-light detector on the set's normal-light pair: its "
            "upper bound. A learned remedy that does not beat the classical enhancements "
            f"({', '.join(r.name for r in study.remedies if r.classical) or 'none selected'}) "
            "is not a result.", ""]
    if args.bootstrap:
        text += [f"bbox AP with its 95% bootstrap interval over the images ({args.bootstrap} resamples, "
                 f"seed {args.seed}). The first mark compares the row with `{BASELINE}` on the same "
                 f"resampled images (paired), the second (learned remedies) with the best classical "
                 f"enhancement on that set: {HIGHER} higher, {LOWER} lower beyond the noise (the "
                 f"difference's interval excludes 0), {WITHIN} within the noise.", ""]
    text += [headline, ""]
    text += ["## Per test set", "",
             "AP and AP50 per IoU type (segm where the set has masks; RAW sets bbox only)"
             + (f"; `{DELTA}`: the row's AP minus `{BASELINE}`'s on the same resampled images; "
                f"`{DELTA_CLASSICAL}`: minus the best classical enhancement's (report.json names it "
                f"per set); `{DELTA_FROZEN}` (a `+ft` row): minus its remedy's own row, the same "
                f"images through the frozen normal-light detector; `{NOT_SIGNIFICANT.strip()}`: the interval includes 0" if args.bootstrap else "")
             + "; PSNR (dB) and SSIM of the image a remedy produces against the set's normal-light "
             "pair.", ""]
    for t in columns(test_sets):
        detail = {name: row for name, row in set_rows(rows, t).items() if row}
        text += [f"### {t.name}", "", markdown_table(shown(detail), first_column="remedy",
                                                     columns=set_columns(detail, t)), ""]
    if curves:
        raw_readers = ", ".join(f"`{r.name}`" for r in study.remedies if r.score_raw)
        darkness = markdown_table(darkness_rows(curves), first_column="remedy")
        text += ["## AP against darkness", "",
                 "bbox AP on the val set synthesized at fixed darkness levels (EV: exposure 2^EV "
                 "times darker): P is the AP on normal light (for restoration and enhancement "
                 "remedies, which only see low light, the normal-light detector's), mPC the mean "
                 "AP over the levels, rPC = mPC / P, EV50 the darkness at which AP falls to half "
                 "of P (interpolated; '>N' when it stays above half up to the last level)."
                 + (f" {raw_readers} read each level's RAW." if raw_readers else "")
                 + " Synthesis: " + ", ".join(f"`{m}`" for m in curves) + ".", "", darkness, ""]
    text += condition_text(conditions)
    records = [remedy_record(study, r) for r in study.remedies]
    text += ["## Remedies", ""]
    text += [f"- `{r['name']}`: {r['description']}" + (f" ({r['settings']})" if r["settings"] else "")
             for r in records]
    text += ["", "## Test sets", ""]
    text += [f"- `{t.name}`: {t.kind}, {t.image_dir}" + (f" (normal-light pair {t.normal_dir})"
                                                         if t.normal_dir else "") for t in test_sets]
    text += ["", f"Detector: {args.model} ({args.weights} init, {study.augment} augmentation), {args.epochs} epochs "
             f"on normal light. Detections of every (remedy, test set) are in eval/ (COCO results "
             f"format; paths in report.json).", ""]
    text += ["## Figures", ""] + [f"![{name}]({os.path.relpath(p, study.out)})"
                                  for name, p in figures.items() if p]
    text += ["", "## Commands", "", "```"] + study.commands + ["```", ""]
    text += ["## Step times (s)", ""] + [f"- {k}: {v:.0f}" for k, v in study.seconds.items()]
    text += [f"- all steps: {sum(study.seconds.values()):.0f}", ""]
    atomic_write_text(study.path("report.md"), "\n".join(text))
    atomic_write_json(study.path("report.json"), {
        "rows": rows, "headline": headline_rows(rows, test_sets),
        "table": table_rows(rows, test_sets),
        "darkness": curves, "conditions": conditions or {}, "bootstrap": {"resamples": args.bootstrap, "seed": args.seed, "level": 0.95},
        "remedies": records, "test_sets": [t.as_dict() for t in test_sets], "figures": figures,
        "examples": [{"test_set": s, "file_name": n, "columns": [title for title, _ in panels]}
                     for s, n, panels in examples],
        "commands": study.commands, "seconds": study.seconds})
    return headline


def make_figures(study, rows, curves, examples):
    """examples.png, loss_curves.png, ap_bars.png, darkness.png (darkness_<method>.png for a
    second synthesis method); returns {name: png}."""
    figures = {"examples": examples_figure(study.path("examples.png"), examples)}
    logs = {title: study.path(*parts, "train_log.jsonl") for r in study.remedies for title, parts in r.logs}
    figures["loss curves"] = plot_loss_grid({k: v for k, v in logs.items() if os.path.isfile(v)},
                                            study.path("loss_curves.png"))
    sets = columns(study.test_sets)
    bars = {t.name: {r: cells[t.name]["bbox"]["AP"] for r, cells in rows.items()
                     if "bbox" in cells.get(t.name, {})} for t in sets}
    spans = {t.name: {r: cells[t.name]["bbox"]["AP_ci"] for r, cells in rows.items()
                      if "AP_ci" in cells.get(t.name, {}).get("bbox", {})} for t in sets}
    # rows that are no remedy (the normal-light reference) go with the baseline
    families = {row: next((r.family for r in study.remedies if r.name == row), "baseline")
                for row in rows}
    figures["AP"] = plot_bars(bars, study.path("ap_bars.png"), ylabel="bbox AP",
                              title="COCO bbox AP per test set (95% intervals)", intervals=spans,
                              families=families, baseline=BASELINE)
    for i, (method, by_remedy) in enumerate(curves.items()):
        png = study.path("darkness.png" if i == 0 else f"darkness_{method}.png")
        figures[f"darkness {method}"] = plot_darkness_curves(
            by_remedy, png, ylabel="bbox AP", title=f"bbox AP against darkness ({method} synthesis)",
            families=families, baseline=BASELINE)
    return figures


def examples_figure(path, examples):
    """One line of titled panels per (test set, image) of pipeline.example_lines, in one PNG."""
    if not examples:
        return None
    lines = []
    for _, _, panels in examples:
        height, width = panels[0][1].shape[:2]
        images = [image if image.shape[:2] == (height, width) else
                  cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)
                  for _, image in panels]
        lines.append(side_by_side(images, [title for title, _ in panels]))
    width = max(line.shape[1] for line in lines)
    grid = [cv2.copyMakeBorder(line, 0, 4, 0, width - line.shape[1], cv2.BORDER_CONSTANT,
                               value=(255, 255, 255)) for line in lines]
    write_image(path, cv2.vconcat(grid))
    return path
