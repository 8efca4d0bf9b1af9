"""The columns of the study: test sets, built by a registry of builders from the study's data.

Each builder returns TestSets; the report's columns follow the registry's order. A test set says
once what it is for (`role`): a column of the main table, or a point (`level`) of the
AP-against-darkness curves. A new kind of test set is one more builder in TEST_SETS.
"""
import os
from dataclasses import asdict, dataclass

from torch_utils_lib.toolkit.guards import require_dir, require_file
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.names import check_name, name_key, printable

COLUMN, LEVEL = "column", "level"
RGB, RAW = "rgb", "raw"


@dataclass(frozen=True)
class TestSet:
    """One test set: images, their annotation, and what they are."""
    name: str
    image_dir: str
    annotation: str | None  # None for a RAW folder with its own annotations.json
    kind: str = RGB  # RGB: images a detector reads; RAW: camera RAW
    low_light: bool = True
    normal_dir: str | None = None  # paired normal-light images: upper reference, PSNR/SSIM
    method: str | None = None  # the synthesis that made it (None: real images)
    role: str = COLUMN  # COLUMN: a column of the main table; LEVEL: a point of a darkness curve
    severity: float | None = None  # the darkness level in EV of a LEVEL set

    def __post_init__(self):
        if (self.role == LEVEL) != (self.severity is not None):
            raise ValueError(f"test set {self.name}: a {LEVEL} set has a severity, a {COLUMN} none")

    @property
    def annotation_file(self):
        """The annotation given, or a RAW folder's own annotations.json (the RAW scripts' default)."""
        return self.annotation or os.path.join(self.image_dir, "annotations.json")

    def as_dict(self):
        return asdict(self)


def normal_sets(study):
    """The normal-light val set: every detector remedy is scored there too."""
    data = study.data
    return [TestSet("normal", data.val_image_dir, data.val_annotation, low_light=False)]


def synthetic_sets(study):
    """Each --methods synthesis of the val set, paired with the normal-light val images."""
    data = study.data
    return [TestSet(method, data.low_light[method]["val"], data.val_annotation, normal_dir=data.val_image_dir,
                    method=method) for method in study.args.methods]


def level_sets(study):
    """The val set synthesized at each fixed --severities level (EV) by each severity method:
    the points of the AP-against-darkness curves (their RAW too where a remedy reads RAW)."""
    data = study.data
    sets = []
    for method, levels in data.levels.items():
        for ev, folder in levels.items():
            sets.append(TestSet(level_name(method, ev), folder, data.val_annotation,
                                normal_dir=data.val_image_dir, method=method, role=LEVEL, severity=ev))
            if method in data.raw_level_methods:
                sets.append(TestSet(level_name(method, ev) + "_raw", os.path.join(folder, "raw"),
                                    None, kind=RAW, method=method, role=LEVEL, severity=ev))
    return sets


def level_name(method, ev):
    """Name (and folder) of the set of `method` at `ev` stops, e.g. physics_ev4."""
    return f"{method}_ev{ev:g}"


def real_sets(study):
    """--real_test NAME=IMAGE_DIR,ANNOTATION[,NORMAL_IMAGE_DIR] sets, as they are."""
    return [TestSet(name, image_dir, annotation, normal_dir=normal_dir)
            for name, image_dir, annotation, normal_dir in map(parse_real_test, study.args.real_test)]


def raw_sets(study):
    """RAW val set (--raw_val_dir, or the physics synthesis' RAW), where a remedy reads RAW."""
    data = study.data
    return [TestSet("raw", data.raw_val_dir, data.raw_val_annotation, kind=RAW)] if data.raw_val_dir else []


TEST_SETS = {"normal": normal_sets, "synthetic": synthetic_sets, "severity": level_sets,
             "real": real_sets, "raw": raw_sets}

# Darkness levels: a level of EV stops is an exposure 2**EV times darker (resolve_levels checks
# --severities against each severity method's range, dataset.synthesis.check_level); a level's
# folder is named by its value in 6 significant digits.
SAMPLE_LEVELS, USER_LEVELS = [2.0, 5.0, 8.0], [2.0, 4.0, 6.0, 8.0]


def resolve_levels(args, sample):
    """(severities, severity methods): --severities and --severity_methods or their defaults
    (each level costs a synthesis, restorations and evaluations: the bundled sample set gets
    fewer, to keep the demo within 20 minutes), checked against each method's level range."""
    severities = args.severities
    if severities is None:
        severities = SAMPLE_LEVELS if sample else USER_LEVELS
    methods = args.severity_methods
    if methods is None:
        methods = ["physics"] if sample else list(args.methods)
    levels = sorted(set(severities))
    if levels and levels[0] == 0:
        raise UserError("--severities 0: normal light is every curve's first point already (P)")
    names = {}
    for ev in levels:
        other = names.setdefault(f"{ev:g}", ev)
        if other != ev:
            raise UserError(f"--severities {other!r} {ev!r}: both levels are named {ev:g}; give "
                            f"levels that differ in their first 6 significant digits")
    from dataset.synthesis import check_level  # OpenCV and numpy: not needed by --help
    for method in methods:  # each method's own range (past it only noise is left)
        for ev in levels:
            check_level(method, ev, "--severities")
    return tuple(levels), tuple(methods)


def parse_real_test(spec):
    """(name, image dir, annotation, normal dir or None) of one --real_test value; NAME is a safe
    folder name (names.check_name): it names the set's folders and its table column."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(",")
    if not sep or len(parts) not in (2, 3) or not all(parts):
        raise UserError(f"--real_test {printable(spec)}: expected "
                        f"NAME=IMAGE_DIR,ANNOTATION[,NORMAL_IMAGE_DIR]")
    check_name(name, f"--real_test {spec}")
    for path, what in zip(parts, ("image directory", "annotation", "normal-light image directory")):
        require = require_file if what == "annotation" else require_dir
        require(path, f"{what} of --real_test {name}")
    return name, parts[0], parts[1], parts[2] if len(parts) == 3 else None


def build_test_sets(study):
    """Every test set of the study, in registry order; names must be unique."""
    sets = [s for builder in TEST_SETS.values() for s in builder(study)]
    names = [s.name for s in sets]
    keys = [name_key(n) for n in names]  # case-folded: one folder on macOS and Windows
    for name in names:
        if keys.count(name_key(name)) > 1:
            raise UserError(f"--real_test {name}: the study already has a test set of that name "
                            f"(its sets: {', '.join(dict.fromkeys(names))}); choose another NAME")
    return sets
