"""Paired low-light / normal-light images: which pairs to use, and the same crop and flip on both.

A pair list comes from `--annotation`: a `{"filename": [...]}` JSON, a COCO json (its
`images[].file_name`), or, when omitted, every image file name present in both folders.
"""
import os

import numpy as np
from torch.utils.data import Dataset

from torch_utils_lib.data import transforms as T
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import require_dir, require_file
from torch_utils_lib.data.image_io import annotation_file_names, list_images, read_rgb, read_size


def resolve_names(image_dirs, annotation=None):
    """File names to use: the annotation's (each must exist in every dir) or those common to all."""
    for directory in image_dirs:
        require_dir(directory, "image directory")
    if annotation:
        names = annotation_file_names(annotation)
        for directory in image_dirs:
            for name in names:
                require_file(os.path.join(directory, name), f"listed in {annotation} but")
        return names
    common = set(list_images(image_dirs[0]))
    for directory in image_dirs[1:]:
        common &= set(list_images(directory))
    if not common:
        raise UserError(f"{image_dirs[-1]}: no image file names in common with "
                        f"{', '.join(image_dirs[:-1])}" if len(image_dirs) > 1
                        else f"{image_dirs[0]}: no images found")
    return sorted(common)


MODEL_RANGE = (-1.0, 1.0)  # the diffusion model's pixel values


def to_model_range(rgb):
    """HxWx3 uint8 to a 3xHxW float tensor in [-1, 1]."""
    return T.to_tensor(rgb.astype(np.float32)).div_(127.5).sub_(1)


def read_pair(target_path, cond_path):
    """The normal-light and low-light images of a pair, which must have the same size."""
    target, cond = read_rgb(target_path), read_rgb(cond_path)
    if target.shape != cond.shape:
        raise UserError(f"{cond_path}: size {cond.shape[1]}x{cond.shape[0]} differs from "
                        f"{target_path} ({target.shape[1]}x{target.shape[0]})")
    return target, cond


def size_groups(input_dir, cond_dir, names):
    """One number per pair, the same for pairs of one size (from the files' headers); a pair
    whose two images differ in size is refused before the first step, naming both."""
    groups, ids = [], {}
    for name in names:
        target_path, cond_path = os.path.join(input_dir, name), os.path.join(cond_dir, name)
        size, cond_size = read_size(target_path), read_size(cond_path)
        if size != cond_size:
            raise UserError(f"{cond_path}: size {cond_size[1]}x{cond_size[0]} differs from "
                            f"{target_path} ({size[1]}x{size[0]})")
        groups.append(ids.setdefault(size, len(ids)))
    return groups


class PairedImageDataset(Dataset):
    """(x0, cond) pairs in [-1, 1]: normal light is x0, low light the condition.

    image_size: random square crop (the same window for both images; smaller images are padded);
    None keeps full images. flip: the same random horizontal flip for both. `with_index`: items
    are (x0, cond, index), so a stopped run can name the pairs of its batch.
    """

    def __init__(self, input_dir, cond_dir, names, image_size=None, flip=True, with_index=False):
        self.input_dir, self.cond_dir, self.names = input_dir, cond_dir, list(names)
        self.with_index = with_index
        steps = [T.ToTensor()]
        if image_size:
            steps.append(T.RandomCrop(image_size))
        if flip:
            steps.append(T.RandomHorizontalFlip(0.5))
        self.transform = T.Compose(steps)

    def __len__(self):
        return len(self.names)

    def __getitem__(self, index):
        name = self.names[index]
        target, cond = read_pair(os.path.join(self.input_dir, name), os.path.join(self.cond_dir, name))
        pair, _ = self.transform(np.concatenate((target, cond), axis=2))
        pair = pair * 2 - 1
        return (pair[:3], pair[3:], index) if self.with_index else (pair[:3], pair[3:])
