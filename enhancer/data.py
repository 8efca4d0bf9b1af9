"""Training data: dark images alone (zero-reference) or with their COCO boxes (detector objectives)."""
import os

import torch
import torch.nn.functional as F

from torch_utils_lib.data.categories import match_categories, present_categories
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import require_dir, require_file, safe_join
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.data.image_io import annotation_file_names, list_images, read_rgb, read_size
from torch_utils_lib.data.transforms import to_tensor


def image_names(image_dir, annotation=None):
    """The images to use: those the annotation lists (COCO or a name list) or all in the folder."""
    require_dir(image_dir, "image directory")
    if not annotation:
        names = list_images(image_dir)
        if not names:
            raise UserError(f"{image_dir}: no images found")
        return names
    names = annotation_file_names(annotation)
    for name in names:
        path = safe_join(image_dir, name, annotation)
        require_file(path, f"listed in {annotation} but")
    return names


class DarkImages(torch.utils.data.Dataset):
    """Images as CxHxW tensors in [0, 1]: a random square crop of `image_size` (images with a
    shorter side are first resized up to it), or whole images (0).

    Whole images may differ in size: `group_ids` numbers each image's size, and the loader
    batches images of one size together (a set of mixed sizes trains on every image, whole,
    with smaller batches where few share a size). An image with a side under `min_size` (the
    model's minimum, enhancer.sizes) is refused up front, naming it. `with_index`: items are
    (image, index), so a failing batch can name its files.
    """

    def __init__(self, image_dir, names, image_size=0, min_size=1, with_index=False):
        self.image_dir, self.names, self.image_size = image_dir, list(names), image_size
        self.with_index = with_index
        self.sizes, self.group_ids = None, None
        if not image_size:
            self.sizes = [read_size(os.path.join(image_dir, n)) for n in self.names]
            for name, (h, w) in zip(self.names, self.sizes):
                if min(h, w) < min_size:
                    raise UserError(f"{os.path.join(image_dir, name)}: {w}x{h}, smaller than the "
                                    f"{min_size}x{min_size} this model trains on; remove it or "
                                    f"pass --image_size {min_size} or more (small images are "
                                    f"then resized up)")
            ids = {}
            self.group_ids = [ids.setdefault(size, len(ids)) for size in self.sizes]

    def __len__(self):
        return len(self.names)

    def __getitem__(self, index):
        x = self._image(index)
        return (x, index) if self.with_index else x

    def _image(self, index):
        path = os.path.join(self.image_dir, self.names[index])
        x = to_tensor(read_rgb(path))
        if not self.image_size:
            if tuple(x.shape[-2:]) != tuple(self.sizes[index]):
                h, w = self.sizes[index]
                raise UserError(f"{path}: decodes to {x.shape[2]}x{x.shape[1]}, not the {w}x{h} "
                                f"its header says")
            return x
        side = self.image_size
        h, w = x.shape[-2:]
        if min(h, w) < side:
            scale = side / min(h, w)
            x = F.interpolate(x[None], size=(max(side, round(h * scale)), max(side, round(w * scale))),
                              mode="bilinear", align_corners=False)[0]
            h, w = x.shape[-2:]
        top = int(torch.randint(0, h - side + 1, ()))
        left = int(torch.randint(0, w - side + 1, ()))
        return x[:, top:top + side, left:left + side]


def detection_set(image_dir, annotation, detector_categories, category_map=None):
    """The annotation's images for training, labelled in the detector's label space by class
    name; masks when every annotation has one (then a Mask R-CNN learns from them too)."""
    probe = CocoDetection(image_dir, annotation, train=True, with_masks=False)
    label_map = match_categories(present_categories(probe.coco_dict), detector_categories,
                                 category_map, annotation)
    return CocoDetection(image_dir, annotation, train=True, label_map=label_map)
