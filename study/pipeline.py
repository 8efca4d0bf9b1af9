"""The study's steps: data, training per remedy, scoring every remedy on every test set.

Each step is one of the toolkit's scripts run as a user would run it (the report lists the exact
commands). The whole study is planned from the arguments before the first step (its data
folders, test sets and every check that can fail), then run; steps whose outputs exist are
reused and training steps run with --resume, so an interrupted study continues where it
stopped. Rows come from study.remedies.REMEDIES, columns from study.test_sets.TEST_SETS; this
module names no remedy and no test set.
"""
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import torch

from mask_rcnn.evaluation import AP_TABLE, read_ap_table
from study.conditions import condition_tables
from study.outside import outside_remedies
from study.remedies import BASELINE, REMEDIES, check_needs, normal_detector
from study.retrain import folder_of, retrain_remedies
from study.report import make_figures, write_report
from study.statistics import add_intervals, darkness_curves
from dataset.synthesis_methods import RAW_METHOD
from study.sets import COLUMN, RAW, RGB, build_test_sets, resolve_levels
from torch_utils_lib.evaluation.metrics import REPORT_QUALITY
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import check_outputs_apart, safe_join
from torch_utils_lib.models.detectors import load_detector, predict_images
from torch_utils_lib.data.image_io import annotation_file_names, read_rgb
from torch_utils_lib.evaluation.image_quality import score_sets
from torch_utils_lib.toolkit.paths import REPO_ROOT
from torch_utils_lib.toolkit.runinfo import write_run_metadata
from torch_utils_lib.plots.drawing import draw_detections

REFERENCE_ROW = "normal-light pair (reference)"


@dataclass
class StudyData:
    """Every folder and annotation the study reads or makes, planned from the arguments."""
    train_image_dir: str
    train_annotation: str
    val_image_dir: str
    val_annotation: str
    sample: bool  # the bundled sample set, rebuilt in the study folder
    low_light: dict = field(default_factory=dict)  # {method: {"train": dir, "val": dir}}
    levels: dict = field(default_factory=dict)  # {method: {EV: dir}}: val at fixed darkness
    raw_level_methods: tuple = ()  # methods whose levels also get RAW
    raw_train_dir: str | None = None  # None: no remedy reads RAW
    raw_train_annotation: str | None = None
    raw_val_dir: str | None = None
    raw_val_annotation: str | None = None


class Study:
    """Paths, plan and step runner of one study in `args.output_dir`."""

    def __init__(self, args):
        self.args = args  # as the user typed them (run.json records them); plan() resolves the rest
        self.out = os.path.abspath(args.output_dir)
        self.commands, self.seconds, self.outputs = [], {}, {}
        self.target = args.methods[0]  # the synthesis fine-tuning and restoration learn from
        self.remedies, self.raw_scorer, self.data, self.test_sets = [], None, None, []
        self.augment, self.severities, self.severity_methods, self.category_map = None, (), (), None

    def plan(self):
        """Plan the remedies, augmentation, darkness levels, data and test sets from the
        arguments, running no step, into this object's attributes (later steps read them; the
        arguments stay as typed), and refuse before anything is written names that clash and an
        output folder that holds or lies among the inputs."""
        sample = self.args.train_image_dir is None
        self.severities, self.severity_methods = resolve_levels(self.args, sample)
        # steps run from the repository root: a category map given relative to the caller's folder
        if self.args.category_map:
            self.category_map = os.path.abspath(self.args.category_map)
        # the sample's shapes have no up; real photographs do
        self.augment = self.args.augment or ("dihedral" if sample else "hflip")
        self.remedies = [REMEDIES[name] for name in dict.fromkeys(self.args.remedies)]
        if not any(r.name == BASELINE for r in self.remedies):
            raise UserError(f"--remedies must include {BASELINE} (its detector scores the image "
                            f"remedies)")
        self.raw_scorer = next((r.score_raw for r in self.remedies if r.score_raw), None)
        self.data = plan_data(self)
        self.test_sets = build_test_sets(self)
        self.remedies += outside_remedies(self)  # after the sets: each names the set it fills
        self.remedies += retrain_remedies(self)
        check_inputs_apart(self)
        check_needs(self)  # what each selected row's steps need of the train set
        return self

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def output(self, step, *parts):
        """The folder `step` writes; refused when another step writes the same folder."""
        path = self.path(*parts)
        other = self.outputs.setdefault(os.path.realpath(path), step)
        if other != step:
            raise UserError(f"{path}: steps '{other}' and '{step}' would write the same folder")
        return path

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

    def timed(self, name, function, *arguments, done=None, **keywords):
        """`function(*arguments)` in this process, its time recorded as step `name`; skipped
        (returning None) when `done` exists, as `run`'s steps are."""
        if done and os.path.exists(done) and not self.args.overwrite:
            print(f"[study] {name}: reusing {os.path.relpath(done, self.out)}", flush=True)
            self.seconds.setdefault(name, 0.0)
            return None
        start = time.perf_counter()
        value = function(*arguments, **keywords)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return value


def plan_data(study):
    """The study's data folders, from the arguments alone (no step runs)."""
    args = study.args
    if args.train_image_dir is None:  # the bundled sample set, rebuilt to show it reproduces
        sample = study.path("data", "sample")
        data = StudyData(os.path.join(sample, "train"),
                         os.path.join(sample, "annotations", "instances_train.json"),
                         os.path.join(sample, "val"),
                         os.path.join(sample, "annotations", "instances_val.json"), sample=True)
    else:
        data = StudyData(args.train_image_dir, args.train_annotation, args.val_image_dir,
                         args.val_annotation, sample=False)
    data.low_light = {m: {split: study.path("data", "low_light", m, split) for split in ("train", "val")}
                   for m in args.methods}
    data.levels = {m: {ev: study.path("data", "severity", m, f"{ev:g}") for ev in study.severities}
                for m in study.severity_methods if study.severities}
    if study.raw_scorer is not None:  # a remedy reads RAW: the physics synthesis' or the user's
        if not args.raw_train_dir and RAW_METHOD not in args.methods:
            readers = ", ".join(r.name for r in study.remedies if r.score_raw)
            raise UserError(f"--remedies {readers} read RAW: keep '{RAW_METHOD}' in --methods or "
                            f"give --raw_train_dir and --raw_val_dir")
        raw = data.low_light.get(RAW_METHOD, {})
        data.raw_train_dir = args.raw_train_dir or os.path.join(raw["train"], "raw")
        data.raw_val_dir = args.raw_val_dir or os.path.join(raw["val"], "raw")
        data.raw_train_annotation, data.raw_val_annotation = args.raw_train_annotation, args.raw_val_annotation
        data.raw_level_methods = (RAW_METHOD,) if RAW_METHOD in data.levels else ()
    return data


def check_inputs_apart(study):
    """The study writes only under --output_dir: refuse one that is, holds or lies inside an
    input, and annotations whose file names leave their image folder (absolute or `../`)."""
    args, data = study.args, study.data
    given = [] if data.sample else [
        ("--train_image_dir", data.train_image_dir, "--train_annotation", data.train_annotation),
        ("--val_image_dir", data.val_image_dir, "--val_annotation", data.val_annotation)]
    given += [(f"--real_test {t.name}", folder, f"--real_test {t.name}", t.annotation)
              for t in study.test_sets if t.kind == RGB and t.low_light and t.method is None
              for folder in (t.image_dir, t.normal_dir) if folder]
    reads = {"--category_map": study.category_map,
             **{f"--{r.name}_weights": r.given(study) for r in study.remedies if r.given},
             **{f"--{flag}": getattr(args, flag) for flag in ("raw_train_dir", "raw_val_dir",
                                                          "raw_train_annotation", "raw_val_annotation")}}
    for folder_flag, image_dir, annotation_flag, annotation in given:
        reads.setdefault(folder_flag, []).append(image_dir)
        reads.setdefault(annotation_flag, []).append(annotation)
        reads.setdefault(f"{annotation_flag} entry", []).extend(
            safe_join(image_dir, name, annotation) for name in annotation_file_names(annotation))
    check_outputs_apart(reads, {"--output_dir": study.out})


def prepare_data(study):
    """Run the data steps of the plan: the sample set, its low-light syntheses, the levels."""
    data = study.data
    if data.sample:
        sample = os.path.dirname(data.train_image_dir)
        study.run("sample set", "dataset/make_sample.py", "--output_dir", sample, done=data.val_annotation)
    for method, splits in data.low_light.items():
        for split, out in splits.items():
            synthesize(study, method, getattr(data, f"{split}_image_dir"),
                       getattr(data, f"{split}_annotation"), out, raw=method == RAW_METHOD)
    for method, levels in data.levels.items():
        for ev, out in levels.items():
            synthesize(study, method, data.val_image_dir, data.val_annotation, out, level=ev,
                       raw=method in data.raw_level_methods)


def synthesize(study, method, image_dir, annotation, out, level=None, raw=False):
    """Low-light copy of one split into `out` (RAW too when `raw`), at its random darkness or at
    a fixed `level` in EV."""
    name = f"synthesis {method}" if level is None else f"synthesis {method} levels"
    extra = (["--level", level] if level is not None else []) + (["--save_raw"] if raw else [])
    study.run(name, "dataset/data_preprocessing.py", "--input_dir", image_dir,
              "--annotation", annotation, "--output_dir", study.output(f"{name} {out}", out),
              "--method", method, "--seed", study.args.seed, "--workers", study.args.workers,
              "--quiet", *extra, done=os.path.join(out, "raw", "annotations.json") if raw
              else os.path.join(out, "synthesis.json"))


def evaluate_detector(study, name, checkpoint, image_sets):
    """mask_rcnn/evaluate.py of one checkpoint on {set name: (image dir, annotation)}.

    Returns {set name: {iou type: stats, "per_category": {iou type: {class: {AP, AP50, AP75}}},
    "detections": {iou type: detections json}}}.
    """
    args = study.args
    out = study.output(f"evaluate {name}", "eval", name)
    unique, alias = {}, {}  # one evaluation per (images, annotation)
    for key, pair in image_sets.items():
        alias[key] = next((k for k, p in unique.items() if p == pair), key)
        unique.setdefault(alias[key], pair)
    saved = read_ap_table(out)
    complete = (saved is not None and saved[0] == checkpoint and set(unique) <= set(saved[1])
                and all(saved[1][s]["per_category"] is not None for s in unique))
    study.run(f"evaluate {name}", "mask_rcnn/evaluate.py", "--weight_path", checkpoint,
              *[x for s, (d, ann) in unique.items() for x in ("--image_set", f"{s}={d},{ann}")],
              "--output_dir", out, "--pretrained", "none", "--count", 0, "--bootstrap", 0, "--batch_size",
              args.batch_size, "--device", args.device,
              *(["--category_map", study.category_map] if study.category_map else []),
              done=os.path.join(out, f"{AP_TABLE}.json") if complete else None, distributed=True)
    _, results = read_ap_table(out)
    return {key: results[alias[key]] for key in image_sets}


def image_quality(test_set, folder):
    """Mean PSNR/SSIM of `folder`'s images against the set's normal-light pair."""
    names = annotation_file_names(test_set.annotation)
    summary, _ = score_sets(names, test_set.normal_dir, {"images": folder}, progress=False)
    return {column: summary["images"][metric]["mean"] for metric, column in REPORT_QUALITY.items()}


def score(study):
    """Every remedy on every test set it applies to.

    Returns (rows {row: {set: cell}}, inputs {(remedy, set): image folder its detector read}).
    """
    remedies, test_sets = study.remedies, study.test_sets
    jobs, results, inputs = {}, {r.name: {} for r in remedies}, {}
    for remedy in remedies:
        for test_set in test_sets:
            if test_set.kind != RGB or not remedy.applies(test_set):
                continue
            if remedy.detections is not None:
                results[remedy.name].setdefault(test_set.name, {}).update(
                    remedy.detections(study, test_set))
                continue
            folder = remedy.images(study, test_set) if remedy.images else test_set.image_dir
            inputs[remedy.name, test_set.name] = folder
            jobs.setdefault(remedy.detector(study), {})[f"{folder_of(remedy.name)}.{test_set.name}"] = (
                remedy, test_set, folder)
            if remedy.images is not None and test_set.normal_dir:
                results[remedy.name].setdefault(test_set.name, {}).update(
                    study.timed("image quality", image_quality, test_set, folder))
    for test_set in test_sets:  # the normal-light pair: each column's upper reference
        if test_set.kind == RGB and test_set.normal_dir and test_set.role == COLUMN:
            jobs.setdefault(normal_detector(study), {})[f"reference.{test_set.name}"] = (
                None, test_set, test_set.normal_dir)
    reference = {}
    for checkpoint, sets in jobs.items():
        name = os.path.basename(os.path.dirname(checkpoint))
        cells = evaluate_detector(
            study, name, checkpoint, {k: (folder, t.annotation) for k, (r, t, folder) in sets.items()})
        for key, (remedy, test_set, _) in sets.items():
            cell = cells[key]
            if remedy is None:
                reference[test_set.name] = cell
            else:
                results[remedy.name].setdefault(test_set.name, {}).update(cell)
    for test_set in test_sets:
        if test_set.kind == RAW:  # RAW levels: only for remedies without RGB levels
            pipelines = {r.raw_pipeline: r for r in remedies if r.applies(test_set)
                         and (test_set.role == COLUMN or not r.rgb)}
            stats, detections = study.raw_scorer(study, test_set, list(pipelines))
            for pipeline, remedy in pipelines.items():
                results[remedy.name][test_set.name] = {**stats[pipeline],
                                                       "detections": detections[pipeline]}
    rows = {r.name: results[r.name] for r in remedies}
    if reference:
        rows[REFERENCE_ROW] = reference
    return rows, inputs


def example_lines(study, inputs):
    """The same low-light images through every remedy, each with its detector's detections
    drawn: [(test set, file name, [(title, RGB image)])], the normal-light pair first where
    there is one, then each remedy's column, then the images remedies draw themselves."""
    args = study.args
    device = torch.device(args.device)
    models, lines = {}, []
    drawn = [t for t in study.test_sets if t.kind == RGB and t.low_light and t.role == COLUMN
             and t.method in (None, study.target)]
    for test_set in drawn:
        count = args.count if test_set.method else min(args.count, 2)
        own = {r.name: r.examples(study, test_set) for r in study.remedies if r.examples}
        for name in annotation_file_names(test_set.annotation)[:count]:
            columns = [("normal-light pair", normal_detector(study), test_set.normal_dir)] \
                if test_set.normal_dir else []
            columns += [(f"{r.name} ({test_set.name})" if r.name == BASELINE else r.name,
                         r.detector(study), inputs[r.name, test_set.name]) for r in study.remedies
                        if (r.name, test_set.name) in inputs]
            panels = []
            for title, checkpoint, folder in columns:
                if checkpoint not in models:
                    models[checkpoint] = load_detector(checkpoint, device)
                model, config = models[checkpoint]
                image = read_rgb(os.path.join(folder, name))
                output = predict_images(model, [image], device)[0]
                panels.append((title, draw_detections(image, output, config["categories"], 0.5)))
            panels += [(remedy, read_rgb(images[name])) for remedy, images in own.items()
                       if name in images]
            lines.append((test_set.name, name, panels))
    return lines


def run_study(args):
    """Plan, run every step and write the report; returns the Markdown table."""
    study = Study(args).plan()
    os.makedirs(study.out, exist_ok=True)
    write_run_metadata(study.out, args)
    prepare_data(study)
    for remedy in study.remedies:
        if remedy.trains(study):
            remedy.train(study)
    rows, inputs = score(study)
    draws = study.timed("bootstrap", add_intervals, study.test_sets, rows, args.bootstrap, args.seed,
                        study.remedies)
    curves = darkness_curves(study.test_sets, rows, draws)
    conditions = study.timed("conditions", condition_tables, study.test_sets, rows,
                             args.bootstrap, args.seed)
    examples = study.timed("examples", example_lines, study, inputs)
    figures = make_figures(study, rows, curves, examples)
    return write_report(study, rows, figures, curves, examples, conditions)
