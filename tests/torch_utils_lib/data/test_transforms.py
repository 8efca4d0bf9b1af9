"""Paired transforms keep boxes, masks and image consistent."""
import torch

from torch_utils_lib.data import transforms as T
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images


def tight_boxes(masks):
    boxes = []
    for m in masks:
        ys, xs = torch.nonzero(m, as_tuple=True)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)


def sample_item(index=0):
    return CocoDetection(sample_images("train"), sample_annotation("train"))[index]


def test_flip_moves_boxes_with_masks_and_twice_is_identity():
    image, target = sample_item(1)
    flip = T.RandomHorizontalFlip(p=1.0)
    flipped, ft = flip(image, target)
    assert torch.equal(flipped, image.flip(-1))
    assert torch.allclose(ft["boxes"], tight_boxes(ft["masks"]))
    back, bt = flip(flipped, ft)
    assert torch.equal(back, image) and torch.equal(bt["boxes"], target["boxes"])


def test_quarter_turn_moves_boxes_with_masks_and_four_turns_are_identity():
    image = torch.rand(3, 20, 30)
    masks = torch.zeros(2, 20, 30, dtype=torch.uint8)
    masks[0, 2:7, 3:12] = 1
    masks[1, 10:19, 25:30] = 1
    target = {"boxes": tight_boxes(masks), "masks": masks, "labels": torch.tensor([1, 2])}
    turned, tt = T.quarter_turn(image, target)
    assert turned.shape == (3, 30, 20) and torch.equal(turned[:, 0, 0], image[:, 0, 29])
    assert torch.equal(turned[:, 29, 0], image[:, 0, 0])
    assert torch.equal(tt["boxes"], tight_boxes(tt["masks"]))
    for _ in range(3):
        turned, tt = T.quarter_turn(turned, tt)
    assert torch.equal(turned, image) and torch.equal(tt["boxes"], target["boxes"])
    assert torch.equal(tt["masks"], masks)


def test_dihedral_augmentation_reaches_all_eight_symmetries_of_a_sample_image():
    torch.manual_seed(0)
    image, target = sample_item(3)
    augment = T.training_augmentation("dihedral")
    seen = set()
    for _ in range(64):
        out, ot = augment(image.permute(1, 2, 0).contiguous().numpy(), target)
        assert torch.allclose(ot["boxes"], tight_boxes(ot["masks"]))
        seen.add(out.numpy().tobytes())
    assert len(seen) == 8


def test_random_crop_keeps_boxes_equal_to_visible_masks():
    torch.manual_seed(0)
    crop = T.RandomCrop(64)
    for index in range(10):
        image, target = sample_item(index)
        cropped, ct = crop(image, target)
        assert cropped.shape == (3, 64, 64)
        assert ct["masks"].shape[1:] == (64, 64)
        assert torch.allclose(ct["boxes"], tight_boxes(ct["masks"]))
        assert torch.equal(ct["area"], ct["masks"].flatten(1).sum(1).float())
        assert len(ct["labels"]) == len(ct["boxes"]) <= len(target["boxes"])


def test_crop_pads_small_images_and_handles_stacked_pairs():
    pair = torch.rand(6, 20, 30)
    out, none = T.RandomCrop((32, 40))(pair, None)
    assert out.shape == (6, 32, 40) and none is None
    assert torch.equal(out[:, :20, :30], pair)


def test_resize_scales_boxes_and_masks():
    image, target = sample_item(2)
    resized, rt = T.Resize(256, 1000)(image, target)
    assert resized.shape == (3, 256, 256)
    assert torch.allclose(rt["boxes"], target["boxes"] * 2)
    assert torch.allclose(rt["boxes"], tight_boxes(rt["masks"]))


def test_to_tensor_scales_uint8_and_keeps_float():
    import numpy as np
    u8 = np.full((2, 3, 3), 255, np.uint8)
    f32 = np.full((2, 3, 3), 4.5, np.float32)
    assert T.ToTensor()(u8)[0].max() == 1.0 and T.ToTensor()(f32)[0].max() == 4.5
    assert T.ToTensor()(u8)[0].shape == (3, 2, 3)
