"""Dataset classes to detector classes by NAME (with synonyms), never by category id alone.

Datasets number their classes as they like (LIS from 0, ExDark 1..12, RAW-NOD with COCO's ids), so
two sets' id 1 can be a chair and a person. A dataset class matches the detector class of the same
name (case-insensitive), else the detector class its built-in synonym names (VOC / ExDark spellings
of COCO's classes), else nothing; `--category_map FILE` (JSON {dataset name: detector name})
overrides and extends the synonyms. Torch-free.
"""
from torch_utils_lib.toolkit.atomic_io import read_json
from torch_utils_lib.toolkit.errors import UserError

# VOC, ExDark and LIS spellings of COCO class names (lower case); names equal to COCO's up to case
# (ExDark's Bicycle, Cup, Car...) need no entry.
SYNONYMS = {
    "aeroplane": "airplane", "motorbike": "motorcycle", "diningtable": "dining table",
    "table": "dining table", "tvmonitor": "tv", "tv monitor": "tv", "tv/monitor": "tv",
    "people": "person", "sofa": "couch", "pottedplant": "potted plant", "bike": "bicycle",
    "cellphone": "cell phone", "mobile phone": "cell phone", "glass": "wine glass", "hydrant": "fire hydrant", "ball": "sports ball",
}
BACKGROUND_NAMES = ("__background__", "N/A", "", None)  # torchvision's padding labels


def _key(name):
    return str(name).strip().lower()


def present_categories(coco_dict):
    """The categories that at least one annotation uses (RAW-NOD lists 80, uses 3; an ExDark split
    lists 12): only these need a detector class.

    A file with no annotations at all (images to detect on, a set of negatives) uses none, yet
    its detections are written with its category ids: then every category it lists is matched
    by name, so no detection is given an id by position.
    """
    used = {a["category_id"] for a in coco_dict["annotations"]}
    if not used:
        return list(coco_dict["categories"])
    return [c for c in coco_dict["categories"] if c["id"] in used]


def load_category_map(path):
    """The {dataset name: detector name} JSON of --category_map (None when no file is given)."""
    if not path:
        return None
    mapping = read_json(path, "category map")
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in mapping.items()):
        raise UserError(f"{path}: a category map is a JSON object of dataset class name -> "
                        f"detector class name strings")
    return mapping


def detector_name_for(name, detector_names, category_map=None):
    """The detector class name a dataset class `name` maps to, or None."""
    index = {_key(n): n for n in detector_names if n not in BACKGROUND_NAMES}
    user = {_key(k): v for k, v in (category_map or {}).items()}
    key = _key(name)
    if key in user:
        return index.get(_key(user[key]))
    if key in index:
        return index[key]
    return index.get(SYNONYMS.get(key, key))


def unnamed_labels(detector_names):
    """True for a detector whose labels carry no class names: 'class_<label>' for every label."""
    return len(detector_names) > 1 and all(name == f"class_{label}"
                                           for label, name in enumerate(detector_names) if label)


def match_categories(dataset_categories, detector_names, category_map=None, source="dataset"):
    """{dataset category id: detector label} by class name; one-line UserError for any class
    that maps to nothing (naming it and --category_map) or two classes mapping to one label.

    `detector_names[label]` is the class name of each detector label (0: background). An empty
    `dataset_categories` is refused: an empty map would score and write no class at all.
    """
    if not dataset_categories:
        raise UserError(f"{source}: lists no categories, so no detection can be given a category "
                        f"id; add the dataset's \"categories\" (id and name of each class)")
    if category_map is None and unnamed_labels(detector_names):
        # No names to match (a plain state dict): each dataset id is taken as the label it was
        # trained with, as the checkpoint's loader says once.
        outside = [c["name"] for c in dataset_categories if not 0 < c["id"] < len(detector_names)]
        if outside:
            raise UserError(f"{source}: the detector's classes have no names, and the ids of "
                            f"{', '.join(map(repr, outside))} are not among its labels "
                            f"1..{len(detector_names) - 1}; name them with --category_map FILE "
                            f"(JSON {{\"<class>\": \"class_<label>\"}})")
        return {c["id"]: c["id"] for c in dataset_categories}
    label_of = {n: label for label, n in enumerate(detector_names) if n not in BACKGROUND_NAMES}
    label_map, missing, taken = {}, [], {}
    for category in dataset_categories:
        target = detector_name_for(category["name"], detector_names, category_map)
        if target is None:
            missing.append(category["name"])
            continue
        label = label_of[target]
        if label in taken:
            raise UserError(f"{source}: classes {taken[label]!r} and {category['name']!r} both map "
                            f"to the detector's {target!r}; separate them with --category_map FILE")
        taken[label] = category["name"]
        label_map[category["id"]] = label
    if missing:
        example = ", ".join(f'"{n}": "<detector class>"' for n in missing[:2])
        raise UserError(f"{source}: class{'es' if len(missing) > 1 else ''} "
                        f"{', '.join(map(repr, missing))} match{'' if len(missing) > 1 else 'es'} "
                        f"none of the detector's {len(label_of)} classes; map them with "
                        f"--category_map FILE (JSON {{{example}}})")
    return label_map


def all_categories_match(dataset_categories, detector_names, category_map=None):
    """True when every dataset class maps onto a distinct detector class."""
    try:
        match_categories(dataset_categories, detector_names, category_map)
    except UserError:
        return False
    return True
