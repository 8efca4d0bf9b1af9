"""Detectors: offline pretrained weights from the hub cache only, heads replaced, label spaces."""
import os

import pytest
import torch

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.models.detectors import (TORCHVISION_DETECTORS, build_detector, cached_weights_path,
                                              freeze_batchnorm)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path


def test_missing_pretrained_weights_fail_with_one_clear_line(hub_dir):
    with pytest.raises(UserError) as info:
        build_detector("maskrcnn_resnet50_fpn", 4, "coco")
    message = str(info.value)
    assert "\n" not in message and "download_weights.py maskrcnn_resnet50_fpn" in message
    assert "--weights none" in message and str(hub_dir) in message


def test_coco_weights_load_from_the_cache_and_heads_are_replaced(hub_dir):
    torch.manual_seed(0)
    reference = build_detector("maskrcnn_resnet50_fpn", 91)
    freeze_batchnorm(reference.backbone.body)  # the layout of torchvision's published file
    path = cached_weights_path(TORCHVISION_DETECTORS["maskrcnn_resnet50_fpn"].coco_weights)
    os.makedirs(os.path.dirname(path))
    torch.save(reference.state_dict(), path)
    coco_model = build_detector("maskrcnn_resnet50_fpn", 91, "coco")
    for key, value in reference.state_dict().items():
        assert torch.equal(coco_model.state_dict()[key], value), key
    fine_tune = build_detector("maskrcnn_resnet50_fpn", 4, "coco", trainable_backbone_layers=2)
    assert fine_tune.roi_heads.box_predictor.cls_score.out_features == 4
    assert fine_tune.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 4
    assert torch.equal(fine_tune.backbone.fpn.layer_blocks[0][0].weight,
                       reference.backbone.fpn.layer_blocks[0][0].weight)
    trainable = {n.split(".")[0] for n, p in fine_tune.backbone.body.named_parameters() if p.requires_grad}
    assert trainable == {"layer3", "layer4"}


def test_light_model_trains_batchnorm_and_runs_at_sample_size():
    model = build_detector("maskrcnn_resnet18_fpn", 4)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.body.modules())
    assert model.backbone.out_channels == 64 and model.transform.min_size == (128,)
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 128, 96)])[0]
    assert set(out) == {"boxes", "labels", "scores", "masks"}


def test_file_weights_must_fit(tmp_path):
    torch.save(build_detector("maskrcnn_resnet18_fpn", 4).state_dict(), tmp_path / "w.pth")
    assert build_detector("maskrcnn_resnet18_fpn", 4, str(tmp_path / "w.pth")) is not None
    with pytest.raises(UserError, match="do not fit"):
        build_detector("maskrcnn_resnet18_fpn", 7, str(tmp_path / "w.pth"))
