"""Outside rows: what another lab brings, scored like any other row, with the paired differences.

`--external_images NAME:SET=DIR`: another method's enhanced copies of test set SET's images (the
same file names); the normal-light detector scores them, as it scores an enhancement's images.
`--external_detections NAME:SET=FILE`: a COCO results file on SET's images (SET's annotation's
image and category ids); its AP is computed from the file. One NAME is one row; repeat the flag
with other SETs to fill its other columns. Each row is a Remedy (study/remedies.py) made from the
flags when the study is planned: names, sets, folders, files and image lists are checked before
the first step.
"""
import os
from collections import defaultdict

from study.remedies import REMEDIES, Remedy
from study.sets import COLUMN, RGB
from torch_utils_lib.data.image_io import annotation_file_names
from torch_utils_lib.evaluation.coco_eval import coco_stats
from torch_utils_lib.evaluation.metrics import BOX_TYPES
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_dir, safe_join
from torch_utils_lib.toolkit.names import check_name, name_key, printable
from torch_utils_lib.toolkit.paths import sample_annotation

FLAGS = {"images": "--external_images", "detections": "--external_detections"}


def parse_outside(args):
    """{row name: (kind, {set name: absolute path})} of --external_images and
    --external_detections, from the arguments alone: `NAME:SET=PATH` each, a name not a
    built-in row's nor the other flag's, one path per (NAME, SET)."""
    rows, kinds = {}, {}
    for kind, flag in FLAGS.items():
        for spec in getattr(args, f"external_{kind}"):
            target, sep, path = spec.partition("=")
            name, colon, set_name = target.partition(":")
            if not sep or not colon or not path or not set_name:
                raise UserError(f"{flag} {printable(spec)}: expected NAME:SET=PATH")
            check_name(name, f"{flag} {spec}")
            key = name_key(name)
            if key in {name_key(r) for r in REMEDIES}:
                raise UserError(f"{flag} {printable(spec)}: {name!r} is a built-in row; give "
                                f"the outside row its own NAME")
            if kinds.setdefault(key, kind) != kind:
                raise UserError(f"{flag} {printable(spec)}: the name {name!r} is already an "
                                f"{FLAGS[kinds[key]]} row; give each its own NAME")
            paths = rows.setdefault(key, (name, kind, {}))[2]
            if set_name in paths:
                raise UserError(f"{flag} {printable(spec)}: {name}:{set_name} is given twice")
            paths[set_name] = os.path.abspath(path)
    return {name: (kind, paths) for name, kind, paths in rows.values()}


def annotation_now(study, test_set):
    """The set's annotation file as it can be read at planning: the bundled sample's where the
    study rebuilds the sample set (a step, byte-identical to it) and has not yet."""
    if os.path.isfile(test_set.annotation) or not study.data.sample:
        return test_set.annotation
    return sample_annotation("val")


def check_images(flag, spec, folder, annotation, test_set):
    require_dir(folder, f"{flag} {spec} folder")
    for name in annotation_file_names(annotation):
        path = safe_join(folder, name, annotation)
        if not os.path.isfile(path):
            raise UserError(f"{path}: missing from {flag} {spec} (it must hold every image of "
                            f"test set {test_set.name} under the same file name)")


def read_outside_detections(path, annotation):
    """(gt, bbox results) of a results file on `annotation`, every entry checked in one line
    (scoring.load_results, as study/score.py reads results files)."""
    from torch_utils_lib.evaluation.scoring import load_results  # pycocotools: not for --help
    gt, results, _ = load_results(annotation, {path: path}, BOX_TYPES)
    return gt, results[path]["bbox"]


def detections_cell(path, annotation):
    """A scored cell of a results file on `annotation` (bbox stats, the file as its detections)."""
    gt, results = read_outside_detections(path, annotation)
    return {"bbox": coco_stats(gt, results, "bbox"), "per_category": None,
            "detections": {"bbox": path}}


def outside_remedies(study):
    """The Remedy of each outside row, every input checked (and kept apart from --output_dir)."""
    sets = {t.name: t for t in study.test_sets if t.kind == RGB and t.role == COLUMN}
    remedies, reads = [], defaultdict(list)
    for name, (kind, paths) in parse_outside(study.args).items():
        flag = FLAGS[kind]
        for set_name, path in paths.items():
            spec = f"{name}:{set_name}={path}"
            if set_name not in sets:
                raise UserError(f"{flag} {printable(spec)}: the study has no test set "
                                f"{set_name!r} (its sets: {', '.join(sets)})")
            annotation = annotation_now(study, sets[set_name])
            if kind == "images":
                check_images(flag, spec, path, annotation, sets[set_name])
            else:
                read_outside_detections(path, annotation)
            reads[flag].append(path)
        remedies.append(outside_remedy(name, kind, paths))
    check_outputs_apart(dict(reads), {"--output_dir": study.out})
    return remedies


def outside_remedy(name, kind, paths):
    where = ", ".join(f"{s}: {p}" for s, p in paths.items())
    if kind == "images":
        return Remedy(name, "outside images, scored by the normal-light detector",
                      images=lambda study, test_set: paths[test_set.name],
                      sets=frozenset(paths), settings=lambda study: where, family="outside")
    return Remedy(name, "outside detections (a COCO results file)",
                  detections=lambda study, test_set: detections_cell(paths[test_set.name],
                                                                     test_set.annotation),
                  sets=frozenset(paths), settings=lambda study: where, family="outside")
