"""The study's steps: data, training per remedy, scoring every remedy on every test set.

Each step is one of the toolkit's scripts run as a user would run it (the report lists the exact
commands). Steps whose outputs exist are reused and training steps run with --resume, so an
interrupted study continues where it stopped. Rows come from study.remedies.REMEDIES, columns from
study.test_sets.TEST_SETS.
"""
import os
import subprocess
import sys
import time

from study.remedies import REMEDIES, normal_detector
from study.statistics import add_intervals, darkness_curves
from study.test_sets import build_test_sets
from torch_utils_lib.cli import UserError, read_json
from torch_utils_lib.paths import REPO_ROOT

REFERENCE_ROW = "normal-light pair (reference)"


class Study:
    """Paths, data and step runner of one study in `args.output_dir`."""

    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.output_dir)
        self.commands, self.seconds = [], {}
        self.data = {}
        self.target = args.methods[0]  # the synthesis fine-tuning and restoration learn from

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def run(self, name, script, *arguments, done=None, distributed=False):
        """Run `python script arguments...` (under torchrun when `distributed` and
        --nproc_per_node > 1), unless `done` exists; record the command and its time."""
        arguments = [str(a) for a in arguments]
        launcher, printable = [sys.executable], ["python"]
        if distributed and self.args.nproc_per_node > 1:
            launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                         str(self.args.nproc_per_node)]
            printable = ["torchrun", "--standalone", "--nproc_per_node", str(self.args.nproc_per_node)]
        printable = " ".join(printable + [script, *arguments])
        self.commands.append(printable)
        if done and os.path.exists(done) and not self.args.overwrite:
            print(f"[study] {name}: reusing {os.path.relpath(done, self.out)}", flush=True)
            self.seconds.setdefault(name, 0.0)
            return
        print(f"[study] {name}: {printable}", flush=True)
        start = time.perf_counter()
        result = subprocess.run(launcher + [os.path.join(REPO_ROOT, script), *arguments], cwd=REPO_ROOT)
        if result.returncode != 0:
            raise UserError(f"study step '{name}' failed (exit code {result.returncode}); "
                            f"fix the error above and rerun the same command to continue")
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def timed(self, name, function, *arguments, **keywords):
        start = time.perf_counter()
        value = function(*arguments, **keywords)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return value


def prepare_data(study):
    """Normal-light train/val (the sample set unless given), their low-light syntheses, RAW."""
    a, d = study.args, study.data
    if a.train_image_dir is None:  # the bundled sample set, rebuilt to show it reproduces
        sample = study.path("data", "sample")
        study.run("sample set", "dataset/make_sample.py", "--output_dir", sample,
                  done=os.path.join(sample, "annotations", "instances_val.json"))
        d.update(train_image_dir=os.path.join(sample, "train"), val_image_dir=os.path.join(sample, "val"),
                 train_annotation=os.path.join(sample, "annotations", "instances_train.json"),
                 val_annotation=os.path.join(sample, "annotations", "instances_val.json"))
        a.augment = a.augment or "dihedral"  # the sample's shapes have no up
    else:
        d.update(train_image_dir=a.train_image_dir, val_image_dir=a.val_image_dir,
                 train_annotation=a.train_annotation, val_annotation=a.val_annotation)
    a.augment = a.augment or "hflip"
    d["low_light"] = {m: {split: synthesize(study, m, split, d[f"{split}_image_dir"],
                                            d[f"{split}_annotation"])
                          for split in ("train", "val")} for m in a.methods}
    if a.severity_methods is None:  # each level costs a synthesis, restorations and evaluations
        a.severity_methods = ["physics"] if a.train_image_dir is None else list(a.methods)
    d["severity"] = {m: {ev: synthesize(study, m, "val", d["val_image_dir"], d["val_annotation"], ev)
                         for ev in a.severities} for m in a.severity_methods if a.severities}
    physics = d["low_light"].get("physics", {})
    d["raw_train_dir"] = a.raw_train_dir or os.path.join(physics.get("train", ""), "raw")
    d["raw_val_dir"] = a.raw_val_dir or os.path.join(physics.get("val", ""), "raw")
    d["raw_train_annotation"], d["raw_val_annotation"] = a.raw_train_annotation, a.raw_val_annotation


def synthesize(study, method, split, image_dir, annotation, level=None):
    """Low-light copy of one split (RAW too for physics), at its random darkness or at a fixed
    `level` in EV; returns its folder."""
    if level is None:
        out, name = study.path("data", "low_light", method, split), f"synthesis {method}"
        extra = ["--save_raw"] if method == "physics" else []
    else:
        out, name = study.path("data", "severity", method, f"{level:g}"), f"synthesis {method} levels"
        extra = ["--level", level] + (["--save_raw"] if raw_levels(study, method) else [])
    study.run(name, "dataset/data_preprocessing.py", "--input_dir", image_dir,
              "--annotation", annotation, "--output_dir", out, "--method", method,
              "--seed", study.args.seed, "--workers", study.args.workers, "--quiet", *extra,
              done=os.path.join(out, "raw", "annotations.json") if "--save_raw" in extra
              else os.path.join(out, "synthesis.json"))
    return out


def raw_levels(study, method):
    """Whether the levels of `method` get RAW too: physics, when a remedy works on RAW."""
    return method == "physics" and any(REMEDIES[name].raw_pipeline for name in study.args.remedies
                                       if name != "none")


def selected_remedies(study):
    return [REMEDIES[name] for name in study.args.remedies]


def evaluate_detector(study, name, checkpoint, image_sets):
    """mask_rcnn/evaluate.py of one checkpoint on {set name: (image dir, annotation)}.

    Returns ({set name: {iou type: stats}}, {set name: {iou type: detections json}}).
    """
    a = study.args
    out = study.path("eval", name)
    table = os.path.join(out, "ap_table.json")
    unique, alias = {}, {}  # one evaluation per (images, annotation)
    for key, pair in image_sets.items():
        alias[key] = next((k for k, p in unique.items() if p == pair), key)
        unique.setdefault(alias[key], pair)
    complete = (os.path.isfile(table) and set(unique) <= set(read_json(table)["stats"]["checkpoint"])
                and read_json(table)["models"]["checkpoint"] == checkpoint)
    study.run(f"evaluate {name}", "mask_rcnn/evaluate.py", "--weight_path", checkpoint,
              *[x for s, (d, ann) in unique.items() for x in ("--image_set", f"{s}={d},{ann}")],
              "--output_dir", out, "--pretrained", "none", "--count", 0, "--bootstrap", 0, "--batch_size",
              a.batch_size, "--device", a.device,
              *(["--category_map", a.category_map] if a.category_map else []),
              done=table if complete else None, distributed=True)
    stats = read_json(table)["stats"]["checkpoint"]
    return ({key: stats[alias[key]] for key in image_sets},
            {key: {iou: os.path.join(out, "checkpoint", f"detections_{alias[key]}_{iou}.json")
                   for iou in stats[alias[key]]} for key in image_sets})


def evaluate_raw(study, test_set, pipelines):
    """genisp/evaluate.py on a RAW set: {pipeline: bbox stats}, {pipeline: detections json}."""
    a = study.args
    out = study.path("eval", "raw", test_set.name)
    study.run(f"evaluate RAW {test_set.name}", "genisp/evaluate.py", "--raw_dir", test_set.image_dir,
              *(["--annotation", test_set.annotation] if test_set.annotation else []),
              "--weight_path", study.path("genisp", "last.pth"), "--output_dir", out,
              "--pipelines", *pipelines, "--device", a.device,
              *(["--category_map", a.category_map] if a.category_map else []),
              done=os.path.join(out, "results.json"))
    results = read_json(os.path.join(out, "results.json"))
    return ({p: {"bbox": results[p]} for p in pipelines},
            {p: {"bbox": os.path.join(out, f"detections_{p}.json")} for p in pipelines})


def image_quality(test_set, folder):
    """Mean PSNR/SSIM of `folder`'s images against the set's normal-light pair."""
    from diffusion_model.quality import score_sets
    from torch_utils_lib.image_io import annotation_file_names
    names = annotation_file_names(test_set.annotation)
    summary, _ = score_sets(names, test_set.normal_dir, {"images": folder}, progress=False)
    return {"PSNR": summary["images"]["psnr"]["mean"], "SSIM": summary["images"]["ssim"]["mean"]}


def run_study(args):
    """Run every step and write the report; returns the Markdown table."""
    from study.report import make_figures, write_report
    study = Study(args)
    os.makedirs(study.out, exist_ok=True)
    prepare_data(study)
    test_sets = build_test_sets(study)
    remedies = selected_remedies(study)
    if not any(r.name == "none" for r in remedies):
        raise UserError("--remedies must include none (its detector scores the image remedies)")
    for remedy in remedies:
        if remedy.train is not None:
            remedy.train(study)

    # what each remedy's detector reads on each test set
    jobs, results, inputs = {}, {r.name: {} for r in remedies}, {}
    for remedy in remedies:
        for test_set in test_sets:
            if test_set.kind != "rgb" or not remedy.applies(test_set):
                continue
            folder = remedy.images(study, test_set) if remedy.images else test_set.image_dir
            inputs[remedy.name, test_set.name] = folder
            jobs.setdefault(remedy.detector(study), {})[f"{remedy.name}.{test_set.name}"] = (
                remedy, test_set, folder)
            if remedy.images is not None and test_set.normal_dir:
                results[remedy.name].setdefault(test_set.name, {}).update(
                    study.timed("image quality", image_quality, test_set, folder))
    for test_set in test_sets:  # the normal-light pair: each set's upper reference (P at levels)
        if test_set.kind == "rgb" and test_set.normal_dir and test_set.severity is None:
            jobs.setdefault(normal_detector(study), {})[f"reference.{test_set.name}"] = (
                None, test_set, test_set.normal_dir)
    reference = {}
    for checkpoint, sets in jobs.items():
        name = os.path.basename(os.path.dirname(checkpoint))
        stats, detections = evaluate_detector(
            study, name, checkpoint, {k: (folder, t.annotation) for k, (r, t, folder) in sets.items()})
        for key, (remedy, test_set, _) in sets.items():
            cell = {**stats[key], "detections": detections[key]}
            if remedy is None:
                reference[test_set.name] = cell
            else:
                results[remedy.name].setdefault(test_set.name, {}).update(cell)
    for test_set in test_sets:
        if test_set.kind == "raw":  # RAW levels: only for remedies without RGB levels (GenISP)
            pipelines = {r.raw_pipeline: r for r in remedies if r.applies(test_set)
                         and (test_set.severity is None or not r.rgb)}
            stats, detections = evaluate_raw(study, test_set, list(pipelines))
            for pipeline, remedy in pipelines.items():
                results[remedy.name][test_set.name] = {**stats[pipeline],
                                                       "detections": detections[pipeline]}
    rows = {r.name: results[r.name] for r in remedies}
    if reference:
        rows[REFERENCE_ROW] = reference
    a = study.args
    draws = study.timed("bootstrap", add_intervals, test_sets, rows, a.bootstrap, a.seed)
    curves = darkness_curves(test_sets, rows, draws)
    figures = make_figures(study, remedies, test_sets, rows, inputs, curves)
    return write_report(study, remedies, test_sets, rows, figures, curves)
