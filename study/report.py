"""The study's report: one table (rows = remedies, columns = test sets), figures, JSON beside it."""
import os

from torch_utils_lib.atomic_io import atomic_write_json, atomic_write_text

CELL_METRICS = (("bbox", "AP"), ("bbox", "AP50"), ("segm", "AP"), ("segm", "AP50"), ("PSNR", None),
                ("SSIM", None))


def cell_values(cell):
    """{column suffix: value} of one (remedy, test set) result."""
    values = {}
    for key, stat in CELL_METRICS:
        if stat is None:
            if cell.get(key) is not None:
                values[key] = cell[key]
        elif key in cell:
            values[f"{key} {stat}"] = cell[key][stat]
    return values


def table_rows(rows, test_sets):
    """{row: {"<set> <metric>": value}} in test-set order, only the columns some row fills."""
    table = {}
    for name, cells in rows.items():
        table[name] = {f"{t.name} {k}": v for t in test_sets
                       for k, v in cell_values(cells.get(t.name, {})).items()}
    return table


def write_report(study, remedies, test_sets, rows, figures):
    """report.md and report.json in the study folder; returns the Markdown table."""
    from mask_rcnn.evaluation import markdown_table
    table = markdown_table(table_rows(rows, test_sets), first="remedy")
    a = study.args
    text = ["# Low-light benchmark", "",
            "What low light costs the detector, and which remedy wins it back. Rows are remedies, "
            "columns test sets; AP is COCO AP (pycocotools) on each set's annotation (segm where the "
            "set has masks; RAW sets bbox only); PSNR/SSIM compare the image a remedy produces with "
            "the set's normal-light pair. The reference row is the normal-light detector on that "
            "pair: the set's upper bound. A learned remedy that does not beat gamma/clahe/histeq "
            "is not a result.", "", table, "", "## Remedies", ""]
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
    text += ["## Step times (s)", ""] + [f"- {k}: {v:.0f}" for k, v in study.seconds.items()] + [""]
    atomic_write_text(study.path("report.md"), "\n".join(text))
    atomic_write_json(study.path("report.json"), {
        "rows": rows, "table": table_rows(rows, test_sets),
        "remedies": [{"name": r.name, "description": r.description} for r in remedies],
        "test_sets": [t.as_dict() for t in test_sets], "figures": figures,
        "commands": study.commands, "seconds": study.seconds})
    return table


def make_figures(study, remedies, test_sets, rows, inputs):
    """examples.png, loss_curves.png, ap_bars.png; returns {name: png}."""
    from torch_utils_lib.plots import plot_bars, plot_loss_grid
    figures = {"examples": examples_figure(study, remedies, test_sets, inputs)}
    logs = {title: study.path(*parts, "train_log.jsonl") for r in remedies for title, parts in r.logs}
    figures["loss curves"] = plot_loss_grid({k: v for k, v in logs.items() if os.path.isfile(v)},
                                            study.path("loss_curves.png"))
    bars = {t.name: {r: cells[t.name]["bbox"]["AP"] for r, cells in rows.items()
                     if "bbox" in cells.get(t.name, {})} for t in test_sets}
    figures["AP"] = plot_bars(bars, study.path("ap_bars.png"), ylabel="bbox AP",
                              title="COCO bbox AP per test set")
    return figures


def examples_figure(study, remedies, test_sets, inputs):
    """The same low-light images through every remedy (its detector's detections drawn), the
    normal-light pair first where there is one, GenISP on the matching RAW last."""
    import cv2
    import torch

    from mask_rcnn.evaluation import instance_panel
    from torch_utils_lib.detection_models import load_detector
    from torch_utils_lib.image_io import annotation_file_names, read_rgb, write_image
    from torch_utils_lib.visualize import side_by_side

    a = study.args
    device = torch.device(a.device)
    models = {}
    genisp_dir = None
    raw = next((t for t in test_sets if t.kind == "raw"), None)
    if raw is not None and any(r.name == "genisp" for r in remedies):
        genisp_dir = study.path("genisp", "examples")
        study.run("GenISP examples", "genisp/inference.py", "--raw_dir", raw.image_dir, "--output_dir",
                  genisp_dir, "--weight_path", study.path("genisp", "last.pth"), "--detect",
                  "--device", a.device)
    shown = [t for t in test_sets if t.kind == "rgb" and t.low_light and (t.method in (None, study.target))]
    lines = []
    for test_set in shown:
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
                with torch.no_grad():
                    output = model([torch.from_numpy(image).permute(2, 0, 1).float().div(255).to(device)])[0]
                panels.append(instance_panel(image, {k: v.cpu() for k, v in output.items()},
                                             config["categories"], 0.5))
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
