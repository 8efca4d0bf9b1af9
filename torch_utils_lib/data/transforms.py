"""Paired image + target transforms: every geometric change moves boxes and masks with the image.

Each transform is `(image, target) -> (image, target)` on a float CxHxW tensor (any number of
channels: a low-light/normal pair can be stacked and transformed once) and a torchvision detection
target or None. Randomness comes from torch's generator, so --seed governs it.
"""
import numpy as np
import torch
import torch.nn.functional as F

from torch_utils_lib.data.image_io import require_finite


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, target=None):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target


def to_tensor(image):
    """HxWxC (or HxW) array to a float CxHxW tensor: uint8 scaled to [0, 1], float kept as is."""
    array = image[:, :, None] if image.ndim == 2 else image
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return tensor.float().div_(255) if array.dtype == np.uint8 else tensor.float()


def to_uint8(tensor, value_range=(0.0, 1.0), what="the model's output"):
    """CxHxW tensor with values in `value_range` (clipped to it) to an HxWxC uint8 array.

    A UserError naming `what` if any value is NaN or inf: an image holding NaN is never written.
    """
    low, high = value_range
    values = tensor.detach().float()
    require_finite(values.cpu(), what)
    scaled = (values.clamp(low, high) - low) * (255.0 / (high - low))
    return scaled.round().byte().permute(1, 2, 0).cpu().numpy()


class ToTensor:
    """HxWxC array (uint8 scaled to [0, 1]; float kept as is) to a float CxHxW tensor."""

    def __call__(self, image, target=None):
        if isinstance(image, np.ndarray):
            image = to_tensor(image)
        return image, target


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image, target=None):
        if torch.rand(1).item() >= self.p:
            return image, target
        image = image.flip(-1)
        if target is not None:
            width = image.shape[-1]
            target = dict(target)
            if "boxes" in target:
                boxes = target["boxes"].clone()
                boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
                target["boxes"] = boxes
            if "masks" in target:
                target["masks"] = target["masks"].flip(-1)
        return image, target


class RandomQuarterTurn:
    """Rotate by 0, 90, 180 or 270 degrees at random; with a horizontal flip, all 8 symmetries
    of the square. Only for data that has no "up" (the sample's shapes, aerial or microscope
    images), never for COCO photographs."""

    def __call__(self, image, target=None):
        for _ in range(int(torch.randint(0, 4, (1,)))):
            image, target = quarter_turn(image, target)
        return image, target


def quarter_turn(image, target=None):
    """Rotate a CxHxW image and its target 90 degrees counter-clockwise (as torch.rot90)."""
    width = image.shape[-1]
    image = torch.rot90(image, 1, (-2, -1))
    if target is not None:
        target = dict(target)
        if "boxes" in target:
            x0, y0, x1, y1 = target["boxes"].unbind(-1)
            # pixel (row r, col c) moves to (row W-1-c, col r)
            target["boxes"] = torch.stack([y0, width - x1, y1, width - x0], -1)
        if "masks" in target:
            target["masks"] = torch.rot90(target["masks"], 1, (-2, -1))
    return image, target


def training_augmentation(name):
    """The paired train-time transform for an --augment choice (images from arrays to tensors)."""
    steps = [ToTensor()]
    if name in ("hflip", "dihedral"):
        steps.append(RandomHorizontalFlip(0.5))
    if name == "dihedral":
        steps.append(RandomQuarterTurn())
    return Compose(steps)


def resize_target(target, old_size, new_size):
    """Scale boxes, masks and areas of `target` from old (h, w) to new (h, w)."""
    if target is None:
        return None
    (oh, ow), (nh, nw) = old_size, new_size
    target = dict(target)
    sx, sy = nw / ow, nh / oh
    if "boxes" in target:
        target["boxes"] = target["boxes"] * torch.tensor([sx, sy, sx, sy])
    if "masks" in target and target["masks"].numel():
        target["masks"] = F.interpolate(target["masks"][:, None].float(), size=(nh, nw),
                                        mode="nearest")[:, 0].to(torch.uint8)
    elif "masks" in target:
        target["masks"] = target["masks"].new_zeros((0, nh, nw))
    if "area" in target:
        target["area"] = target["area"] * (sx * sy)
    return target


class Resize:
    """Scale so the shorter side is `min_size` and the longer at most `max_size`, keeping aspect."""

    def __init__(self, min_size, max_size=None):
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, image, target=None):
        h, w = image.shape[-2:]
        scale = self.min_size / min(h, w)
        if self.max_size is not None:
            scale = min(scale, self.max_size / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if size == (h, w):
            return image, target
        image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                              antialias=scale < 1)[0]
        return image, resize_target(target, (h, w), size)


class RandomCrop:
    """Crop a random `size` (int or (h, w)) window; images smaller than it are zero-padded first.

    Boxes are clipped to the window and dropped when nothing of them is left; masks are cropped
    and the boxes of masked objects are tightened to their visible mask.
    """

    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, image, target=None):
        ch, cw = self.size
        h, w = image.shape[-2:]
        if h < ch or w < cw:
            image = F.pad(image, (0, max(0, cw - w), 0, max(0, ch - h)))
            if target is not None and "masks" in target:
                target = dict(target)
                target["masks"] = F.pad(target["masks"], (0, max(0, cw - w), 0, max(0, ch - h)))
            h, w = image.shape[-2:]
        top = int(torch.randint(0, h - ch + 1, (1,)))
        left = int(torch.randint(0, w - cw + 1, (1,)))
        image = image[..., top:top + ch, left:left + cw]
        return image, crop_target(target, top, left, ch, cw)


def crop_target(target, top, left, height, width):
    """The part of `target` inside the window (top, left, height, width)."""
    if target is None:
        return None
    target = dict(target)
    boxes = target["boxes"] - torch.tensor([left, top, left, top], dtype=torch.float32)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    if "masks" in target:
        masks = target["masks"][:, top:top + height, left:left + width]
        present = masks.flatten(1).bool().any(1) if masks.numel() else torch.zeros(len(boxes), dtype=torch.bool)
        for i in torch.nonzero(present).flatten().tolist():
            ys, xs = torch.nonzero(masks[i], as_tuple=True)
            boxes[i] = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                    dtype=torch.float32)
        target["masks"] = masks
        keep = present & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    else:
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    target["boxes"] = boxes
    if "masks" in target and target["masks"].numel():
        target["area"] = target["masks"].flatten(1).sum(1).float()
    elif "area" in target:
        target["area"] = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for key in ("boxes", "labels", "masks", "area", "iscrowd"):
        if key in target:
            target[key] = target[key][keep]
    return target
