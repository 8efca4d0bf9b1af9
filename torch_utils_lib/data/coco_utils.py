"""COCO instance datasets: validated annotation loading, contiguous labels, exact masks.

Image ids may be strings (RAW-NOD): they are mapped to integers 1..N for torch and mapped back in
every output. Category ids map to contiguous labels 1..K (0 is the background), so a dataset whose
category ids start at 0 never collides with the background label.
"""

import numpy as np
import torch
from pycocotools import mask as mask_utils

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import require_dir, require_file, safe_join
from torch_utils_lib.data.coco_json import (degenerate_box, has_segmentation, index_coco, load_coco_json,
                                       normalize_coco, sorted_categories)
from torch_utils_lib.data.image_io import read_rgb


def segmentation_to_mask(segmentation, height, width):
    """Decode a COCO segmentation (polygons, uncompressed or compressed RLE) to an HxW uint8 mask;
    empty where there is none."""
    if not segmentation:
        return np.zeros((height, width), np.uint8)
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if len(p) >= 6]  # shorter ones enclose nothing
        if not polygons:
            return np.zeros((height, width), np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        counts = segmentation["counts"]
        rle = {"size": segmentation["size"],
               "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(rle)


class CocoDetection(torch.utils.data.Dataset):
    """Images of a COCO annotation file as `(image_tensor, target)` for torchvision detectors.

    target: boxes (xyxy float), labels (1..K), masks (NxHxW uint8, when `with_masks`), image_id,
    area, iscrowd. With `train=True`, crowd regions and degenerate boxes (zero or negative size,
    NaN/inf, outside the image) are dropped, their count said once; a file left with nothing to
    train on is refused. Outside training a NaN/inf box is refused (it cannot be scored).
    with_masks: None decodes masks when every annotation used has one (box-only and mixed sets
    are scored for bbox only); True in training requires a mask on every annotation trained on
    (Mask R-CNN). `loader(path)` returns an HxWxC array: read_rgb by default, a RAW pre-processor
    for GenISP. `label_map` maps category ids to labels (default: contiguous 1..K in category-id
    order).
    """

    def __init__(self, image_dir, annotation_file, transforms=None, train=False, with_masks=None,
                 loader=read_rgb, label_map=None):
        self.image_dir, self.annotation_file = image_dir, annotation_file
        self.transforms, self.train, self.loader = transforms, train, loader
        require_dir(image_dir, "image directory")
        self.coco_dict, self.original_ids = normalize_coco(
            load_coco_json(annotation_file, finite_boxes=not train))
        self.images_by_id, self.anns_by_image = index_coco(self.coco_dict)
        self.categories = sorted_categories(self.coco_dict)
        self.label_map = (label_map if label_map is not None
                          else {c["id"]: i for i, c in enumerate(self.categories, 1)})
        self.category_of_label = {label: cat for cat, label in self.label_map.items()}
        self.image_ids = [image["id"] for image in self.coco_dict["images"]]
        self.num_degenerate = 0
        used = self._trainable() if train else self.coco_dict["annotations"]
        self.with_masks = self._check_masks(used, with_masks)

    def _trainable(self):
        """The annotations training uses: no crowd regions, no degenerate boxes (their count is
        said once); a file left with nothing to train on is refused."""
        used, self.num_degenerate = [], 0
        for a in self.coco_dict["annotations"]:
            image = self.images_by_id[a["image_id"]]
            if a["iscrowd"]:
                continue
            if degenerate_box(a["bbox"], image.get("width"), image.get("height")):
                self.num_degenerate += 1
            else:
                used.append(a)
        if not used:
            total = len(self.coco_dict["annotations"])
            raise UserError(f"{self.annotation_file}: nothing to train on: " + (
                "no annotations" if not total else
                f"all {total} annotations are crowd regions or degenerate boxes "
                f"({self.num_degenerate} degenerate: zero or negative size, NaN/inf, or outside "
                f"the image)"))
        if self.num_degenerate:
            _say_once(f"{self.annotation_file}: dropped {self.num_degenerate} degenerate boxes "
                      f"(zero or negative size, NaN/inf, or outside the image) from training")
        return used

    def _check_masks(self, used, with_masks):
        without = sum(1 for a in used if not has_segmentation(a))
        if with_masks is None:
            return bool(used) and not without
        if with_masks and without and self.train:
            raise UserError(f"{self.annotation_file}: {without} of the {len(used)} annotations "
                            f"trained on have no mask (no 'segmentation', or only empty or "
                            f"too-short polygons) and Mask R-CNN trains on masks: train a box "
                            f"detector instead (--model fasterrcnn_resnet50_fpn)")
        return with_masks

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
        info = self.images_by_id[self.image_ids[index]]
        return safe_join(self.image_dir, info["file_name"], self.annotation_file)

    def __getitem__(self, index):
        image_id = self.image_ids[index]
        info = self.images_by_id[image_id]
        path = self.image_path(index)
        require_file(path, f"image listed in {self.annotation_file}")
        image = self.loader(path)
        height, width = image.shape[:2]
        if (info.get("height"), info.get("width")) not in ((None, None), (height, width)):
            raise UserError(f"{path}: image is {width}x{height} but {self.annotation_file} "
                            f"says {info['width']}x{info['height']}")
        target = self.build_target(image_id, height, width)
        if self.transforms is not None:
            return self.transforms(image, target)
        # transforms imports this module
        from torch_utils_lib.data.transforms import ToTensor
        return ToTensor()(image, target)

    def build_target(self, image_id, height, width):
        """The torchvision detection target of one image."""
        anns = self.anns_by_image[image_id]
        if self.train:
            anns = [a for a in anns if not a["iscrowd"]]
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        finite = np.isfinite(boxes).all(axis=1)  # clipping would turn inf into the image border
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        keep = finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
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
            for a in anns:
                size = a["segmentation"].get("size") if isinstance(a["segmentation"], dict) else None
                if size is not None and list(size) != [height, width]:
                    raise UserError(f"{self.annotation_file}: the RLE size {size} of an annotation "
                                    f"of {self.images_by_id[image_id]['file_name']} differs from "
                                    f"the image's [height, width] [{height}, {width}]")
            masks = [segmentation_to_mask(a["segmentation"], height, width) for a in anns]
            target["masks"] = torch.from_numpy(
                np.stack(masks) if masks else np.zeros((0, height, width), np.uint8))
        return target


_SAID = set()


def _say_once(message):
    """Print `message` the first time this process sees it (datasets are built more than once)."""
    if message not in _SAID:
        _SAID.add(message)
        print(message)


def collate_fn(batch):
    """Keep images and targets as tuples: detection images differ in size."""
    return tuple(zip(*batch))
