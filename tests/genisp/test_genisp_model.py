"""genisp/model.py: batched GenISP, and a frozen detector that really stays frozen."""
import torch

from genisp.model import GenISP, GenISPDetector, gray_world_loss
from torch_utils_lib.models.detectors import build_detector


def test_any_size_and_batched_equals_one_by_one():
    torch.manual_seed(0)
    genisp = GenISP(parameter_size=64)
    with torch.no_grad():  # move off the identity start so the colour stages matter
        for p in list(genisp.conv_wb.head.parameters()) + list(genisp.conv_cc.head.parameters()):
            p.add_(0.1 * torch.randn_like(p))
    images = [torch.rand(3, 37, 53), torch.rand(3, 64, 48), torch.rand(3, 37, 53)]
    batched = genisp(images)
    assert [tuple(o.shape) for o in batched] == [(3, 37, 53), (3, 64, 48), (3, 37, 53)]
    for image, out in zip(images, batched):
        torch.testing.assert_close(out, genisp(image[None])[0], atol=1e-5, rtol=1e-5)
    stacked = genisp(torch.stack([images[0], images[2]]))
    torch.testing.assert_close(stacked[1], batched[2], atol=1e-5, rtol=1e-5)


def test_colour_stages_start_as_identity_and_match_the_two_step_definition():
    torch.manual_seed(1)
    genisp = GenISP(parameter_size=32)
    x = torch.rand(2, 3, 40, 40)
    thumb = genisp._thumbnail(x)
    assert torch.equal(genisp.conv_wb(thumb), torch.ones(2, 3))
    assert torch.equal(genisp.conv_cc(thumb), torch.eye(3).flatten().repeat(2, 1))
    with torch.no_grad():
        for p in list(genisp.conv_wb.head.parameters()) + list(genisp.conv_cc.head.parameters()):
            p.add_(0.2 * torch.randn_like(p))
        # the paper's order, step by step: ConvWB on the input, ConvCC on the balanced image
        gains = genisp.conv_wb(genisp._thumbnail(x))
        balanced = x * gains[:, :, None, None]
        matrix = genisp.conv_cc(genisp._thumbnail(balanced)).view(-1, 3, 3)
        expected = genisp.enhance(torch.einsum("nij,njhw->nihw", matrix, balanced))
        torch.testing.assert_close(genisp(x), expected, atol=1e-5, rtol=1e-5)


def test_enhancement_is_the_papers_convnet_with_instance_norm():
    """The shallow ConvNet equals 3x3/16, InstanceNorm, LeakyReLU, 3x3/64, InstanceNorm,
    LeakyReLU, 1x1/3 written with the plain layers, forward and backward."""
    torch.manual_seed(2)
    genisp = GenISP(parameter_size=32)
    x = torch.rand(2, 3, 24, 20) * torch.tensor([1.0, 5.0])[:, None, None, None]
    x.requires_grad_(True)
    expected = x
    for layer in genisp.enhance:
        if isinstance(layer, torch.nn.GroupNorm):
            expected = torch.nn.functional.instance_norm(expected)
        elif isinstance(layer, torch.nn.LeakyReLU):
            expected = torch.nn.functional.leaky_relu(expected)
        else:  # the 1x1 layer as the convolution it stands for
            expected = torch.nn.functional.conv2d(expected, layer.weight, layer.bias,
                                                  padding=layer.padding)
    out = genisp.enhance(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    weight = torch.rand_like(out)
    ours = torch.autograd.grad((out * weight).sum(), [x, *genisp.enhance.parameters()])
    theirs = torch.autograd.grad((expected * weight).sum(), [x, *genisp.enhance.parameters()])
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert isinstance(genisp.enhance[-1], torch.nn.Conv2d) and genisp.enhance[-1].kernel_size == (1, 1)
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in genisp.enhance) == 2
    assert not genisp.enhance.state_dict().keys() - {"0.weight", "0.bias", "3.weight", "3.bias",
                                                     "6.weight", "6.bias"}


def test_gray_world_loss():
    image = torch.zeros(1, 3, 4, 4)
    image[0, 0] = 0.5
    image[0, 1] = 0.2
    # (0.5 - 0.2)^2 + (0.5 - 0)^2 + (0.2 - 0)^2
    assert abs(gray_world_loss(image).item() - 0.38) < 1e-6
    assert gray_world_loss(torch.full((2, 3, 5, 5), 0.3)).item() == 0.0


def test_only_genisp_learns_and_the_detector_stays_frozen():
    torch.manual_seed(0)
    detector = build_detector("maskrcnn_resnet18_fpn", 4, "none")  # has real BatchNorm layers
    before = {k: v.clone() for k, v in detector.state_dict().items()}
    genisp = GenISP(parameter_size=32)
    model = GenISPDetector(genisp, detector, color_loss_weight=0.5)
    model.train()
    assert genisp.training and detector.training
    norms = [m for m in detector.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    optimizer = torch.optim.Adam(genisp.parameters(), lr=1e-2)
    images = [torch.rand(3, 64, 64) * 0.05 for _ in range(2)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 36.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[20.0, 10.0, 60.0, 50.0]]), "labels": torch.tensor([3])}]
    genisp_before = {k: v.clone() for k, v in genisp.state_dict().items()}
    # two steps: the zero-initialised heads pass no gradient to their features on the first
    for _ in range(2):
        losses = model(images, targets)
        assert {"loss_classifier", "loss_box_reg", "color"} <= set(losses)
        assert "loss_mask" not in losses  # boxes only: RAW data has no masks
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    assert all(p.grad is None for p in detector.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in genisp.parameters())
    for key, value in detector.state_dict().items():
        assert torch.equal(value, before[key]), key  # parameters and BatchNorm buffers alike
    assert any(not torch.equal(v, genisp_before[k]) for k, v in genisp.state_dict().items())
    assert detector.roi_heads.has_mask()  # the mask branch is only skipped, not removed
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2 and set(detections[0]) >= {"boxes", "labels", "scores"}


def test_retinanet_uses_the_papers_smooth_l1_box_loss():
    detector = build_detector("retinanet_resnet50_fpn_v2", 91, "none", min_size=64, max_size=64)
    assert detector.head.regression_head._loss_type == "giou"  # torchvision's v2 default
    GenISPDetector(GenISP(32), detector)
    assert detector.head.regression_head._loss_type == "smooth_l1"
    assert not any(p.requires_grad for p in detector.parameters())
