"""ExDark (Loh & Chan 2019) as COCO: per-image bbGt text files and imageclasslist.txt to one
instances json per split. Boxes only (ExDark has no masks), iscrowd 0. Torch-free.

ExDark's layout: images in one folder per class (`Bicycle/2015_00001.png`), annotations likewise
(`Bicycle/2015_00001.png.txt`): a `% bbGt version=3` header, then one object per line: class name,
left, top, width, height in pixels, then integer fields (occlusion, ignore, ...) not used here.
imageclasslist.txt: a header line (recognised by its content: a first line that is an entry is
kept), then `name class light indoor/outdoor split` per image, class 1..12 in CLASSES order,
light 1..10 in LIGHTING order, 1 indoor, 2 outdoor, split 1 train, 2 val, 3 test. Each COCO
image keeps its lighting type and scene by name (`images[].lighting`, `images[].scene`): the
study reports AP per value of such an image-level field (study/conditions.py).

The whole dataset is checked before anything is written, and every problem is collected
(`Report.problems`, each naming file and line and the fix), not only the first. Boxes as the
detector's loader treats them (coco_json.degenerate_box): NaN/inf, zero or negative size or wholly
outside the image are dropped, boxes partly outside are clipped to the image; both are counted.
An image listed twice in one split is kept once; one listed in two splits is a problem (a split
never shares an image with another). Text that is not UTF-8 is a problem naming the byte: ExDark's
files are ASCII. Image sizes are the stored pixels' (an EXIF orientation tag is ignored, as the
boxes refer to the stored pixels; see image_io.read_rgb).
"""
import os

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.coco_json import degenerate_box
from torch_utils_lib.data.image_io import read_rgb

CLASSES = ("Bicycle", "Boat", "Bottle", "Bus", "Car", "Cat", "Chair", "Cup", "Dog", "Motorbike",
           "People", "Table")
SPLITS = {1: "train", 2: "val", 3: "test"}
# ExDark's lighting types, numbered 1..10 in imageclasslist.txt (Loh & Chan 2019, Table 1)
LIGHTING = ("Low", "Ambient", "Object", "Single", "Weak", "Strong", "Screen", "Window", "Shadow",
            "Twilight")
SCENES = {1: "indoor", 2: "outdoor"}
CATEGORIES = [{"id": i, "name": name, "supercategory": "object"} for i, name in enumerate(CLASSES, 1)]


class Report:
    """What a conversion found: problems (nothing is written while there is one) and the boxes
    and lines it changed, each as `file:line: what`."""

    def __init__(self):
        self.problems, self.dropped, self.clipped, self.repeated = [], [], [], []

    def as_dict(self):
        return {"dropped_boxes": self.dropped, "clipped_boxes": self.clipped,
                "repeated_lines": self.repeated}


def read_text(path, what):
    """The lines of a text file (UTF-8, a BOM and CRLF endings accepted); UserError otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UserError(f"{path}: cannot read the {what} ({e.strerror})") from None
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: the {what} is not UTF-8 text (byte 0x{data[e.start]:02x}); "
                        f"ExDark's files are ASCII: re-save it as UTF-8") from None


def _find(folder, name, listings=None):
    """`folder/name`, matching the name case-insensitively (ExDark mixes .jpg, .JPG, .JPEG,
    .jpeg and .png).

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


def _parse_entry(line):
    fields = line.split()
    try:
        return fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[4])
    except (IndexError, ValueError):
        return None


def _problem(problems, message):
    """Collect `message` in `problems`, or raise it when there is no list to collect in."""
    if problems is None:
        raise UserError(message)
    problems.append(message)


def read_class_list(path, problems=None):
    """[(line number, image name, class name, lighting name, scene name, split name)] of
    imageclasslist.txt.

    Line problems are appended to `problems` (all of them); without a list the first raises.
    """
    entries, first = [], True
    for number, line in enumerate(read_text(path, "class list"), 1):
        if not line.strip():
            continue
        parsed = _parse_entry(line)
        if first and parsed is None:  # the header line ("Name Class Light In/Out Train/Val/Test")
            first = False
            continue
        first = False
        if parsed is None:
            _problem(problems, f"{path}:{number}: expected 'name class light in/out split' with "
                                   f"integers, got {line.strip()[:80]!r}: fix or delete the line")
            continue
        name, cls, light, scene, split = parsed
        if (not 1 <= cls <= len(CLASSES) or not 1 <= light <= len(LIGHTING)
                or scene not in SCENES or split not in SPLITS):
            _problem(problems, f"{path}:{number}: class must be 1-{len(CLASSES)}, light "
                               f"1-{len(LIGHTING)}, in/out 1-2 and split 1-3, got "
                               f"{line.strip()[:80]!r}: fix or delete the line")
            continue
        entries.append((number, name, CLASSES[cls - 1], LIGHTING[light - 1], SCENES[scene],
                        SPLITS[split]))
    return entries


def read_objects(path, problems=None):
    """[(line number, class name, [left, top, width, height])] of one bbGt annotation file.

    Line problems are appended to `problems`; without a list the first raises.
    """
    objects = []
    for number, line in enumerate(read_text(path, "annotation"), 1):
        if not line.strip() or line.startswith("%"):
            continue
        fields = line.split()
        try:
            box = [float(v) for v in fields[1:5]]
        except ValueError:
            box = []
        if len(box) != 4 or fields[0] not in CLASSES:
            _problem(problems,
                f"{path}:{number}: expected '<class> left top width height ...' with a class among "
                f"{', '.join(CLASSES)}, got {line.strip()[:80]!r}: fix or delete the line")
            continue
        objects.append((number, fields[0], box))
    return objects


def clip_box(box, width, height):
    """`box` [x, y, w, h] clipped to a width x height image; None where degenerate_box drops it
    (NaN/inf, zero or negative size, wholly outside)."""
    if degenerate_box(box, width, height):
        return None
    x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
    x1, y1 = min(box[0] + box[2], width), min(box[1] + box[3], height)
    return [x0, y0, x1 - x0, y1 - y0]


def convert(image_dir, annotation_dir, class_list, report=None):
    """{split: COCO dict} with file names relative to `image_dir` (`<Class>/<image>`).

    Everything is checked first; with problems, a UserError names the first and the count
    (`report.problems` lists them all; pass a Report to read it).
    """
    report = report if report is not None else Report()
    category_id = {c["name"]: c["id"] for c in CATEGORIES}
    sets = {split: {"images": [], "annotations": [], "categories": CATEGORIES}
            for split in SPLITS.values()}
    try:
        entries = read_class_list(class_list, report.problems)
    except UserError as e:  # the list itself unreadable: nothing else can be checked
        report.problems.append(str(e))
        entries = []
    listings, listed = {}, {}  # real image path -> (line, split) of its first entry
    for number, name, cls, lighting, scene, split in entries:
        where = f"{class_list}:{number}"
        image_path = _find(os.path.join(image_dir, cls), name, listings)
        if image_path is None:
            report.problems.append(f"{os.path.join(image_dir, cls, name)}: image listed at {where} "
                                   f"not found: add it or delete the line")
            continue
        key = os.path.realpath(image_path)
        if key in listed:
            first_line, first_split = listed[key]
            if first_split == split:
                report.repeated.append(f"{where}: {name} already listed at line {first_line}")
            else:
                report.problems.append(
                    f"{where}: {name} is listed in {split} but line {first_line} puts it in "
                    f"{first_split}; a split never shares an image with another: delete one line")
            continue
        listed[key] = (number, split)
        annotation_path = _find(os.path.join(annotation_dir, cls), name + ".txt", listings)
        if annotation_path is None:
            report.problems.append(f"{os.path.join(annotation_dir, cls, name + '.txt')}: annotation "
                                   f"of the image listed at {where} not found: add it or delete "
                                   f"the line")
            continue
        try:
            objects = read_objects(annotation_path, report.problems)
            height, width = read_rgb(image_path).shape[:2]
        except UserError as e:
            report.problems.append(f"{e}: fix the file or delete line {number} of {class_list}")
            continue
        coco = sets[split]
        image_id = len(coco["images"]) + 1
        coco["images"].append({"id": image_id, "width": width, "height": height,
                               "file_name": os.path.relpath(image_path, image_dir).replace(os.sep, "/"),
                               "lighting": lighting, "scene": scene})
        for line, object_class, box in objects:
            clipped = clip_box(box, width, height)
            if clipped is None:
                report.dropped.append(f"{annotation_path}:{line}: {box} in a {width}x{height} image")
                continue
            if clipped != box:
                report.clipped.append(f"{annotation_path}:{line}: {box} to {clipped}")
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id,
                                        "category_id": category_id[object_class], "bbox": clipped,
                                        "area": clipped[2] * clipped[3], "iscrowd": 0})
    if report.problems:
        more = len(report.problems) - 1
        raise UserError(report.problems[0] + (f" (and {more} more problem(s), listed above); "
                                              f"nothing written" if more else ""))
    return sets
