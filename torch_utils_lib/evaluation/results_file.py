"""A COCO results file (a JSON list of detections) checked against the annotation it scores on.

The study's outside rows (`--external_detections`) read another detector's results through
read_results: a file that is not a list, an entry without a finite box or score, or an image or
category id the annotation lacks is refused in one line naming the file and the entry. Torch-free.
"""
import math

from torch_utils_lib.toolkit.atomic_io import read_json
from torch_utils_lib.toolkit.errors import UserError


def _finite_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_results(path, results, coco):
    """`results` (a loaded COCO results list) if every entry scores on `coco` (an annotation
    dict): image_id among its images, category_id among its categories, a finite bbox
    [x, y, w, h] with w, h >= 0, a finite score; else a UserError `<path>: entry <n>: ...`."""
    if not isinstance(results, list):
        raise UserError(f"{path}: not a COCO results file (a JSON list of detections), got a "
                        f"{type(results).__name__}")
    image_ids = {image["id"] for image in coco["images"]}
    category_ids = {category["id"] for category in coco["categories"]}
    for n, entry in enumerate(results):
        where = f"{path}: entry {n}"
        if not isinstance(entry, dict):
            raise UserError(f"{where}: not a detection object")
        if entry.get("image_id") not in image_ids:
            raise UserError(f"{where}: image_id {entry.get('image_id')!r} is not an image of the "
                            f"annotation ({len(image_ids)} images): results must use its ids")
        if entry.get("category_id") not in category_ids:
            raise UserError(f"{where}: category_id {entry.get('category_id')!r} is not a category "
                            f"of the annotation ({sorted(category_ids)})")
        box = entry.get("bbox")
        if (not isinstance(box, list) or len(box) != 4 or not all(map(_finite_number, box))
                or box[2] < 0 or box[3] < 0):
            raise UserError(f"{where}: bbox must be 4 finite numbers [x, y, w, h] with w, h >= 0, "
                            f"got {box!r}")
        if not _finite_number(entry.get("score")):
            raise UserError(f"{where}: score must be a finite number, got {entry.get('score')!r}")
    return results


def read_results(path, coco):
    """The COCO results list in `path`, checked against the annotation dict `coco` (check_results)."""
    return check_results(path, read_json(path, "COCO results file"), coco)
