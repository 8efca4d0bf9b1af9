"""The field's second protocol (MAET, IAT, RetinexFormer): enhance the train and test images
offline, then fine-tune the detector on the enhanced train images.

`--retrain_on_enhanced REMEDY ...` adds, for each image remedy REMEDY (its images scored by the
normal-light detector), a row `REMEDY+ft`: the normal-light detector fine-tuned with
`finetune`'s recipe (--finetune_epochs, --finetune_lr) on REMEDY's enhancement of the synthetic
low-light train images (the first --methods), scored on REMEDY's enhanced test images. Its
differences: against `none`, the best classical enhancement, and REMEDY's own row (the same
images through the frozen detector), as `vs_frozen`.
"""
from study.remedies import REMEDIES, Remedy, finetune, normal_detector
from study.sets import TestSet
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.names import name_key

SUFFIX = "+ft"


def retrainable(remedy):
    """An image remedy whose images the normal-light detector scores."""
    return remedy.images is not None and remedy.detector is normal_detector and remedy.rgb


def folder_of(row):
    """The row's checkpoint folder under mask_rcnn/ (`gamma+ft`: `gamma_ft`; `+` is no file name)."""
    return row.replace(SUFFIX, "_ft")


def retrain_remedies(study):
    """The `REMEDY+ft` rows of --retrain_on_enhanced, each REMEDY checked: selected with
    --remedies, an image remedy, its checkpoint folder no other row's."""
    rows, names = [], {name_key(r.name) for r in study.remedies}
    for name in dict.fromkeys(study.args.retrain_on_enhanced):
        base = next((r for r in study.remedies if r.name == name), None)
        if base is None:
            raise UserError(f"--retrain_on_enhanced {name}: not a row of the study; add it to "
                            f"--remedies (its own frozen-detector row is the comparison)")
        if not retrainable(base):
            raise UserError(f"--retrain_on_enhanced {name}: not an image remedy scored by the "
                            f"normal-light detector (choose among "
                            f"{', '.join(r.name for r in study.remedies if retrainable(r))})")
        row = f"{name}{SUFFIX}"
        if name_key(folder_of(row)) in names | {name_key(r) for r in REMEDIES}:
            raise UserError(f"--retrain_on_enhanced {name}: its folder {folder_of(row)} is "
                            f"another row's name")
        rows.append(retrained(base, row))
    return rows


def enhanced_train_set(study):
    """The synthetic low-light train images as a TestSet, for a remedy's images() step."""
    data = study.data
    return TestSet(f"train_{study.target}", data.low_light[study.target]["train"],
                   data.train_annotation)


def retrained(base, row):
    folder = folder_of(row)

    def train(study):
        images = base.images(study, enhanced_train_set(study))
        finetune(study, folder, images)

    def detector(study):
        return study.path("mask_rcnn", folder, "last.pth")

    return Remedy(
        row, f"the normal-light detector fine-tuned on {base.name}'s enhanced train images, "
             f"scored on its enhanced test images", train=train, images=base.images,
        detector=detector, low_light_only=True, frozen=base.name, family="fine-tuning",
        settings=lambda study: (f"{base.name} on the {study.target} train images, then "
                                f"{study.args.finetune_epochs} epochs of fine-tuning at lr "
                                f"{study.args.finetune_lr:g} from the normal-light detector"),
        logs=((f"fine-tuning on {base.name}", ("mask_rcnn", folder)),))
