"""COCO annotation files: load and validate (once per process), normalize ids, subset, index.

No torch import: the synthesis and subset scripts use this module and must start fast. Every
problem with a file is a UserError `<file>: <problem>` naming the entry at fault.
"""
import math
import os

from torch_utils_lib.toolkit.atomic_io import read_json
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import require_file

_CACHE = {}  # (realpath, inode, size, mtime_ns) -> validated dict


def load_coco_json(path, finite_boxes=False):
    """The validated COCO dict of `path`; UserError naming the file and entry otherwise.

    The file is parsed and validated once per process (keyed by real path, inode, size and
    modification time); later calls return the same dict, which callers must not modify.
    finite_boxes: also refuse a bbox holding NaN or infinity (what is scored or written needs
    finite boxes; training drops such boxes and says how many).
    """
    require_file(path, "annotation file")
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    coco = _CACHE.get(key)
    if coco is None:
        coco = validate_coco(read_json(path, "annotation file"), path)
        _CACHE[key] = coco
    if finite_boxes:
        bad = nonfinite_boxes(coco)
        if bad:
            n = next(n for n, a in enumerate(coco["annotations"]) if a is bad[0])
            raise UserError(f"{path}: {_where(n, bad[0])} bbox {bad[0]['bbox']} is not finite "
                            f"({len(bad)} such box(es); only training can use the file, dropping them)")
    return coco


def _where(n, ann):
    return f"annotations[{n}] (id {ann.get('id')!r}):"


def _is_id(value):
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _list_of_dicts(coco, key, path):
    entries = coco[key]
    if not isinstance(entries, list):
        raise UserError(f"{path}: '{key}' must be a list of objects, not {type(entries).__name__}")
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UserError(f"{path}: {key}[{n}] is {str(entry)[:40]!r}, expected an object")
    return entries


def validate_coco(coco, path):
    """`coco` (parsed JSON) after checking everything the toolkit relies on; UserError otherwise.

    A missing 'annotations' list becomes an empty one. Category id 0 is valid.
    """
    if not isinstance(coco, dict) or "images" not in coco:
        raise UserError(f"{path}: not a COCO annotation file (no 'images' list)")
    if not coco.get("categories"):
        raise UserError(f"{path}: no 'categories' list")
    coco.setdefault("annotations", [])
    images = {}
    for n, image in enumerate(_list_of_dicts(coco, "images", path)):
        if "id" not in image or "file_name" not in image:
            raise UserError(f"{path}: every image needs 'id' and 'file_name' (got {str(image)[:80]})")
        if not _is_id(image["id"]):
            raise UserError(f"{path}: images[{n}] id {image['id']!r} is not an integer or string")
        if not isinstance(image["file_name"], str) or not image["file_name"]:
            raise UserError(f"{path}: images[{n}] file_name {image['file_name']!r} is not a file name")
        for side in ("width", "height"):
            value = image.get(side)
            if value is not None and not (_is_number(value) and math.isfinite(value) and value > 0
                                          and value == int(value)):
                raise UserError(f"{path}: images[{n}] {side} {value!r} is not a positive integer")
        if image["id"] in images:
            raise UserError(f"{path}: image id {image['id']!r} appears twice")
        images[image["id"]] = image
    categories = _list_of_dicts(coco, "categories", path)
    category_ids = set()
    for n, category in enumerate(categories):
        if not _is_id(category.get("id")):
            raise UserError(f"{path}: categories[{n}] id {category.get('id')!r} is not an integer "
                            f"or string")
        if category["id"] in category_ids:
            raise UserError(f"{path}: category id {category['id']!r} appears twice")
        category_ids.add(category["id"])
    if len({type(i) for i in category_ids}) > 1:
        raise UserError(f"{path}: category ids mix integers and strings")
    for n, ann in enumerate(_list_of_dicts(coco, "annotations", path)):
        _check_annotation(ann, n, images, category_ids, path)
    for n, category in enumerate(categories):
        if not isinstance(category.get("name"), str) or not category["name"]:
            raise UserError(f"{path}: categories[{n}] (id {category['id']!r}) has no 'name'")
    return coco


def _check_annotation(ann, n, images, category_ids, path):
    image_id, category_id = ann.get("image_id"), ann.get("category_id")
    if not _is_id(image_id) or image_id not in images:
        raise UserError(f"{path}: annotation {ann.get('id')!r} refers to unknown image {image_id!r}")
    if not _is_id(category_id) or category_id not in category_ids:
        raise UserError(f"{path}: annotation {ann.get('id')!r} has unknown category {category_id!r}")
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_number, bbox))):
        raise UserError(f"{path}: annotation {ann.get('id')!r} has no valid 'bbox' [x, y, w, h]")
    for key in ("area", "iscrowd"):
        if key in ann and not _is_number(ann[key]) and not isinstance(ann[key], bool):
            raise UserError(f"{path}: {_where(n, ann)} {key} {ann[key]!r} is not a number")
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list):
        for polygon in segmentation:
            _check_polygon(polygon, n, ann, path)
    elif isinstance(segmentation, dict):
        _check_rle(segmentation, n, ann, path)
    elif segmentation is not None:
        raise UserError(f"{path}: {_where(n, ann)} segmentation is neither polygons nor RLE")


def _check_polygon(polygon, n, ann, path):
    if not isinstance(polygon, list):
        raise UserError(f"{path}: {_where(n, ann)} a polygon is {str(polygon)[:40]!r}, expected a "
                        f"list [x1, y1, x2, y2, ...]")
    try:
        total = sum(polygon)  # a C loop: fails on any non-number, NaN/inf survive to the sum
        finite = math.isfinite(total)
    except (TypeError, OverflowError):
        finite = False
    if not finite:
        raise UserError(f"{path}: {_where(n, ann)} a polygon holds values that are not finite "
                        f"numbers")
    if len(polygon) % 2:
        raise UserError(f"{path}: {_where(n, ann)} a polygon has an odd number of coordinates "
                        f"({len(polygon)})")


def _check_rle(rle, n, ann, path):
    """Size and counts; whether the size is the image's is checked where masks are decoded."""
    size, counts = rle.get("size"), rle.get("counts")
    if not (isinstance(size, list) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise UserError(f"{path}: {_where(n, ann)} RLE size {size!r} is not [height, width]")
    if isinstance(counts, str):
        runs = rle_string_counts(counts)
        if runs is None:
            raise UserError(f"{path}: {_where(n, ann)} compressed RLE counts cannot be decoded")
    elif isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool)
                                          for c in counts):
        runs = counts
    else:
        raise UserError(f"{path}: {_where(n, ann)} RLE counts are neither a string nor a list "
                        f"of integers")
    if any(c < 0 for c in runs) or sum(runs) != size[0] * size[1]:
        raise UserError(f"{path}: {_where(n, ann)} RLE counts cover {sum(runs)} pixels, not "
                        f"{size[0]}x{size[1]} = {size[0] * size[1]}")


def rle_string_counts(text):
    """Run lengths of a compressed COCO RLE string (pycocotools' rleFrString), None if malformed."""
    counts, pos = [], 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                return None  # the string ends inside a number
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                return None
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def nonfinite_boxes(coco):
    """The annotations whose bbox holds NaN or infinity."""
    return [a for a in coco["annotations"] if not all(map(math.isfinite, a["bbox"]))]


def degenerate_box(bbox, width=None, height=None):
    """True for a bbox [x, y, w, h] that encloses nothing: not finite, zero or negative size, or
    (when the image size is given) wholly outside the image."""
    x, y, w, h = bbox
    if not all(map(math.isfinite, bbox)) or w <= 0 or h <= 0:
        return True
    if width and height:
        return min(x + w, width) <= max(x, 0) or min(y + h, height) <= max(y, 0)
    return False


def has_segmentation(ann):
    """True when `ann` has a mask: RLE, or at least one polygon of three or more points."""
    seg = ann.get("segmentation")
    return bool(seg) and (not isinstance(seg, list) or any(len(p) >= 6 for p in seg))


def normalize_coco(coco):
    """A copy of `coco` with integer image and annotation ids, plus the map back to the originals.

    Integer ids are kept as they are; otherwise images are numbered 1..N in file order. Missing
    'area' and 'iscrowd' get COCO's meaning (box area, not crowd). `coco` itself is not changed.
    """
    original_ids = [image["id"] for image in coco["images"]]
    keep = all(isinstance(i, int) for i in original_ids)
    to_int = {orig: (orig if keep else n) for n, orig in enumerate(original_ids, 1)}
    images = [{**image, "id": to_int[image["id"]]} for image in coco["images"]]
    annotations = []
    for n, ann in enumerate(coco["annotations"], 1):
        ann = {**ann, "id": n, "image_id": to_int[ann["image_id"]]}
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        annotations.append(ann)
    normalized = {**coco, "images": images, "annotations": annotations}
    return normalized, {v: k for k, v in to_int.items()}


def subset_coco(coco, image_ids, rename=None):
    """`coco` restricted to the images whose id is in `image_ids` and their annotations.

    Order is the file's. `rename(file_name)` gives each kept image a new file name. The entries
    of `coco` are not changed (renamed images are copies).
    """
    image_ids = set(image_ids)
    images = [image if rename is None else {**image, "file_name": rename(image["file_name"])}
              for image in coco["images"] if image["id"] in image_ids]
    annotations = [a for a in coco.get("annotations", []) if a["image_id"] in image_ids]
    return {**coco, "images": images, "annotations": annotations}


def index_coco(coco):
    """(image by id, list of annotations by image id; every image has a list, maybe empty)."""
    images = {image["id"]: image for image in coco["images"]}
    anns = {image_id: [] for image_id in images}
    for ann in coco["annotations"]:
        anns[ann["image_id"]].append(ann)
    return images, anns


def sorted_categories(coco):
    """The categories in id order (the order of contiguous labels 1..K)."""
    return sorted(coco["categories"], key=lambda c: c["id"])
