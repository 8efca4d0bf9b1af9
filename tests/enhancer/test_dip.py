"""enhancer/dip.py through a detector: the frozen detector stays bit-identical while its loss on
the low-light train batch falls; the joint variant changes both."""
import pytest
import torch

from enhancer.dip import DIPEnhancer, PARAMETERS, apply_filters
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.models.detectors import build_detector
from torch_utils_lib.models.frozen_detector import ImageModuleDetector
from torch_utils_lib.toolkit.paths import sample_annotation, sample_low_light


def test_starts_as_the_identity_and_is_small():
    enhancer = DIPEnhancer(parameter_size=64)
    assert sum(p.numel() for p in enhancer.parameters()) < 200_000
    x = torch.rand(2, 3, 40, 56)
    torch.testing.assert_close(enhancer(x), x, atol=2e-3, rtol=0)
    outputs = enhancer([x[0], x[1, :, :30]])
    assert [tuple(o.shape) for o in outputs] == [(3, 40, 56), (3, 30, 56)]


def test_each_filter_moves_the_image_the_documented_way():
    x = torch.full((1, 3, 8, 8), 0.2)
    p = torch.zeros(1, sum(PARAMETERS.values()))
    kernel = DIPEnhancer().blur_kernel
    brighter = p.clone()
    brighter[0, 0] = 10.0  # exposure 2^3.5
    assert torch.allclose(apply_filters(x, brighter, kernel), torch.ones_like(x))
    gamma = p.clone()
    gamma[0, 4] = -10.0  # gamma 1/3
    assert torch.allclose(apply_filters(x, gamma, kernel), x ** (1 / 3), atol=1e-4)


def batch(n=4):
    dataset = CocoDetection(sample_low_light("train", "gamma_noise"), sample_annotation("train"),
                            train=True)
    items = [dataset[i] for i in range(n)]
    return [i[0] for i in items], [i[1] for i in items]


def losses_at(model, images, targets):
    torch.manual_seed(0)  # the RPN and RoI samplers draw at random
    with torch.no_grad():
        return sum(model(images, targets).values()).item()


@pytest.mark.parametrize("joint", [False, True], ids=["frozen", "joint"])
def test_training_through_the_detector(joint):
    torch.manual_seed(0)
    detector = build_detector("maskrcnn_resnet18_fpn", 4, "none", min_size=64, max_size=64)
    before = {k: v.clone() for k, v in detector.state_dict().items()}
    enhancer = DIPEnhancer(parameter_size=64)
    enhancer_before = {k: v.clone() for k, v in enhancer.state_dict().items()}
    model = ImageModuleDetector(enhancer, detector, frozen=not joint).train()
    images, targets = batch()
    groups = [{"params": enhancer.parameters()}]
    if joint:
        groups.append({"params": detector.parameters(), "lr": 1e-3})
    optimizer = torch.optim.Adam(groups, lr=3e-2)
    start = losses_at(model, images, targets)
    for step in range(6):
        torch.manual_seed(step)
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    end = losses_at(model, images, targets)
    assert end < start, (start, end)
    assert any(not torch.equal(v, enhancer_before[k]) for k, v in enhancer.state_dict().items())
    detector_same = all(torch.equal(v, before[k]) for k, v in detector.state_dict().items())
    assert detector_same != joint  # frozen: bit-identical (BatchNorm buffers too); joint: changed
