"""The study's report: one table (rows = remedies, columns = test sets) with 95% intervals and
paired differences against `none`, AP against darkness (P / mPC / rPC / EV50), figures, JSON beside it."""
import os

from study.statistics import BASELINE
from torch_utils_lib.atomic_io import atomic_write_json, atomic_write_text
from torch_utils_lib.coco_bootstrap import NOT_SIGNIFICANT, fold_intervals, format_interval
from torch_utils_lib.tables import markdown_table

CELL_METRICS = (("bbox", "AP"), ("bbox", "AP50"), ("segm", "AP"), ("segm", "AP50"), ("PSNR", None),
                ("SSIM", None))
DELTA = "ΔAP"


def cell_values(cell):
    """{column suffix: value} of one (remedy, test set) result, with `<suffix>_ci` intervals and
    `<iou> ΔAP` (the paired difference against none) where the bootstrap gave them."""
    values = {}
    for key, stat in CELL_METRICS:
        if stat is None:
            if cell.get(key) is not None:
                values[key] = cell[key]
        elif key in cell:
            values[f"{key} {stat}"] = cell[key][stat]
            if f"{stat}_ci" in cell[key]:
                values[f"{key} {stat}_ci"] = cell[key][f"{stat}_ci"]
            if stat == "AP" and f"vs_{BASELINE}" in cell[key]:
                delta = cell[key][f"vs_{BASELINE}"]["AP"]
                values[f"{key} {DELTA}"], values[f"{key} {DELTA}_ci"] = delta["delta"], delta["ci"]
    return values


def table_rows(rows, test_sets):
    """{row: {"<set> <metric>": value, "<set> <metric>_ci": [low, high]}} in test-set order, only
    the columns some row fills; the severity sets have their own table (darkness_rows)."""
    table = {}
    for name, cells in rows.items():
        table[name] = {f"{t.name} {k}": v for t in test_sets if t.severity is None
                       for k, v in cell_values(cells.get(t.name, {})).items()}
    return table


def shown(table):
    """The rows with each `<column>_ci` folded into its column as '0.412 [0.388, 0.437]'; a
    difference whose interval includes 0 is marked ' (n.s.)'."""
    return fold_intervals(table, lambda column: column.endswith(DELTA))


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


def write_report(study, remedies, test_sets, rows, figures, curves):
    """report.md and report.json in the study folder; returns the Markdown table."""
    a = study.args
    table = markdown_table(shown(table_rows(rows, test_sets)), first_column="remedy")
    text = ["# Low-light benchmark", "",
            "What low light costs the detector, and which remedy wins it back. Rows are remedies, "
            "columns test sets; AP is COCO AP (pycocotools) on each set's annotation (segm where the "
            "set has masks; RAW sets bbox only); PSNR/SSIM compare the image a remedy produces with "
            "the set's normal-light pair. The reference row is the normal-light detector on that "
            "pair: the set's upper bound. A learned remedy that does not beat gamma/clahe/histeq "
            "is not a result.", ""]
    if a.bootstrap:
        text += [f"Each AP shows its 95% bootstrap interval over the images ({a.bootstrap} resamples, "
                 f"seed {a.seed}); `{DELTA}` is the remedy's AP minus `{BASELINE}`'s on the same "
                 f"test set, on the same resampled images (paired), with its interval; "
                 f"`{NOT_SIGNIFICANT.strip()}` marks a difference whose interval includes 0.", ""]
    text += [table, ""]
    if curves:
        darkness = markdown_table(darkness_rows(curves), first_column="remedy")
        text += ["## AP against darkness", "",
                 "bbox AP on the val set synthesized at fixed darkness levels (EV: exposure 2^EV "
                 "times darker): P is the AP on normal light (for restoration and enhancement "
                 "remedies, which only see low light, the normal-light detector's), mPC the mean "
                 "AP over the levels, rPC = mPC / P, EV50 the darkness at which AP falls to half "
                 "of P (interpolated; '>N' when it stays above half up to the last level). GenISP "
                 "reads each physics level's RAW. "
                 "Synthesis: " + ", ".join(f"`{m}`" for m in curves) + ".", "", darkness, ""]
    text += ["## Remedies", ""]
    text += [f"- `{r.name}`: {r.description}" for r in remedies]
    text += ["", "## Test sets", ""]
    text += [f"- `{t.name}`: {t.kind}, {t.image_dir}" + (f" (normal-light pair {t.normal_dir})"
                                                         if t.normal_dir else "") for t in test_sets]
    text += ["", f"Detector: {a.model} ({a.weights} init, {a.augment} augmentation), {a.epochs} epochs "
             f"on normal light; fine-tuned {a.finetune_epochs} epochs on {study.target} low light "
             f"(mixed: {a.mix_ratio:g} low light). Diffusion: UNet width {a.diffusion_dim} x "
             f"({a.diffusion_dim_mults}), {a.diffusion_epochs} epochs, DDIM {a.diffusion_steps} "
             f"steps. GenISP: {a.genisp_epochs} epochs. Detections of every (remedy, test set) "
             f"are in eval/ (COCO results format; paths in report.json).", ""]
    text += ["## Figures", ""] + [f"![{name}]({os.path.relpath(p, study.out)})"
                                  for name, p in figures.items() if p]
    text += ["", "## Commands", "", "```"] + study.commands + ["```", ""]
    text += ["## Step times (s)", ""] + [f"- {k}: {v:.0f}" for k, v in study.seconds.items()]
    text += [f"- all steps: {sum(study.seconds.values()):.0f}", ""]
    atomic_write_text(study.path("report.md"), "\n".join(text))
    atomic_write_json(study.path("report.json"), {
        "rows": rows, "table": table_rows(rows, test_sets), "darkness": curves,
        "bootstrap": {"resamples": a.bootstrap, "seed": a.seed, "level": 0.95},
        "remedies": [{"name": r.name, "description": r.description} for r in remedies],
        "test_sets": [t.as_dict() for t in test_sets], "figures": figures,
        "commands": study.commands, "seconds": study.seconds})
    return table


def make_figures(study, remedies, test_sets, rows, inputs, curves):
    """examples.png, loss_curves.png, ap_bars.png, darkness.png (darkness_<method>.png for a
    second synthesis method); returns {name: png}."""
    from torch_utils_lib.plots import plot_bars, plot_darkness_curves, plot_loss_grid
    figures = {"examples": examples_figure(study, remedies, test_sets, inputs)}
    logs = {title: study.path(*parts, "train_log.jsonl") for r in remedies for title, parts in r.logs}
    figures["loss curves"] = plot_loss_grid({k: v for k, v in logs.items() if os.path.isfile(v)},
                                            study.path("loss_curves.png"))
    bars = {t.name: {r: cells[t.name]["bbox"]["AP"] for r, cells in rows.items()
                     if "bbox" in cells.get(t.name, {})} for t in test_sets if t.severity is None}
    figures["AP"] = plot_bars(bars, study.path("ap_bars.png"), ylabel="bbox AP",
                              title="COCO bbox AP per test set")
    for i, (method, by_remedy) in enumerate(curves.items()):
        png = study.path("darkness.png" if i == 0 else f"darkness_{method}.png")
        figures[f"darkness {method}"] = plot_darkness_curves(
            by_remedy, png, ylabel="bbox AP", title=f"bbox AP against darkness ({method} synthesis)")
    return figures


def examples_figure(study, remedies, test_sets, inputs):
    """The same low-light images through every remedy (its detector's detections drawn), the
    normal-light pair first where there is one, GenISP on the matching RAW last."""
    import cv2
    import torch

    from torch_utils_lib.detection_models import load_detector, predict_images
    from torch_utils_lib.image_io import annotation_file_names, read_rgb, write_image
    from torch_utils_lib.visualize import draw_detections, side_by_side

    a = study.args
    device = torch.device(a.device)
    models = {}
    genisp_dir = None
    raw = next((t for t in test_sets if t.kind == "raw" and t.severity is None), None)
    if raw is not None and any(r.name == "genisp" for r in remedies):
        genisp_dir = study.path("genisp", "examples")
        study.run("GenISP examples", "genisp/inference.py", "--raw_dir", raw.image_dir, "--output_dir",
                  genisp_dir, "--weight_path", study.path("genisp", "last.pth"), "--detect",
                  "--device", a.device)
    drawn = [t for t in test_sets if t.kind == "rgb" and t.low_light and t.severity is None
             and t.method in (None, study.target)]
    lines = []
    for test_set in drawn:
        count = a.count if test_set.method else min(a.count, 2)
        for name in annotation_file_names(test_set.annotation)[:count]:
            panels, titles = [], []
            columns = ([("normal-light pair", "none", test_set.normal_dir)] if test_set.normal_dir else [])
            columns += [(f"{r.name} ({test_set.name})" if r.name == "none" else r.name, r.name,
                         inputs[r.name, test_set.name]) for r in remedies
                        if (r.name, test_set.name) in inputs]
            for title, remedy_name, folder in columns:
                checkpoint = next(r for r in remedies if r.name == remedy_name).detector(study)
                if checkpoint not in models:
                    models[checkpoint] = load_detector(checkpoint, device)
                model, config = models[checkpoint]
                image = read_rgb(os.path.join(folder, name))
                output = predict_images(model, [image], device)[0]
                panels.append(draw_detections(image, output, config["categories"], 0.5))
                titles.append(title)
            overlay = os.path.join(genisp_dir or "", os.path.splitext(os.path.basename(name))[0]
                                   + "_detections.png")
            if genisp_dir and test_set.method and os.path.isfile(overlay):
                panels.append(cv2.resize(read_rgb(overlay), (panels[0].shape[1], panels[0].shape[0]),
                                         interpolation=cv2.INTER_NEAREST))
                titles.append("genisp (RAW)")
            lines.append(side_by_side(panels, titles))
    if not lines:
        return None
    width = max(line.shape[1] for line in lines)
    grid = [cv2.copyMakeBorder(line, 0, 4, 0, width - line.shape[1], cv2.BORDER_CONSTANT,
                               value=(255, 255, 255)) for line in lines]
    path = study.path("examples.png")
    write_image(path, cv2.vconcat(grid))
    return path
