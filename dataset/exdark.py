"""ExDark (Loh & Chan 2019) as COCO: per-image bbGt text files and imageclasslist.txt to one
instances json per split. Boxes only (ExDark has no masks), iscrowd 0. Torch-free.

ExDark's layout: images in one folder per class (`Bicycle/2015_00001.png`), annotations likewise
(`Bicycle/2015_00001.png.txt`): a `% bbGt version=3` header, then one object per line: class name,
left, top, width, height in pixels, then integer fields (occlusion, ignore, ...) not used here.
imageclasslist.txt: a header line, then `name class light indoor/outdoor split` per image, class
1..12 in CLASSES order, split 1 train, 2 val, 3 test.
"""
import os

from torch_utils_lib.cli import UserError
from torch_utils_lib.image_io import read_rgb

CLASSES = ("Bicycle", "Boat", "Bottle", "Bus", "Car", "Cat", "Chair", "Cup", "Dog", "Motorbike",
           "People", "Table")
SPLITS = {1: "train", 2: "val", 3: "test"}
CATEGORIES = [{"id": i, "name": name, "supercategory": "object"} for i, name in enumerate(CLASSES, 1)]


def _find(folder, name, listings=None):
    """`folder/name`, matching the name case-insensitively (ExDark mixes .jpg and .JPG).

    `listings` ({folder: {lower-case name: name}}) keeps each folder's listing once, so a
    converter looking up every file of a folder lists it once, not once per file.
    """
    path = os.path.join(folder, name)
    if os.path.isfile(path):
        return path
    if not os.path.isdir(folder):
        return None
    listings = {} if listings is None else listings
    if folder not in listings:
        listings[folder] = {entry.lower(): entry for entry in sorted(os.listdir(folder))}
    entry = listings[folder].get(name.lower())
    return os.path.join(folder, entry) if entry is not None else None


def read_class_list(path):
    """[(image name, class name, split name)] from imageclasslist.txt; one-line errors per line."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UserError(f"{path}: cannot read the class list ({e.strerror})") from None
    entries = []
    for number, line in enumerate(lines[1:], 2):  # line 1 is the header
        if not line.strip():
            continue
        fields = line.split()
        try:
            name, cls, split = fields[0], int(fields[1]), int(fields[4])
        except (IndexError, ValueError):
            raise UserError(f"{path}:{number}: expected 'name class light in/out split' with "
                            f"integers, got {line.strip()[:80]!r}") from None
        if not 1 <= cls <= len(CLASSES) or split not in SPLITS:
            raise UserError(f"{path}:{number}: class must be 1-{len(CLASSES)} and split 1-3, "
                            f"got {line.strip()[:80]!r}")
        entries.append((name, CLASSES[cls - 1], SPLITS[split]))
    return entries


def read_objects(path):
    """[(class name, [left, top, width, height])] of one bbGt annotation file."""
    with open(path) as f:
        lines = f.read().splitlines()
    objects = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("%"):
            continue
        fields = line.split()
        try:
            box = [float(v) for v in fields[1:5]]
        except ValueError:
            box = []
        if len(box) != 4 or fields[0] not in CLASSES:
            raise UserError(f"{path}:{number}: expected '<class> left top width height ...' with a "
                            f"class among {', '.join(CLASSES)}, got {line.strip()[:80]!r}")
        objects.append((fields[0], box))
    return objects


def convert(image_dir, annotation_dir, class_list):
    """{split: COCO dict} with file names relative to `image_dir` (`<Class>/<image>`)."""
    category_id = {c["name"]: c["id"] for c in CATEGORIES}
    sets = {split: {"images": [], "annotations": [], "categories": CATEGORIES}
            for split in SPLITS.values()}
    listings = {}
    for name, cls, split in read_class_list(class_list):
        image_path = _find(os.path.join(image_dir, cls), name, listings)
        if image_path is None:
            raise UserError(f"{os.path.join(image_dir, cls, name)}: image listed in {class_list} "
                            f"not found")
        annotation_path = _find(os.path.join(annotation_dir, cls), name + ".txt", listings)
        if annotation_path is None:
            raise UserError(f"{os.path.join(annotation_dir, cls, name + '.txt')}: annotation of an "
                            f"image listed in {class_list} not found")
        height, width = read_rgb(image_path).shape[:2]
        coco = sets[split]
        image_id = len(coco["images"]) + 1
        coco["images"].append({"id": image_id, "width": width, "height": height,
                               "file_name": os.path.relpath(image_path, image_dir).replace(os.sep, "/")})
        for object_class, box in read_objects(annotation_path):
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id,
                                        "category_id": category_id[object_class], "bbox": box,
                                        "area": box[2] * box[3], "iscrowd": 0})
    return sets
