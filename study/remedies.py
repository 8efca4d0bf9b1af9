"""The rows of the study: a registry of remedies, each one self-contained entry.

An entry says everything the study needs of a remedy: what it trains (`train`, a resumable
step), the images its detector reads (`images`: restoration, enhancement), the detector that
scores them (`detector`), its trained weights (`weights`), which test sets it applies to, its
own flags (`flags`, registered as `--<name>_<flag>`), how the report describes its settings
(`settings`), its training logs and its own example images. `study/run.py`, `pipeline.py`
and `report.py` loop over the registry and name no remedy. An identity enhancement:

    register(Remedy("identity", "the low-light images as they are",
                    images=lambda study, test_set: test_set.image_dir, low_light_only=True))

A learned one adds `train=`, `flags=(Flag("epochs", positive_int, 10, "its epochs"),)` (read as
`study.args.<name>_epochs`), `weights=` and `settings=`; tests/study/test_study.py registers both.
"""
import os
import random
from dataclasses import dataclass
from typing import Callable

from enhancer.sizes import ZERO_DCE_MIN_TRAINING_SIZE
from study.sets import RAW
from torch_utils_lib.evaluation.coco_eval import detections_file
from torch_utils_lib.toolkit.atomic_io import atomic_link_or_copy, read_json, remove_stale_temporaries
from torch_utils_lib.toolkit.cli import non_negative_int, positive_float, positive_int, probability
from torch_utils_lib.data.coco_json import degenerate_box, load_coco_json
from torch_utils_lib.data.image_io import annotation_file_names, read_size
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import safe_join


@dataclass(frozen=True)
class Flag:
    """One flag of a remedy: `--<remedy>_<name>` (plus `aliases`), read as `args.<remedy>_<name>`."""
    name: str
    type: Callable = str
    default: object = None
    help: str = ""
    nargs: object = None
    metavar: object = None
    aliases: tuple = ()


def normal_detector(study):
    """The Mask R-CNN trained on normal light (the `none` remedy's)."""
    return study.path("mask_rcnn", "normal", "last.pth")


@dataclass(frozen=True)
class Remedy:
    name: str
    description: str
    train: Callable | None = None  # train(study): its training steps (resumable)
    images: Callable | None = None  # images(study, test_set) -> folder of the images scored
    detector: Callable = normal_detector  # detector(study) -> checkpoint that scores RGB sets
    weights: Callable | None = None  # weights(study) -> what it trained (default: its detector)
    raw_pipeline: str | None = None  # its pipeline on RAW sets (None: not scored on RAW)
    score_raw: Callable | None = None  # score_raw(study, test_set, pipelines): the RAW scorer
    rgb: bool = True  # scored on RGB test sets
    low_light_only: bool = False  # not scored on normal-light sets
    classical: bool = False  # an enhancement that learns nothing: the bar learned remedies face
    flags: tuple = ()  # its own Flags
    settings: Callable | None = None  # settings(study) -> text for the report
    logs: tuple = ()  # (title, path parts under the study folder) of train_log.jsonl files
    examples: Callable | None = None  # examples(study, test_set) -> {file name: drawn image}
    # needs(train_set: TrainSet) -> why its steps are certain to fail on the study's train set
    # (one line), or None; checked before the first step
    needs: Callable | None = None
    # the figures draw a family in one hue and give it its own darkness panel
    family: str = "other"

    def applies(self, test_set):
        """Whether it is scored on `test_set` (RAW sets exist only where a remedy scores RAW)."""
        if test_set.kind == RAW:
            return self.raw_pipeline is not None
        return self.rgb and (test_set.low_light or not self.low_light_only)

    @property
    def learned(self):
        """It trains something of its own (the baseline `none` trains the detector it uses)."""
        return self.train is not None and self.name != BASELINE

    def trained_weights(self, study):
        """The file its training writes (None: it trains nothing)."""
        if self.weights is not None:
            return self.weights(study)
        return self.detector(study) if self.train is not None else None


BASELINE = "none"
REMEDIES = {}


@dataclass(frozen=True)
class TrainSet:
    """What the study's train annotation holds, read before the first step (Remedy.needs)."""
    annotation: str
    smallest: tuple  # (path, width, height) of the image with the shortest side
    boxes: int  # usable boxes (not crowd, not degenerate): what the detector objectives learn


def check_needs(study):
    """Refuse, before the first step, a selected remedy whose steps are certain to fail on the
    train set (each remedy's `needs`). The bundled sample set, made by a step, always serves."""
    data = study.data
    needing = [r for r in study.remedies if r.needs is not None]
    if data.sample or not needing:
        return
    coco = load_coco_json(data.train_annotation)
    sizes = []
    for image in coco["images"]:
        path = safe_join(data.train_image_dir, image["file_name"], data.train_annotation)
        h, w = ((image["height"], image["width"]) if image.get("width") and image.get("height")
                else read_size(path))
        sizes.append((min(w, h), path, w, h))
    boxes = sum(1 for a in coco["annotations"]
                if not a.get("iscrowd") and not degenerate_box(a["bbox"]))
    train_set = TrainSet(data.train_annotation, min(sizes)[1:] if sizes else None, boxes)
    for remedy in needing:
        problem = remedy.needs(train_set)
        if problem:
            raise UserError(f"--remedies {remedy.name}: {problem}")


def needs_boxes(train_set):
    if not train_set.boxes:
        return (f"{train_set.annotation}: no usable box (all crowd or degenerate); its detector "
                f"steps learn from boxes")
    return None


def needs_min_size(side, model):
    """needs(): every train image at least `side` pixels a side (the model trains on whole images)."""
    def needs(train_set):
        if train_set.smallest and min(train_set.smallest[1:]) < side:
            path, w, h = train_set.smallest
            return (f"{path}: {w}x{h}, smaller than the {side}x{side} {model} trains on; remove "
                    f"the images under {side} px a side from the train annotation")
        return None
    return needs


def register(remedy):
    """Add (or replace) a remedy; rows appear in registration order."""
    REMEDIES[remedy.name] = remedy
    return remedy


def add_remedy_flags(parser):
    """Each registered remedy's own flags, in a group of its own."""
    for remedy in REMEDIES.values():
        if not remedy.flags:
            continue
        group = parser.add_argument_group(f"remedy {remedy.name}", remedy.description)
        for flag in remedy.flags:
            dest = f"{remedy.name}_{flag.name}"
            options = {k: v for k, v in (("nargs", flag.nargs), ("metavar", flag.metavar))
                       if v is not None}
            group.add_argument(f"--{dest}", *flag.aliases, dest=dest, type=flag.type,
                               default=flag.default, help=flag.help, **options)


def detector_flags(study):
    """mask_rcnn flags every detector step shares."""
    args = study.args
    return ("--model", args.model, "--batch_size", args.batch_size, "--device", args.device,
            *(["--category_map", study.category_map] if study.category_map else []))


def train_detector(study, name, image_dir, annotation, epochs, *extra):
    """Train (or continue) a Mask R-CNN with mask_rcnn/train.py; returns its checkpoint."""
    args = study.args
    out = study.path("mask_rcnn", name)
    study.run(f"train {name}", "mask_rcnn/train.py", "--image_dir", image_dir, "--annotation",
              annotation, "--checkpoint_dir", out, "--epochs", epochs, *detector_flags(study),
              "--weights", args.weights, "--eval_every", 0, "--lr_step_size", max(1, int(epochs * 0.75)),
              "--seed", args.seed, "--augment", study.augment, "--resume",
              *(["--min_size", args.min_size] if args.min_size else []), *extra, distributed=True)
    return os.path.join(out, "last.pth")


def train_normal(study):
    data = study.data
    train_detector(study, "normal", data.train_image_dir, data.train_annotation, study.args.epochs)


register(Remedy("none", "the normal-light detector as it is", train=train_normal,
                raw_pipeline="minimal", needs=needs_boxes, family="baseline", logs=(("Mask R-CNN normal", ("mask_rcnn", "normal")),)))


# ---------------------------------------------------------------- fine-tuning

def finetuned_detector(folder):
    return lambda study: study.path("mask_rcnn", folder, "last.pth")


def finetune(study, folder, image_dir):
    args = study.args
    train_detector(study, folder, image_dir, study.data.train_annotation, args.finetune_epochs,
                   "--weight_path", normal_detector(study), "--lr", args.finetune_lr, "--warmup_iters", 0)


def finetune_settings(study):
    args = study.args
    return f"{args.finetune_epochs} epochs at lr {args.finetune_lr:g} on {study.target} low light"


register(Remedy("finetune", "the detector fine-tuned on synthetic low light", family="fine-tuning",
                train=lambda study: finetune(study, "finetuned",
                                             study.data.low_light[study.target]["train"]),
                detector=finetuned_detector("finetuned"), settings=finetune_settings,
                flags=(Flag("epochs", positive_int, 4, "epochs of finetune and of finetune_mixed"),
                       Flag("lr", positive_float, 5e-4, "learning rate of finetune and finetune_mixed")),
                logs=(("fine-tuning", ("mask_rcnn", "finetuned")),)))


def mixed_folder(study):
    """The train images, each the normal or the synthetic low-light copy (a
    `--finetune_mixed_ratio` share of low light, chosen with --seed), hard-linked (copied across
    file systems)."""
    data, args = study.data, study.args
    ratio = args.finetune_mixed_ratio
    out = study.path("data", "mixed", study.target, f"ratio_{ratio:g}")
    names = annotation_file_names(data.train_annotation)
    chosen = set(random.Random(args.seed).sample(names, round(ratio * len(names))))
    for folder in {os.path.dirname(os.path.join(out, name)) for name in names}:
        remove_stale_temporaries(folder)  # links of a study killed mid-way
    for name in names:
        source = os.path.join(data.low_light[study.target]["train"] if name in chosen
                              else data.train_image_dir, name)
        target = os.path.join(out, name)
        if not os.path.exists(target):
            atomic_link_or_copy(source, target)
    return out


def train_mixed(study):
    folder = study.timed("mix normal and low light", mixed_folder, study)
    finetune(study, "finetuned_mixed", folder)


register(Remedy("finetune_mixed", "fine-tuned on normal and synthetic low light together "
                "(--finetune_mixed_ratio low light)", train=train_mixed, family="fine-tuning",
                detector=finetuned_detector("finetuned_mixed"),
                settings=lambda study: (f"{finetune_settings(study)}, "
                                        f"{study.args.finetune_mixed_ratio:g} of it low light"),
                flags=(Flag("ratio", probability, 0.5, "share of the train images given as "
                            "synthetic low light", aliases=("--mix_ratio",)),),
                logs=(("fine-tuning, mixed", ("mask_rcnn", "finetuned_mixed")),)))


# ---------------------------------------------------------------- diffusion restoration

def every_image_written(out, test_set):
    """`out` when it holds every image of `test_set` (written one by one, atomically), else None:
    the `done` of a step that restores or enhances a test set image by image."""
    names = annotation_file_names(test_set.annotation)
    return out if all(os.path.isfile(os.path.join(out, n)) for n in names) else None


def train_diffusion(study):
    args, data = study.args, study.data
    study.run("train diffusion", "diffusion_model/train.py", "--input_image_dir", data.train_image_dir,
              "--conditional_image_dir", data.low_light[study.target]["train"], "--checkpoint_dir",
              study.path("diffusion"), "--epochs", args.diffusion_epochs, "--image_size",
              args.diffusion_image_size, "--batch_size", args.diffusion_batch_size, "--dim", args.diffusion_dim,
              "--dim_mults", args.diffusion_dim_mults, "--lr", args.diffusion_lr, "--sample_every", 0,
              "--device", args.device, "--seed", args.seed, "--resume", distributed=True)


def restored_images(study, test_set):
    args = study.args
    out = study.output(f"restore {test_set.name}", "diffusion", "restored", test_set.name)
    study.run(f"restore {test_set.name}", "diffusion_model/inference.py", "--conditional_image_dir",
              test_set.image_dir, "--input_image_dir", test_set.normal_dir or "", "--annotation",
              test_set.annotation, "--output_dir", out, "--weight_path",
              study.path("diffusion", "last.pth"), "--steps", args.diffusion_steps, "--device", args.device,
              "--seed", args.seed, "--count", 0, done=every_image_written(out, test_set))
    return out


register(Remedy(
    "diffusion", "restored by the conditional diffusion model, then the normal-light detector",
    train=train_diffusion, images=restored_images, low_light_only=True, family="restoration",
    weights=lambda study: study.path("diffusion", "last.pth"),
    settings=lambda study: (f"UNet width {study.args.diffusion_dim} x ({study.args.diffusion_dim_mults}), "
                            f"{study.args.diffusion_epochs} epochs on {study.target} pairs, DDIM "
                            f"{study.args.diffusion_steps} steps"),
    flags=(Flag("epochs", positive_int, 200, "diffusion training epochs"),
           Flag("image_size", non_negative_int, 16, "diffusion training crop (0: full images)"),
           Flag("batch_size", positive_int, 32, "diffusion training batch size"),
           Flag("dim", positive_int, 16, "diffusion UNet channels at full resolution"),
           Flag("dim_mults", str, "1,2,4", "diffusion UNet channel multipliers (comma-separated)"),
           Flag("lr", positive_float, 2e-3, "diffusion learning rate"),
           Flag("steps", positive_int, 2,
                "DDIM steps when restoring. A briefly trained restorer does best with few: they "
                "stay near the conditional mean (smooth), more steps add its colour noise (sample "
                "study, val bbox AP50: 0.36 at 2 steps, 0.23 at 10)")),
    logs=(("diffusion", ("diffusion",)),)))


# ---------------------------------------------------------------- classical enhancement

def enhanced_images(method):
    """images() of a classical enhancement: dataset/enhance.py on the test set."""
    def images(study, test_set):
        data = study.data
        out = study.output(f"{method} {test_set.name}", "enhanced", method, test_set.name)
        study.run(f"{method} {test_set.name}", "dataset/enhance.py", "--method", method, "--input_dir",
                  test_set.image_dir, "--annotation", test_set.annotation, "--output_dir", out,
                  "--reference_dir", data.train_image_dir, "--reference_annotation",
                  data.train_annotation, done=os.path.join(out, "enhancement.json"))
        return out
    return images


for _name, _description in (("gamma", "gamma per image to the normal-light train set's mean luma"),
                            ("clahe", "CLAHE on the L channel of Lab"),
                            ("histeq", "histogram equalisation of the luma")):
    register(Remedy(_name, _description, images=enhanced_images(_name), low_light_only=True,
                    classical=True, family="classical enhancement"))


# ---------------------------------------------------------------- enhancers (enhancer/)

def enhancer_checkpoint(name):
    """weights(study) of an enhancer remedy: enhancer/train.py's last.pth in its own folder."""
    return lambda study: study.path("enhancer", name, "last.pth")


def train_enhancer(name, model, objective, options=lambda args: []):
    """train(study): enhancer/train.py on the synthetic low-light train images (zero-reference
    reads the images alone; the detector objectives their boxes and the normal-light detector).
    `options(args)`: the remedy's own enhancer/train.py flags."""
    def train(study):
        args, data = study.args, study.data
        detector = [] if objective == "zero_reference" else [
            "--detector", normal_detector(study),
            *(["--category_map", study.category_map] if study.category_map else [])]
        study.run(f"train {name}", "enhancer/train.py", "--model", model, "--objective", objective,
                  "--image_dir", data.low_light[study.target]["train"], "--annotation",
                  data.train_annotation, "--checkpoint_dir", study.path("enhancer", name),
                  "--epochs", getattr(args, f"{name}_epochs"), *detector, *options(args),
                  "--device", args.device, "--seed", args.seed, "--resume", distributed=True)
    return train


def enhancer_images(name):
    """images(study, test_set): the test set through the trained enhancer (enhancer/inference.py)."""
    def images(study, test_set):
        out = study.output(f"{name} {test_set.name}", "enhanced", name, test_set.name)
        study.run(f"{name} {test_set.name}", "enhancer/inference.py", "--weight_path",
                  enhancer_checkpoint(name)(study), "--input_dir", test_set.image_dir,
                  "--annotation", test_set.annotation, "--output_dir", out,
                  "--device", study.args.device, done=every_image_written(out, test_set))
        return out
    return images


def parameter_size_flag(name):
    return Flag("parameter_size", positive_int, 64, f"{name}: side of the thumbnail its parameter "
                "CNN sees (enhancer/train.py's default: 256)")


register(Remedy(
    "zero_dce", "Zero-DCE++ (zero-reference curve estimation), then the normal-light detector",
    train=train_enhancer("zero_dce", "zero_dce", "zero_reference",
                         lambda args: ["--exposure", args.zero_dce_exposure]),
    images=enhancer_images("zero_dce"), low_light_only=True, family="learned enhancement",
    weights=enhancer_checkpoint("zero_dce"),
    settings=lambda study: (f"{study.args.zero_dce_epochs} epochs on {study.target} low light "
                            f"(no pairs, no labels), E = {study.args.zero_dce_exposure:g}"),
    needs=needs_min_size(ZERO_DCE_MIN_TRAINING_SIZE, "Zero-DCE++"),
    flags=(Flag("epochs", positive_int, 60, "Zero-DCE++ training epochs"),
           Flag("exposure", probability, 0.6, "Zero-DCE++ exposure target E (release: 0.6)")),
    logs=(("Zero-DCE++", ("enhancer", "zero_dce")),)))

register(Remedy(
    "enhancer", "a differentiable filter enhancer (IA-YOLO style) trained through the frozen "
    "normal-light detector's loss, then that detector",
    train=train_enhancer("enhancer", "dip", "frozen_detector",
                         lambda args: ["--parameter_size", args.enhancer_parameter_size]),
    images=enhancer_images("enhancer"), low_light_only=True, family="learned enhancement",
    weights=enhancer_checkpoint("enhancer"),
    settings=lambda study: (f"{study.args.enhancer_epochs} epochs on {study.target} low light, "
                            f"detector frozen, thumbnail {study.args.enhancer_parameter_size}"),
    flags=(Flag("epochs", positive_int, 6, "epochs of the enhancer through the frozen detector"),
           parameter_size_flag("enhancer")),
    logs=(("enhancer (frozen detector)", ("enhancer", "enhancer")),)))

register(Remedy(
    "enhancer_joint", "the same enhancer and the detector trained together end to end from the "
    "normal-light detector (scored on normal light too: its forgetting shows)",
    train=train_enhancer("enhancer_joint", "dip", "joint", lambda args: [
        "--parameter_size", args.enhancer_joint_parameter_size,
        "--detector_lr", args.enhancer_joint_detector_lr]),
    images=enhancer_images("enhancer_joint"), family="learned enhancement",
    detector=lambda study: study.path("enhancer", "enhancer_joint", "detector.pth"),
    weights=enhancer_checkpoint("enhancer_joint"),
    settings=lambda study: (f"{study.args.enhancer_joint_epochs} epochs on {study.target} low "
                            f"light, thumbnail {study.args.enhancer_joint_parameter_size}, "
                            f"detector lr {study.args.enhancer_joint_detector_lr:g}"),
    flags=(Flag("epochs", positive_int, 4, "epochs of the joint enhancer and detector"),
           parameter_size_flag("enhancer_joint"),
           Flag("detector_lr", positive_float, 5e-4, "learning rate of the detector in the joint "
                "training")),
    logs=(("enhancer + detector (joint)", ("enhancer", "enhancer_joint")),)))


# ---------------------------------------------------------------- GenISP on RAW

def genisp_weights(study):
    return study.path("genisp", "last.pth")


def train_genisp(study):
    args, data = study.args, study.data
    study.run("train GenISP", "genisp/train.py", "--raw_dir", data.raw_train_dir,
              *(["--annotation", data.raw_train_annotation] if data.raw_train_annotation else []),
              "--checkpoint_dir", study.path("genisp"), "--detector", normal_detector(study),
              "--epochs", args.genisp_epochs, "--lr_milestones", max(1, int(args.genisp_epochs * 0.7)),
              "--parameter_size", args.genisp_parameter_size, "--batch_size", args.genisp_batch_size,
              "--resize", *args.genisp_resize, "--device", args.device, "--seed", args.seed, "--resume",
              *(["--category_map", study.category_map] if study.category_map else []), distributed=True)


def score_raw_sets(study, test_set, pipelines):
    """genisp/evaluate.py on a RAW set: {pipeline: {"bbox": stats}}, {pipeline: {"bbox": json}}."""
    args = study.args
    out = study.output(f"evaluate RAW {test_set.name}", "eval", "raw", test_set.name)
    study.run(f"evaluate RAW {test_set.name}", "genisp/evaluate.py", "--raw_dir", test_set.image_dir,
              *(["--annotation", test_set.annotation] if test_set.annotation else []),
              "--weight_path", genisp_weights(study), "--output_dir", out,
              "--pipelines", *pipelines, "--device", args.device,
              *(["--category_map", study.category_map] if study.category_map else []),
              done=os.path.join(out, "results.json"))
    results = read_json(os.path.join(out, "results.json"))
    return ({p: {"bbox": results[p]} for p in pipelines},
            {p: {"bbox": detections_file(out, p, "bbox")} for p in pipelines})


def genisp_examples(study, test_set):
    """GenISP's detections on the RAW twins of a synthetic set's images (same file stems)."""
    raw = next((t for t in study.test_sets if t.kind == RAW and t.name == "raw"), None)
    if raw is None or test_set.method is None:
        return {}
    out = study.output("GenISP examples", "genisp", "examples")
    study.run("GenISP examples", "genisp/inference.py", "--raw_dir", raw.image_dir, "--output_dir", out,
              "--weight_path", genisp_weights(study), "--detect", "--device", study.args.device,
              done=out if os.path.isdir(out) else None)
    drawn = {}
    for name in annotation_file_names(test_set.annotation):
        overlay = os.path.join(out, os.path.splitext(os.path.basename(name))[0] + "_detections.png")
        if os.path.isfile(overlay):
            drawn[name] = overlay
    return drawn


register(Remedy(
    "genisp", "GenISP on camera RAW, then the frozen normal-light detector", train=train_genisp,
    rgb=False, raw_pipeline="genisp", score_raw=score_raw_sets, weights=genisp_weights, family="RAW",
    settings=lambda study: (f"{study.args.genisp_epochs} epochs, thumbnail "
                            f"{study.args.genisp_parameter_size}, input "
                            f"{'x'.join(map(str, study.args.genisp_resize))} (0x0: packed RAW size)"),
    flags=(Flag("epochs", positive_int, 4, "GenISP training epochs"),
           Flag("batch_size", positive_int, 8, "GenISP training batch size"),
           Flag("parameter_size", positive_int, 64, "GenISP's ConvWB/ConvCC thumbnail side (the paper: 256)"),
           Flag("resize", non_negative_int, [0, 0], "GenISP input size LONG SHORT (0 0: the packed "
                "RAW size; the paper: 1333 800)", nargs=2, metavar=("LONG", "SHORT"))),
    logs=(("GenISP", ("genisp",)),), examples=genisp_examples))
