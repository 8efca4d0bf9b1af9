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

from diffusion_model.sizes import CROP_RANGE, DIM_RANGE, SAMPLING_STEPS_RANGE
from enhancer.sizes import (DIP_MAX_PARAMETER_SIZE, DIP_MIN_PARAMETER_SIZE, ZERO_DCE_MAX_CROP,
                            ZERO_DCE_MIN_TRAINING_SIZE)
from genisp.sizes import PARAMETER_SIZE_RANGE as GENISP_PARAMETER_SIZE_RANGE
from genisp.sizes import MIN_RAW_SIZE, RESIZE_RANGE
from study.sets import RAW
from torch_utils_lib.evaluation.coco_eval import detections_file
from torch_utils_lib.toolkit.atomic_io import atomic_link_or_copy, read_json, remove_stale_temporaries
from torch_utils_lib.toolkit.cli import int_in_range, positive_float, positive_int, probability
from torch_utils_lib.toolkit.flag_choices import BATCH_SIZE_RANGE
from torch_utils_lib.data.categories import load_category_map, match_categories, present_categories
from torch_utils_lib.data.coco_json import degenerate_box, has_segmentation, load_coco_json
from torch_utils_lib.data.image_io import annotation_file_names, read_size
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import safe_join
from torch_utils_lib.toolkit.runinfo import file_digest


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
    # needs(study, train_set: TrainSet) -> why its steps are certain to fail on the study's
    # train set (one line), or None; checked before the first step
    needs: Callable | None = None
    # given(study) -> weights the user gave in place of its training (checked, absolute), or
    # None: it trains them
    given: Callable | None = None
    # detections(study, test_set) -> its scored cell, from detections it did not make (no
    # detector runs), or None
    detections: Callable | None = None
    sets: frozenset | None = None  # the only test sets it is scored on (None: by the rules above)
    frozen: str | None = None  # the row whose images it scores with a retrained detector (vs_frozen)
    # the figures draw a family in one hue and give it its own darkness panel
    family: str = "other"

    def applies(self, test_set):
        """Whether it is scored on `test_set` (RAW sets exist only where a remedy scores RAW)."""
        if self.sets is not None:
            return test_set.name in self.sets
        if test_set.kind == RAW:
            return self.raw_pipeline is not None
        return self.rgb and (test_set.low_light or not self.low_light_only)

    @property
    def learned(self):
        """It trains something of its own (the baseline `none` trains the detector it uses)."""
        return self.train is not None and self.name != BASELINE

    def trains(self, study):
        """Its training step runs (it has one and no weights were given in its place)."""
        return self.train is not None and not (self.given is not None and self.given(study))

    def trained_weights(self, study):
        """The file its training writes or the user gave (None: it trains nothing)."""
        given = self.given(study) if self.given is not None else None
        if given:
            return given
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
    without_masks: int = 0  # of those, how many have no mask (Mask R-CNN trains on masks)
    elongated: tuple = None  # (path, width, height) of the image with the largest long:short ratio


def check_needs(study):
    """Refuse, before the first step, a selected remedy whose steps are certain to fail on the
    train set (each remedy's `needs`), and an RGB test set whose classes the detector (trained
    on the train set's classes) cannot score. The bundled sample set, made by a step, always
    serves."""
    data = study.data
    if data.sample:
        return
    coco = load_coco_json(data.train_annotation)
    sizes = []
    for image in coco["images"]:
        path = safe_join(data.train_image_dir, image["file_name"], data.train_annotation)
        h, w = ((image["height"], image["width"]) if image.get("width") and image.get("height")
                else read_size(path))
        sizes.append((min(w, h), path, w, h))
    usable = [a for a in coco["annotations"]
              if not a.get("iscrowd") and not degenerate_box(a["bbox"])]
    elongated = max(sizes, key=lambda s: max(s[2:]) / max(1, s[0]), default=None)
    train_set = TrainSet(data.train_annotation, min(sizes)[1:] if sizes else None, len(usable),
                         sum(1 for a in usable if not has_segmentation(a)),
                         elongated[1:] if elongated else None)
    for remedy in study.remedies:  # given weights in place of training need nothing of the set
        problem = remedy.needs(study, train_set) if remedy.needs and remedy.trains(study) else None
        if problem:
            raise UserError(f"--remedies {remedy.name}: {problem}")
    check_test_classes(study, coco)


def check_test_classes(study, train_coco):
    """Every RGB test set's annotated classes map onto the detector's (the train set's, by name,
    or COCO's with --weights coco), as mask_rcnn/evaluate.py will map them."""
    # torch: the study's --help reads this module's registry without it
    from mask_rcnn.training import label_space
    _, names, _ = label_space(train_coco["categories"], study.args.weights,
                              category_map=load_category_map(study.category_map),
                              source=study.data.train_annotation,
                              present=present_categories(train_coco))
    checked = set()
    for test_set in study.test_sets:
        if test_set.kind == RAW or test_set.annotation in checked:
            continue
        checked.add(test_set.annotation)
        match_categories(present_categories(load_coco_json(test_set.annotation)), names,
                         load_category_map(study.category_map),
                         f"{test_set.annotation} (test set {test_set.name})")


def needs_detector_training(study, train_set):
    """needs() of the rows that train the detector on the train set: usable boxes, a mask on
    each where the detector is a Mask R-CNN, and no image too elongated for its resize."""
    if not train_set.boxes:
        return (f"{train_set.annotation}: no usable box (all crowd or degenerate); its detector "
                f"steps learn from boxes")
    # torch: the study's --help reads this module's registry without it
    from torch_utils_lib.models.detectors import DETECTORS, family_of, resized_short_side
    model = study.args.model
    if family_of(model).has_masks and train_set.without_masks:
        return (f"{train_set.annotation}: {train_set.without_masks} of the {train_set.boxes} "
                f"boxes trained on have no mask and {model} trains on masks; pass a box "
                f"detector (--model fasterrcnn_resnet50_fpn)")
    min_size, max_size = study.args.min_size or DETECTORS[model].sizes[0], DETECTORS[model].sizes[1]
    if train_set.elongated:
        path, w, h = train_set.elongated
        if resized_short_side(h, w, min_size, max_size) < 1:
            return (f"{path}: {w}x{h}: the detector resizes its long side to {max_size} px, which "
                    f"leaves the short side under 1 px; it takes images up to {max_size}:1")
    return None


def needs_min_size(side, what):
    """needs(): every train image at least `side` pixels a side, `what` (e.g. "Zero-DCE++ trains
    on": the model trains on whole images) saying what needs them."""
    def needs(study, train_set):
        if train_set.smallest and min(train_set.smallest[1:]) < side:
            path, w, h = train_set.smallest
            return (f"{path}: {w}x{h}, smaller than the {side}x{side} {what}; remove "
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
                raw_pipeline="minimal", needs=needs_detector_training, family="baseline",
                logs=(("Mask R-CNN normal", ("mask_rcnn", "normal")),)))


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
           Flag("image_size", int_in_range(*CROP_RANGE, off=0), 16, "diffusion training crop (0: full images)"),
           Flag("batch_size", int_in_range(*BATCH_SIZE_RANGE), 32, "diffusion training batch size"),
           Flag("dim", int_in_range(*DIM_RANGE), 16, "diffusion UNet channels at full resolution"),
           Flag("dim_mults", str, "1,2,4", "diffusion UNet channel multipliers (comma-separated)"),
           Flag("lr", positive_float, 2e-3, "diffusion learning rate"),
           Flag("steps", int_in_range(*SAMPLING_STEPS_RANGE), 2,
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
    """images(study, test_set): the test set through the remedy's enhancer weights (trained or
    given; enhancer/inference.py)."""
    def images(study, test_set):
        out = study.output(f"{name} {test_set.name}", "enhanced", name, test_set.name)
        study.run(f"{name} {test_set.name}", "enhancer/inference.py", "--weight_path",
                  REMEDIES[name].trained_weights(study), "--input_dir", test_set.image_dir,
                  "--annotation", test_set.annotation, "--output_dir", out,
                  "--device", study.args.device, done=every_image_written(out, test_set))
        return out
    return images


def parameter_size_flag(name):
    return Flag("parameter_size", int_in_range(DIP_MIN_PARAMETER_SIZE, DIP_MAX_PARAMETER_SIZE), 64, f"{name}: side of the thumbnail its parameter "
                "CNN sees (enhancer/train.py's default: 256)")


def given_enhancer_weights(name):
    """given(study) of an enhancer remedy: its --<name>_weights file as an absolute path, checked
    to be enhancer weights (an enhancer/train.py checkpoint of this model, or the Zero-DCE++
    release's state dict), or None."""
    def given(study):
        path = getattr(study.args, f"{name}_weights")
        if not path:
            return None
        path = os.path.abspath(path)
        # torch loads only here, after the flags are parsed (study/run.py --help stays instant)
        from enhancer.models import read_enhancer_state
        model = (read_enhancer_state(path).get("config") or {}).get("model")
        if model != name:
            raise UserError(f"{path}: --{name}_weights takes {name} weights, not {model!r} ones")
        return path
    return given


def zero_dce_settings(study):
    given = REMEDIES["zero_dce"].given(study)
    if given:
        return (f"the given weights {given} (sha256 {file_digest(given)}), no training; the "
                f"Zero-DCE++ release's state dict runs at its test scale factor 12")
    crop = study.args.zero_dce_image_size
    return (f"{study.args.zero_dce_epochs} epochs on {study.target} low light (no pairs, no "
            f"labels), E = {study.args.zero_dce_exposure:g}, scale factor 1 (as the release trains), "
            + (f"random {crop}-px crops" if crop else "whole images"))


register(Remedy(
    "zero_dce", "Zero-DCE++ (zero-reference curve estimation), then the normal-light detector",
    train=train_enhancer("zero_dce", "zero_dce", "zero_reference",
                         lambda args: ["--exposure", args.zero_dce_exposure,
                                       "--image_size", args.zero_dce_image_size]),
    images=enhancer_images("zero_dce"), low_light_only=True, family="learned enhancement",
    weights=enhancer_checkpoint("zero_dce"), given=given_enhancer_weights("zero_dce"),
    settings=zero_dce_settings,
    needs=needs_min_size(ZERO_DCE_MIN_TRAINING_SIZE, "Zero-DCE++ trains on"),
    flags=(Flag("epochs", positive_int, 60, "Zero-DCE++ training epochs"),
           Flag("exposure", probability, 0.6, "Zero-DCE++ exposure target E (release: 0.6)"),
           Flag("image_size", int_in_range(ZERO_DCE_MIN_TRAINING_SIZE, ZERO_DCE_MAX_CROP, off=0),
                64, "Zero-DCE++ random square training crop in px (0: whole images, as the "
                "release trains on 512-px images). Its losses are local: on the sample study "
                "(2026-12-07, 60 epochs) 64-px crops, a quarter of the pixels per step, scored as "
                "well as whole 128-px images (val bbox AP 0.097 vs 0.086 on gamma_noise, 0.211 vs "
                "0.190 on physics)"),
           Flag("weights", str, None, "Zero-DCE++ weights to score instead of training: the "
                "authors' released state dict as it is (Epoch99.pth, run at their test scale "
                "factor 12) or an enhancer/train.py zero_dce checkpoint", metavar="FILE")),
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
           Flag("batch_size", int_in_range(*BATCH_SIZE_RANGE), 8, "GenISP training batch size"),
           Flag("parameter_size", int_in_range(*GENISP_PARAMETER_SIZE_RANGE), 64, "GenISP's ConvWB/ConvCC thumbnail side (the paper: 256)"),
           Flag("resize", int_in_range(*RESIZE_RANGE, off=0), [0, 0], "GenISP input size LONG SHORT (0 0: the packed "
                "RAW size; the paper: 1333 800)", nargs=2, metavar=("LONG", "SHORT"))),
    needs=lambda study, train_set: None if study.args.raw_train_dir else needs_min_size(
        MIN_RAW_SIZE, "DNG LibRaw reads (GenISP's RAW is the physics synthesis' here)")(
        study, train_set),
    logs=(("GenISP", ("genisp",)),), examples=genisp_examples))
