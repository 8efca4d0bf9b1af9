"""The rows of the study: a registry of remedies, each one entry plus its own code elsewhere.

A remedy may train something once (`train`), may produce the images the detector reads
(`images`: restoration, enhancement), picks the detector that scores them (`detector`), and
says which test sets it applies to. Adding one is `register(Remedy(...))`; the report's rows,
columns and figures follow from the registries. An identity enhancement, for example:

    register(Remedy("identity", "the low-light images as they are",
                    images=lambda study, test_set: test_set.image_dir, low_light_only=True))
"""
import os
import random
import shutil
from dataclasses import dataclass
from typing import Callable


def normal_detector(study):
    """The Mask R-CNN trained on normal light (the `none` remedy's)."""
    return study.path("mask_rcnn", "normal", "last.pth")


@dataclass(frozen=True)
class Remedy:
    name: str
    description: str
    train: Callable | None = None  # train(study): run its training scripts (resumable)
    images: Callable | None = None  # images(study, test_set) -> folder of the images scored
    detector: Callable = normal_detector  # detector(study) -> checkpoint that scores them
    raw_pipeline: str | None = None  # genisp/evaluate.py pipeline on RAW sets (None: not on RAW)
    rgb: bool = True  # scored on RGB test sets
    low_light_only: bool = False  # not scored on normal-light sets
    logs: tuple = ()  # (title, path parts under the study folder) of train_log.jsonl files

    def applies(self, test_set):
        if test_set.kind == "raw":
            return self.raw_pipeline is not None
        return self.rgb and (test_set.low_light or not self.low_light_only)


REMEDIES = {}


def register(remedy):
    """Add (or replace) a remedy; rows appear in registration order."""
    REMEDIES[remedy.name] = remedy
    return remedy


def train_detector(study, name, image_dir, annotation, epochs, *extra):
    """Train (or continue) a Mask R-CNN with mask_rcnn/train.py; returns its checkpoint."""
    a = study.args
    out = study.path("mask_rcnn", name)
    study.run(f"train {name}", "mask_rcnn/train.py", "--image_dir", image_dir, "--annotation",
              annotation, "--checkpoint_dir", out, "--epochs", epochs, "--model", a.model,
              "--weights", a.weights, "--batch_size", a.batch_size, "--eval_every", 0,
              "--lr_step_size", max(1, int(epochs * 0.75)), "--device", a.device, "--seed", a.seed,
              "--augment", a.augment, "--resume", *(["--min_size", a.min_size] if a.min_size else []),
              *(["--category_map", a.category_map] if a.category_map else []), *extra,
              distributed=True)
    return os.path.join(out, "last.pth")


def train_normal(study):
    d = study.data
    train_detector(study, "normal", d["train_image_dir"], d["train_annotation"], study.args.epochs)


def finetune_args(study):
    a = study.args
    return ("--weight_path", normal_detector(study), "--lr", a.finetune_lr, "--warmup_iters", 0)


def train_finetuned(study):
    d = study.data
    train_detector(study, "finetuned", d["low_light"][study.target]["train"], d["train_annotation"],
                   study.args.finetune_epochs, *finetune_args(study))


def mixed_folder(study):
    """The train images, each the normal or the synthetic low-light copy (a `--mix_ratio` share
    of low light, chosen with --seed), hard-linked (copied across file systems)."""
    d, a = study.data, study.args
    out = study.path("data", "mixed", study.target, f"ratio_{a.mix_ratio:g}")
    from torch_utils_lib.image_io import annotation_file_names
    names = annotation_file_names(d["train_annotation"])
    chosen = set(random.Random(a.seed).sample(names, round(a.mix_ratio * len(names))))
    for name in names:
        source = os.path.join(d["low_light"][study.target]["train"] if name in chosen
                              else d["train_image_dir"], name)
        target = os.path.join(out, name)
        if os.path.exists(target):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(source, target + ".tmp")
        except OSError:
            shutil.copyfile(source, target + ".tmp")
        os.replace(target + ".tmp", target)
    return out


def train_mixed(study):
    folder = study.timed("mix normal and low light", mixed_folder, study)
    train_detector(study, "finetuned_mixed", folder, study.data["train_annotation"],
                   study.args.finetune_epochs, *finetune_args(study))


def train_diffusion(study):
    a, d = study.args, study.data
    study.run("train diffusion", "diffusion_model/train.py", "--input_image_dir", d["train_image_dir"],
              "--conditional_image_dir", d["low_light"][study.target]["train"], "--checkpoint_dir",
              study.path("diffusion"), "--epochs", a.diffusion_epochs, "--image_size",
              a.diffusion_image_size, "--batch_size", a.diffusion_batch_size, "--dim", a.diffusion_dim,
              "--dim_mults", a.diffusion_dim_mults, "--lr", a.diffusion_lr, "--sample_every", 0,
              "--device", a.device, "--seed", a.seed, "--resume", distributed=True)


def restored_images(study, test_set):
    from torch_utils_lib.image_io import annotation_file_names
    a = study.args
    out = study.path("diffusion", "restored", test_set.name)
    complete = all(os.path.isfile(os.path.join(out, n)) for n in annotation_file_names(test_set.annotation))
    study.run(f"restore {test_set.name}", "diffusion_model/inference.py", "--conditional_image_dir",
              test_set.image_dir, "--input_image_dir", test_set.normal_dir or "", "--annotation",
              test_set.annotation, "--output_dir", out, "--weight_path",
              study.path("diffusion", "last.pth"), "--steps", a.diffusion_steps, "--device", a.device,
              "--seed", a.seed, "--count", 0, done=out if complete else None)
    return out


def enhanced_images(method):
    """images() of a classical enhancement: dataset/enhance.py on the test set."""
    def images(study, test_set):
        d = study.data
        out = study.path("enhanced", method, test_set.name)
        study.run(f"{method} {test_set.name}", "dataset/enhance.py", "--method", method, "--input_dir",
                  test_set.image_dir, "--annotation", test_set.annotation, "--output_dir", out,
                  "--reference_dir", d["train_image_dir"], "--reference_annotation",
                  d["train_annotation"], done=os.path.join(out, "enhancement.json"))
        return out
    return images


def train_genisp(study):
    a, d = study.args, study.data
    study.run("train GenISP", "genisp/train.py", "--raw_dir", d["raw_train_dir"],
              *(["--annotation", d["raw_train_annotation"]] if d["raw_train_annotation"] else []),
              "--checkpoint_dir", study.path("genisp"), "--detector", normal_detector(study),
              "--epochs", a.genisp_epochs, "--lr_milestones", max(1, int(a.genisp_epochs * 0.7)),
              "--parameter_size", a.genisp_parameter_size, "--batch_size", a.genisp_batch_size,
              "--resize", *a.genisp_resize, "--device", a.device, "--seed", a.seed, "--resume",
              *(["--category_map", a.category_map] if a.category_map else []), distributed=True)


register(Remedy("none", "the normal-light detector as it is", train=train_normal,
                raw_pipeline="minimal", logs=(("Mask R-CNN normal", ("mask_rcnn", "normal")),)))
register(Remedy("finetune", "the detector fine-tuned on synthetic low light", train=train_finetuned,
                detector=lambda study: study.path("mask_rcnn", "finetuned", "last.pth"),
                logs=(("fine-tuning", ("mask_rcnn", "finetuned")),)))
register(Remedy("finetune_mixed", "fine-tuned on normal and synthetic low light together "
                "(--mix_ratio low light)", train=train_mixed,
                detector=lambda study: study.path("mask_rcnn", "finetuned_mixed", "last.pth"),
                logs=(("fine-tuning, mixed", ("mask_rcnn", "finetuned_mixed")),)))
register(Remedy("diffusion", "restored by the conditional diffusion model, then the normal-light "
                "detector", train=train_diffusion, images=restored_images, low_light_only=True,
                logs=(("diffusion", ("diffusion",)),)))
register(Remedy("gamma", "gamma per image to the normal-light train set's mean luma",
                images=enhanced_images("gamma"), low_light_only=True))
register(Remedy("clahe", "CLAHE on the L channel of Lab", images=enhanced_images("clahe"),
                low_light_only=True))
register(Remedy("histeq", "histogram equalisation of the luma", images=enhanced_images("histeq"),
                low_light_only=True))
register(Remedy("genisp", "GenISP on camera RAW, then the frozen normal-light detector",
                train=train_genisp, rgb=False, raw_pipeline="genisp",
                logs=(("GenISP", ("genisp",)),)))
