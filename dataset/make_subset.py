"""Build a COCO subset: N random images (seeded) or a list of ids, optionally of one exact size.

  python dataset/make_subset.py --annotation instances_val2017.json --image_dir val2017 \\
      --num_images 500 --size 640x480 --output_dir subsets/val500

Writes <output_dir>/annotations.json (the same categories, ids and file names, without folders
for the copies) and copies the chosen images into <output_dir>/images/ (skipped with --no_copy). Re-running with the same
arguments gives the same subset and skips images already copied. No torch import.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import re

import numpy as np

from torch_utils_lib.toolkit.cli import ArgumentParser, positive_int
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart, require_dir, safe_join
from torch_utils_lib.data.coco_json import load_coco_json, subset_coco
from torch_utils_lib.toolkit.paths import RUNS_DIR, sample_annotation, sample_images
from torch_utils_lib.toolkit.progress import progress
from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes, atomic_write_json
from torch_utils_lib.toolkit.runinfo import write_run_metadata


def parse_size(text):
    """'640x480' -> (640, 480) (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not match:
        raise UserError(f"--size {text}: expected WIDTHxHEIGHT such as 640x480")
    return int(match.group(1)), int(match.group(2))


def parse_ids(text):
    """Image ids from '1,5,9' or from '@file' (ids separated by commas or whitespace)."""
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise UserError(f"{path}: cannot read the id list ({e.strerror})") from None
    tokens = [t for t in re.split(r"[\s,]+", text) if t]
    try:
        return [int(t) for t in tokens]
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise UserError(f"--image_ids: {bad!r} is not an integer image id") from None


def select_images(dataset, num_images=None, image_ids=None, size=None, seed=0,
                  require_annotations=False):
    """The chosen image entries, sorted by id."""
    images = dataset["images"]
    if size is not None:
        images = [i for i in images if (i.get("width"), i.get("height")) == tuple(size)]
    if require_annotations:
        annotated = {a["image_id"] for a in dataset["annotations"]}
        images = [i for i in images if i["id"] in annotated]
    if image_ids is not None:
        by_id = {i["id"]: i for i in images}
        missing = [i for i in image_ids if i not in by_id]
        if missing:
            raise UserError(f"--image_ids: {len(missing)} id(s) not among the eligible images "
                            f"(first: {missing[0]})")
        chosen = [by_id[i] for i in dict.fromkeys(image_ids)]
    else:
        if num_images > len(images):
            raise UserError(f"--num_images {num_images}: only {len(images)} image(s) match")
        candidates = sorted(images, key=lambda i: i["id"])
        picks = np.random.default_rng(seed).choice(len(candidates), num_images, replace=False)
        chosen = [candidates[k] for k in picks]
    return sorted(chosen, key=lambda i: i["id"])


def copy_images(images, image_dir, target_dir, annotation=""):
    """Copy the files of `images` atomically, skipping those already there with the same size.

    File names are relative to `image_dir` (guards.safe_join); copies lie directly in
    `target_dir`, so two images may not share a base name.
    """
    sources = [safe_join(image_dir, i["file_name"], annotation) for i in images]
    missing = [s for s in sources if not os.path.isfile(s)]
    if missing:
        raise UserError(f"{missing[0]}: image listed in the annotation not found"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    first = {}
    for image in images:
        base = os.path.basename(image["file_name"])
        if first.setdefault(base, image["file_name"]) != image["file_name"]:
            raise UserError(f"{annotation}: {first[base]!r} and {image['file_name']!r} would both "
                            f"be copied as images/{base}: pass --no_copy or choose other images")
    copied = 0
    for source in progress(sources, desc="copy", unit="img"):
        target = os.path.join(target_dir, os.path.basename(source))
        if os.path.isfile(target) and os.path.getsize(target) == os.path.getsize(source):
            continue
        with open(source, "rb") as f:
            atomic_write_bytes(target, f.read())
        copied += 1
    return copied


def build_parser():
    p = ArgumentParser(
        example='python dataset/make_subset.py --annotation data/sample/annotations/instances_val.json --image_dir data/sample/val --num_images 8 --output_dir runs/subset8',
        description=__doc__.split("\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--annotation", default=sample_annotation("train"), help="full COCO annotation file")
    p.add_argument("--image_dir", default=sample_images("train"), help="images of the full set")
    p.add_argument("--output_dir", default=os.path.join(RUNS_DIR, "subset"))
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--num_images", type=positive_int, default=16, help="random images to take")
    choice.add_argument("--image_ids", default=None,
                        help="exact ids instead: '1,5,9' or @file with one id per line")
    p.add_argument("--size", default=None, help="keep only images of this size, e.g. 640x480")
    p.add_argument("--require_annotations", action="store_true",
                   help="keep only images with at least one annotation")
    p.add_argument("--seed", type=int, default=0, help="random seed of the selection")
    p.add_argument("--no_copy", action="store_true", help="write the annotation only")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    dataset = load_coco_json(args.annotation, finite_boxes=True)
    size = parse_size(args.size) if args.size else None
    ids = parse_ids(args.image_ids) if args.image_ids else None
    images = select_images(dataset, args.num_images, ids, size, args.seed, args.require_annotations)
    id_file = args.image_ids[1:] if args.image_ids and args.image_ids.startswith("@") else None
    copies = os.path.join(args.output_dir, "images")
    listed = [] if args.no_copy else [safe_join(args.image_dir, i["file_name"], args.annotation)
                                      for i in images]
    check_outputs_apart({"--annotation": args.annotation, "--image_ids": id_file,
                         "--image_dir": None if args.no_copy else args.image_dir,
                         "--image_dir (an --annotation entry)": listed},
                        {"--output_dir": args.output_dir,
                         "--output_dir (a copied image)": [os.path.join(copies, os.path.basename(p))
                                                           for p in listed]})
    if not args.no_copy:
        require_dir(args.image_dir, "image directory")
        copied = copy_images(images, args.image_dir, copies, args.annotation)
    # copies lie directly in images/, so their annotation names them without folders
    result = subset_coco(dataset, [i["id"] for i in images],
                         rename=None if args.no_copy else os.path.basename)
    atomic_write_json(os.path.join(args.output_dir, "annotations.json"), result)
    write_run_metadata(args.output_dir, args)
    print(f"{len(images)} images, {len(result.get('annotations', []))} annotations -> "
          f"{os.path.join(args.output_dir, 'annotations.json')}"
          + ("" if args.no_copy else f" ({copied} copied into images/)"))
    return 0


if __name__ == "__main__":
    run_main(main)
