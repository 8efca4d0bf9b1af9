"""COCO instance datasets: validated annotation loading, contiguous labels, exact masks.

Image ids may be strings (RAW-NOD): they are mapped to integers 1..N for torch and mapped back in
every output. Category ids map to contiguous labels 1..K (0 is the background), so a dataset whose
category ids start at 0 never collides with the background label.
"""
import contextlib
import io
import os

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from torch_utils_lib.cli import UserError, read_json
from torch_utils_lib.image_io import read_rgb


def load_coco_json(path):
    """Read a COCO annotation file and check what the toolkit relies on; UserError otherwise."""
    coco = read_json(path, "annotation file")
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise UserError(f"{path}: not a COCO annotation file (no 'images' list)")
    if not isinstance(coco.get("categories"), list) or not coco["categories"]:
        raise UserError(f"{path}: no 'categories' list")
    coco.setdefault("annotations", [])
    image_ids = set()
    for image in coco["images"]:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise UserError(f"{path}: every image needs 'id' and 'file_name' (got {str(image)[:80]})")
        if image["id"] in image_ids:
            raise UserError(f"{path}: image id {image['id']!r} appears twice")
        image_ids.add(image["id"])
    category_ids = {c.get("id") for c in coco["categories"]}
    for ann in coco["annotations"]:
        if ann.get("image_id") not in image_ids:
            raise UserError(f"{path}: annotation {ann.get('id')!r} refers to unknown image "
                            f"{ann.get('image_id')!r}")
        if ann.get("category_id") not in category_ids:
            raise UserError(f"{path}: annotation {ann.get('id')!r} has unknown category "
                            f"{ann.get('category_id')!r}")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise UserError(f"{path}: annotation {ann.get('id')!r} has no valid 'bbox' [x, y, w, h]")
    return coco


def normalize_coco(coco):
    """A copy of `coco` with integer image and annotation ids, plus the map back to the originals.

    Integer ids are kept as they are; otherwise images are numbered 1..N in file order. Missing
    'area' and 'iscrowd' get COCO's meaning (box area, not crowd).
    """
    original_ids = [image["id"] for image in coco["images"]]
    keep = all(isinstance(i, int) and not isinstance(i, bool) for i in original_ids)
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


def coco_api(coco_dict):
    """A pycocotools COCO index over an in-memory annotation dict (no file re-read)."""
    api = COCO()
    api.dataset = coco_dict
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        api.createIndex()
    return api


def segmentation_to_mask(segmentation, height, width):
    """Decode a COCO segmentation (polygons, uncompressed or compressed RLE) to an HxW uint8 mask."""
    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        counts = segmentation["counts"]
        rle = {"size": segmentation["size"],
               "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(rle)


def has_segmentation(ann):
    seg = ann.get("segmentation")
    return bool(seg) and (not isinstance(seg, list) or any(len(p) >= 6 for p in seg))


def safe_image_path(image_dir, file_name, annotation_file=""):
    """Join `file_name` to `image_dir`, refusing names that escape it (absolute or `../`)."""
    root = os.path.realpath(image_dir)
    path = os.path.realpath(os.path.join(root, file_name))
    if os.path.isabs(file_name) or os.path.commonpath([root, path]) != root:
        raise UserError(f"{annotation_file}: file_name {file_name!r} points outside {image_dir}")
    return path


class CocoDetection(torch.utils.data.Dataset):
    """Images of a COCO annotation file as `(image_tensor, target)` for torchvision detectors.

    target: boxes (xyxy float), labels (1..K), masks (NxHxW uint8, when `with_masks`), image_id,
    area, iscrowd. With `train=True`, crowd regions and degenerate boxes are dropped (the count of
    the latter is reported once). `loader(path)` returns an HxWxC array: read_rgb by default, a RAW
    pre-processor for GenISP. `label_map` maps category ids to labels (default: contiguous 1..K
    in category-id order).
    """

    def __init__(self, image_dir, annotation_file, transforms=None, train=False, with_masks=None,
                 loader=read_rgb, label_map=None):
        self.image_dir, self.annotation_file = image_dir, annotation_file
        self.transforms, self.train, self.loader = transforms, train, loader
        if not os.path.isdir(image_dir):
            raise UserError(f"{image_dir}: image directory not found")
        self.coco_dict, self.original_ids = normalize_coco(load_coco_json(annotation_file))
        self.coco = coco_api(self.coco_dict)
        self.categories = sorted(self.coco_dict["categories"], key=lambda c: c["id"])
        self.label_map = label_map or {c["id"]: i for i, c in enumerate(self.categories, 1)}
        self.category_of_label = {label: cat for cat, label in self.label_map.items()}
        if with_masks is None:
            with_masks = bool(self.coco_dict["annotations"]) and all(
                has_segmentation(a) for a in self.coco_dict["annotations"])
        self.with_masks = with_masks
        self.image_ids = [image["id"] for image in self.coco_dict["images"]]
        self.num_degenerate = sum(1 for a in self.coco_dict["annotations"]
                                  if a["bbox"][2] <= 0 or a["bbox"][3] <= 0)
        if train and self.num_degenerate:
            print(f"{annotation_file}: dropped {self.num_degenerate} degenerate boxes "
                  f"(zero width or height) from training")

    @property
    def num_classes(self):
        """Number of model classes including the background."""
        return max(self.label_map.values()) + 1

    def original_id(self, image_id):
        """The image id as written in the annotation file (a string for RAW-NOD)."""
        return self.original_ids[int(image_id)]

    def __len__(self):
        return len(self.image_ids)

    def image_path(self, index):
        info = self.coco.imgs[self.image_ids[index]]
        return safe_image_path(self.image_dir, info["file_name"], self.annotation_file)

    def __getitem__(self, index):
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        path = self.image_path(index)
        if not os.path.isfile(path):
            raise UserError(f"{path}: image listed in {self.annotation_file} not found")
        image = self.loader(path)
        height, width = image.shape[:2]
        if (info.get("height"), info.get("width")) not in ((None, None), (height, width)):
            raise UserError(f"{path}: image is {width}x{height} but {self.annotation_file} "
                            f"says {info['width']}x{info['height']}")
        target = self.build_target(image_id, height, width)
        if self.transforms is not None:
            return self.transforms(image, target)
        from torch_utils_lib.transforms import ToTensor
        return ToTensor()(image, target)

    def build_target(self, image_id, height, width):
        """The torchvision detection target of one image."""
        anns = self.coco.imgToAnns.get(image_id, [])
        if self.train:
            anns = [a for a in anns if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not self.train:
            keep[:] = True
        anns = [a for a, k in zip(anns, keep) if k]
        target = {
            "boxes": torch.from_numpy(boxes[keep]),
            "labels": torch.tensor([self.label_map[a["category_id"]] for a in anns], dtype=torch.int64),
            "image_id": int(image_id),
            "area": torch.tensor([float(a["area"]) for a in anns], dtype=torch.float32),
            "iscrowd": torch.tensor([int(a.get("iscrowd", 0)) for a in anns], dtype=torch.int64),
        }
        if self.with_masks:
            masks = [segmentation_to_mask(a["segmentation"], height, width) for a in anns]
            target["masks"] = torch.from_numpy(
                np.stack(masks) if masks else np.zeros((0, height, width), np.uint8))
        return target


def collate_fn(batch):
    """Keep images and targets as tuples: detection images differ in size."""
    return tuple(zip(*batch))
