"""The study: what low light costs Mask R-CNN, and which remedy wins it back, in one table.

Each step is one of the toolkit's scripts run as a user would run it (the report lists the exact
commands). Steps whose outputs exist are reused, and training steps run with --resume, so an
interrupted study continues where it stopped. Rows of the report:
  normal light                      the detector trained on normal light, normal-light val images
  low light (<method>)              the same detector on each synthetic low-light val set
  low light + fine-tuning           the detector fine-tuned on low-light train images
  diffusion-restored + Mask R-CNN   the normal-light detector on diffusion-restored val images
  GenISP on RAW                     the frozen normal-light detector behind GenISP on noisy RAW (bbox)
"""
import json
import os
import subprocess
import sys
import time

from torch_utils_lib.cli import UserError
from torch_utils_lib.paths import REPO_ROOT
from torch_utils_lib.runinfo import atomic_write_json, atomic_write_text

STAT_COLUMNS = ("AP", "AP50", "AP75")


class Study:
    """Paths and step runner of one study in `args.output_dir`."""

    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.output_dir)
        self.commands, self.seconds = [], {}

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def run(self, name, script, *arguments, done=None):
        """Run `python script arguments...`, unless `done` exists; record command and time."""
        command = [sys.executable, os.path.join(REPO_ROOT, script), *map(str, arguments)]
        printable = " ".join(["python", script, *map(str, arguments)])
        self.commands.append(printable)
        if done and os.path.exists(done) and not self.args.overwrite:
            print(f"[study] {name}: reusing {os.path.relpath(done, self.out)}", flush=True)
            self.seconds.setdefault(name, 0.0)
            return
        print(f"[study] {name}: {printable}", flush=True)
        start = time.perf_counter()
        result = subprocess.run(command, cwd=REPO_ROOT)
        if result.returncode != 0:
            raise UserError(f"study step '{name}' failed (exit code {result.returncode}); "
                            f"fix the error above and rerun the same command to continue")
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def timed(self, name, function, *arguments, **keywords):
        start = time.perf_counter()
        value = function(*arguments, **keywords)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return value


def read_json(path):
    with open(path) as f:
        return json.load(f)


def synthesis_quality(folder):
    """Mean PSNR / SSIM of a synthesized set against its input, from its synthesis.json."""
    summary = read_json(os.path.join(folder, "synthesis.json")).get("metrics", {})
    return {k.upper(): summary[k]["mean"] for k in ("psnr", "ssim") if k in summary}


def row_from_stats(stats, quality=None, seconds=None):
    """A report row: bbox/segm AP columns, PSNR/SSIM and time where they apply."""
    row = {}
    for iou_type in ("bbox", "segm"):
        for stat in STAT_COLUMNS:
            if iou_type in stats:
                row[f"{iou_type} {stat}"] = stats[iou_type][stat]
    row.update(quality or {})
    if seconds is not None:
        row["time (s)"] = seconds
    return row


def markdown(rows):
    columns = []
    for row in rows.values():
        columns += [c for c in row if c not in columns]
    columns.sort(key=lambda c: c == "time (s)")  # time last
    lines = ["| setting | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        cells = []
        for c in columns:
            value = row.get(c)
            cells.append("-" if value is None else f"{value:.0f}" if c == "time (s)" else
                         f"{value:.2f}" if c == "PSNR" else f"{value:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(study, rows, figures, notes):
    """report.md and report.json in the study folder."""
    table = markdown(rows)
    text = ["# Low-light study", "",
            "What low light costs the detector, and which remedy wins it back. AP is COCO AP on the "
            "validation annotations (pycocotools); PSNR/SSIM compare the detector's input image with "
            "the normal-light image; time is the wall time of the steps behind each row.", "",
            table, ""]
    text += [f"- {n}" for n in notes] + [""]
    text += ["## Figures", ""] + [f"![{name}]({os.path.relpath(p, study.out)})" for name, p in figures.items()]
    text += ["", "## Commands", "", "```"] + study.commands + ["```", ""]
    atomic_write_text(study.path("report.md"), "\n".join(text))
    atomic_write_json(study.path("report.json"), {"rows": rows, "figures": figures, "notes": notes,
                                                   "commands": study.commands,
                                                   "seconds": study.seconds})
    return table


def synthesize(study, method, split, image_dir, annotation):
    """Low-light copy of one split (RAW too for physics); returns its folder."""
    out = study.path("data", "low_light", method, split)
    extra = ["--save_raw"] if method == "physics" else []
    study.run(f"synthesis {method}", "dataset/data_preprocessing.py", "--input_dir", image_dir,
              "--annotation", annotation, "--output_dir", out, "--method", method,
              "--seed", study.args.seed, "--workers", study.args.workers, "--quiet", *extra,
              done=os.path.join(out, "synthesis.json"))
    return out


def train_detector(study, name, image_dir, annotation, epochs, *extra):
    """Train (or continue) a Mask R-CNN; returns its checkpoint."""
    a = study.args
    out = study.path("mask_rcnn", name)
    study.run(f"train {name}", "mask_rcnn/train.py", "--image_dir", image_dir, "--annotation",
              annotation, "--checkpoint_dir", out, "--epoch", epochs, "--model", a.model,
              "--weights", a.weights, "--batch_size", a.batch_size, "--eval_every", 0,
              "--lr_step_size", max(1, int(epochs * 0.75)), "--device", a.device, "--seed", a.seed,
              "--augment", a.augment, "--resume", *(["--min_size", a.min_size] if a.min_size else []),
              *extra)
    return os.path.join(out, "last.pth")


def run_study(args):
    """Run every step of the study and write report.md / report.json; returns the rows."""
    import torch

    from mask_rcnn.evaluation import evaluate_image_sets
    study = Study(args)
    os.makedirs(study.out, exist_ok=True)
    a = args
    if a.train_image_dir is None:  # the bundled sample set, rebuilt to show it reproduces
        sample = study.path("data", "sample")
        study.run("sample set", "dataset/make_sample.py", "--output_dir", sample,
                  done=os.path.join(sample, "annotations", "instances_val.json"))
        a.train_image_dir, a.val_image_dir = os.path.join(sample, "train"), os.path.join(sample, "val")
        a.train_annotation = os.path.join(sample, "annotations", "instances_train.json")
        a.val_annotation = os.path.join(sample, "annotations", "instances_val.json")
        a.augment = a.augment or "dihedral"
    a.augment = a.augment or "hflip"
    low = {m: {split: synthesize(study, m, split, image_dir, ann)
               for split, image_dir, ann in (("train", a.train_image_dir, a.train_annotation),
                                             ("val", a.val_image_dir, a.val_annotation))}
           for m in a.methods}
    remedy = a.methods[0]  # fine-tuning and restoration target the first method's images

    normal_model = train_detector(study, "normal", a.train_image_dir, a.train_annotation, a.epochs)
    finetuned = train_detector(study, "finetuned", low[remedy]["train"], a.train_annotation,
                               a.finetune_epochs, "--weight_path", normal_model,
                               "--lr", a.finetune_lr, "--warmup_iters", 0)

    diffusion = study.path("diffusion")
    study.run("train diffusion", "diffusion_model/train.py", "--input_image_dir", a.train_image_dir,
              "--conditional_image_dir", low[remedy]["train"], "--checkpoint_dir", diffusion,
              "--epoch", a.diffusion_epochs, "--image_size", a.diffusion_image_size,
              "--batch_size", a.diffusion_batch_size, "--dim", a.diffusion_dim, "--dim_mults",
              a.diffusion_dim_mults, "--lr", a.diffusion_lr, "--sample_every", 0, "--device", a.device,
              "--seed", a.seed, "--resume")
    restored = study.path("diffusion", "restored_val")
    study.run("restore", "diffusion_model/inference.py", "--conditional_image_dir", low[remedy]["val"],
              "--input_image_dir", a.val_image_dir, "--output_image_dir", restored,
              "--weight_path", os.path.join(diffusion, "last.pth"), "--steps", a.diffusion_steps,
              "--device", a.device, "--seed", a.seed)
    quality_dir = study.path("diffusion", "restored_val_eval")
    study.run("image quality", "diffusion_model/evaluate.py", "--restored_image_dir", restored,
              "--input_image_dir", a.val_image_dir, "--conditional_image_dir", low[remedy]["val"],
              "--output_dir", quality_dir, done=os.path.join(quality_dir, "metrics.json"))

    genisp = study.path("genisp")
    raw_train = a.raw_train_dir or os.path.join(low["physics"]["train"], "raw")
    raw_val = a.raw_val_dir or os.path.join(low["physics"]["val"], "raw")
    study.run("train GenISP", "genisp/train.py", "--raw_dir", raw_train,
              *(["--annotation", a.raw_train_annotation] if a.raw_train_annotation else []),
              "--checkpoint_dir", genisp, "--detector", normal_model, "--epochs", a.genisp_epochs,
              "--lr_steps", max(1, int(a.genisp_epochs * 0.7)), "--parameter_size",
              a.genisp_parameter_size, "--batch_size", a.genisp_batch_size, "--resize",
              *a.genisp_resize, "--device", a.device,
              "--seed", a.seed, "--resume")
    genisp_eval = study.path("genisp", "eval")
    study.run("evaluate GenISP", "genisp/evaluate.py", "--raw_dir", raw_val,
              *(["--annotation", a.raw_val_annotation] if a.raw_val_annotation else []),
              "--weight_path", os.path.join(genisp, "last.pth"), "--output_dir", genisp_eval,
              "--pipelines", "genisp", "minimal", "--device", a.device,
              done=os.path.join(genisp_eval, "results.json"))

    device = torch.device(a.device)
    sets = {"normal": a.val_image_dir, **{m: low[m]["val"] for m in a.methods}, "restored": restored}
    ap = study.timed("evaluate Mask R-CNN", evaluate_image_sets, normal_model, a.val_annotation, sets,
                     device, a.batch_size)
    ap_finetuned = study.timed("evaluate Mask R-CNN", evaluate_image_sets, finetuned, a.val_annotation,
                               {remedy: low[remedy]["val"]}, device, a.batch_size)[remedy]
    quality = read_json(os.path.join(quality_dir, "metrics.json"))["quality"]
    genisp_stats = read_json(os.path.join(genisp_eval, "results.json"))
    s = study.seconds
    rows = {"normal light": row_from_stats(ap["normal"], None, s.get("train normal"))}
    for m in a.methods:
        rows[f"low light ({m})"] = row_from_stats(ap[m], synthesis_quality(low[m]["val"]),
                                                  s.get(f"synthesis {m}"))
    rows[f"low light ({remedy}) + fine-tuning"] = row_from_stats(
        ap_finetuned, synthesis_quality(low[remedy]["val"]), s.get("train finetuned"))
    rows[f"diffusion-restored ({remedy}) + Mask R-CNN"] = row_from_stats(
        ap["restored"], {"PSNR": quality["restored"]["psnr"]["mean"],
                         "SSIM": quality["restored"]["ssim"]["mean"]},
        s.get("train diffusion", 0) + s.get("restore", 0))
    rows["RAW (physics), minimal pipeline"] = row_from_stats({"bbox": genisp_stats["minimal"]})
    rows["GenISP on RAW (physics)"] = row_from_stats({"bbox": genisp_stats["genisp"]}, None,
                                                     s.get("train GenISP"))
    figures = make_figures(study, rows, normal_model, finetuned, sets, remedy, raw_val, a)
    notes = [f"detector: {a.model} ({a.weights} init, {a.augment} augmentation), {a.epochs} epochs "
             f"on normal light; "
             f"fine-tuned {a.finetune_epochs} epochs on {remedy} low light",
             f"diffusion: UNet width {a.diffusion_dim} x ({a.diffusion_dim_mults}), "
             f"{a.diffusion_epochs} epochs on {a.diffusion_image_size}px crops, "
             f"DDIM {a.diffusion_steps} steps",
             f"GenISP: {a.genisp_epochs} epochs through the frozen normal-light detector; "
             f"its rows are box AP only",
             "PSNR/SSIM of low-light rows: synthesized image vs normal light; of the diffusion row: "
             "restored vs normal light"]
    table = write_report(study, rows, figures, notes)
    return table


def make_figures(study, rows, normal_model, finetuned, sets, remedy, raw_val, a):
    """Examples through every remedy, training loss curves, AP bars; returns {name: png}."""
    from mask_rcnn.evaluation import instance_panel
    from torch_utils_lib.detection_models import load_detector
    from torch_utils_lib.image_io import read_rgb, write_image
    from torch_utils_lib.plots import plot_bars, plot_loss_grid
    from torch_utils_lib.visualize import side_by_side
    import cv2
    import torch

    figures = {}
    device = torch.device(a.device)
    models = {k: load_detector(p, device) for k, p in (("normal", normal_model), ("finetuned", finetuned))}
    columns = [("normal light", "normal", sets["normal"]), (f"low ({remedy})", "normal", sets[remedy]),
               ("+ fine-tuning", "finetuned", sets[remedy]), ("diffusion-restored", "normal", sets["restored"])]
    names = sorted(os.listdir(sets["normal"]))[:a.figure_images]
    genisp_dir = study.path("genisp", "examples")
    study.run("GenISP examples", "genisp/inference.py", "--raw_dir", raw_val, "--output_dir", genisp_dir, "--weight_path", study.path("genisp", "last.pth"), "--detect",
              "--device", a.device)
    rows_img = []
    for name in names:
        panels = []
        for _, key, folder in columns:
            model, config = models[key]
            image = read_rgb(os.path.join(folder, name))
            with torch.no_grad():
                output = model([torch.from_numpy(image).permute(2, 0, 1).float().div(255).to(device)])[0]
            panels.append(instance_panel(image, {k: v.cpu() for k, v in output.items()},
                                         config["categories"], 0.5))
        overlay = os.path.join(genisp_dir, os.path.splitext(name)[0] + "_detections.png")
        if os.path.isfile(overlay):
            g = read_rgb(overlay)
            panels.append(cv2.resize(g, (panels[0].shape[1], panels[0].shape[0]), interpolation=cv2.INTER_NEAREST))
        rows_img.append(side_by_side(panels, [c[0] for c in columns] + ["GenISP on RAW"][:len(panels) - len(columns)]))
    if rows_img:
        width = max(r.shape[1] for r in rows_img)
        grid = [cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
                for r in rows_img]
        figures["examples"] = study.path("examples.png")
        write_image(figures["examples"], cv2.vconcat(grid))
    logs = {name: study.path(*parts, "train_log.jsonl") for name, parts in (
        ("Mask R-CNN normal", ("mask_rcnn", "normal")), ("Mask R-CNN fine-tuning", ("mask_rcnn", "finetuned")),
        ("diffusion", ("diffusion",)), ("GenISP", ("genisp",)))}
    figures["loss curves"] = plot_loss_grid({k: v for k, v in logs.items() if os.path.isfile(v)},
                                            study.path("loss_curves.png"))
    bars = {row: {k: v for k, v in values.items() if k in ("bbox AP", "bbox AP50", "segm AP")}
            for row, values in rows.items()}
    figures["AP"] = plot_bars(bars, study.path("ap_bars.png"), title="COCO AP on the validation set")
    return figures
