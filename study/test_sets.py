"""The columns of the study: test sets, built by a registry of builders from the study's data.

Each builder returns TestSets; the report's columns follow the registry's order. A new kind of
test set (e.g. synthetic low light at fixed darkness levels) is one more builder in TEST_SETS.
"""
import os
import re
from dataclasses import asdict, dataclass

from torch_utils_lib.cli import UserError


@dataclass(frozen=True)
class TestSet:
    """One column: images, their annotation, and what they are."""
    name: str
    image_dir: str
    annotation: str | None  # None for a RAW folder with its own annotations.json
    kind: str = "rgb"  # "rgb": images a detector reads; "raw": camera RAW (GenISP's sets)
    low_light: bool = True
    normal_dir: str | None = None  # paired normal-light images: upper reference, PSNR/SSIM
    method: str | None = None  # the synthesis that made it (None: real images)
    severity: float | None = None  # fixed darkness level of a synthesis (None: its random range)

    @property
    def annotation_file(self):
        """The annotation given, or a RAW folder's own annotations.json (genisp's default)."""
        return self.annotation or os.path.join(self.image_dir, "annotations.json")

    def as_dict(self):
        return asdict(self)


def normal_sets(study):
    """The normal-light val set: every detector remedy is scored there too."""
    d = study.data
    return [TestSet("normal", d["val_image_dir"], d["val_annotation"], low_light=False)]


def synthetic_sets(study):
    """Each --methods synthesis of the val set, paired with the normal-light val images."""
    d = study.data
    return [TestSet(method, d["low_light"][method]["val"], d["val_annotation"],
                    normal_dir=d["val_image_dir"], method=method) for method in study.args.methods]


def severity_sets(study):
    """The val set synthesized at each fixed --severities level (EV) by each severity method:
    the points of the AP-against-darkness curves."""
    d = study.data
    sets = []
    for method, levels in d["severity"].items():
        for ev, folder in levels.items():
            sets.append(TestSet(severity_name(method, ev), folder, d["val_annotation"],
                                normal_dir=d["val_image_dir"], method=method, severity=ev))
            if os.path.isfile(os.path.join(folder, "raw", "annotations.json")):  # GenISP's levels
                sets.append(TestSet(severity_name(method, ev) + "_raw", os.path.join(folder, "raw"),
                                    None, kind="raw", method=method, severity=ev))
    return sets


def severity_name(method, ev):
    """Name of the set of `method` at `ev` stops, e.g. physics_ev4."""
    return f"{method}_ev{ev:g}"


def real_sets(study):
    """--real_test NAME=IMAGE_DIR,ANNOTATION[,NORMAL_IMAGE_DIR] sets, as they are."""
    return [TestSet(name, image_dir, annotation, normal_dir=normal_dir)
            for name, image_dir, annotation, normal_dir in map(parse_real_test, study.args.real_test)]


def raw_sets(study):
    """RAW val set for GenISP: --raw_val_dir, or the physics synthesis' RAW."""
    d = study.data
    return [TestSet("raw", d["raw_val_dir"], d["raw_val_annotation"], kind="raw")]


TEST_SETS = {"normal": normal_sets, "synthetic": synthetic_sets, "severity": severity_sets,
             "real": real_sets, "raw": raw_sets}
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def parse_real_test(spec):
    """(name, image dir, annotation, normal dir or None) of one --real_test value."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(",")
    if not sep or not NAME.match(name) or len(parts) not in (2, 3) or not all(parts):
        raise UserError(f"--real_test {spec}: expected NAME=IMAGE_DIR,ANNOTATION[,NORMAL_IMAGE_DIR] "
                        f"with NAME of letters, digits, '_', '.', '-'")
    for path, what in zip(parts, ("image directory", "annotation", "normal-light image directory")):
        if not (os.path.isfile(path) if what == "annotation" else os.path.isdir(path)):
            raise UserError(f"{path}: {what} of --real_test {name} not found")
    return name, parts[0], parts[1], parts[2] if len(parts) == 3 else None


def build_test_sets(study):
    """Every test set of the study, in registry order; names must be unique."""
    sets = [s for builder in TEST_SETS.values() for s in builder(study)]
    names = [s.name for s in sets]
    for name in names:
        if names.count(name) > 1:
            raise UserError(f"--real_test {name}: the study already has a test set of that name")
    return sets
