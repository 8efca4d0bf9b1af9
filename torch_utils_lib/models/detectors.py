"""Detectors by name, pretrained weights from the local cache only, and rebuilding from checkpoints.

Names: maskrcnn_resnet18_fpn (light: trainable BatchNorm and a 64-channel FPN, so it learns from
scratch on CPU), maskrcnn_resnet50_fpn(_v2), fasterrcnn_resnet50_fpn(_v2), retinanet_resnet50_fpn(_v2).
Weights: 'none' (from scratch), 'imagenet' (backbone only), 'coco', or a file path.
"""
import functools
import math
import os
from dataclasses import dataclass
from typing import Callable

import torch
import torchvision
from torch import nn
from torchvision.models.detection import (MaskRCNN, RetinaNet, faster_rcnn, mask_rcnn,
                                          retinanet)
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from torch_utils_lib.toolkit.guards import require_file
from torch_utils_lib.runtime.checkpoint import check_finite_weights, is_plain_state_dict, read_state
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.runtime.devices import autocast
from torch_utils_lib.data.image_io import read_size
from torch_utils_lib.data.transforms import to_tensor
from torch_utils_lib.evaluation.metrics import iou_types_of
from torch_utils_lib.toolkit.flag_choices import DETECTOR_NAMES

_D = torchvision.models.detection
_MASK_HEAD = "roi_heads.mask_predictor.mask_fcn_logits.weight"
_BOX_HEAD = "roi_heads.box_predictor.cls_score.weight"
_RETINA_HEAD = "head.classification_head.cls_logits.weight"
_RETINA_ANCHORS = 9  # 3 sizes x 3 aspect ratios per location


@dataclass(frozen=True)
class DetectorFamily:
    """What the toolkit needs of one kind of detector, whatever its backbone.

    recognizes(state): whether a plain state dict is of this family (its heads' keys);
    class_count(state): its number of classes, background included, read from the
    class-dependent head. A new family is one entry in FAMILIES plus its detectors in DETECTORS.
    """
    name: str
    has_masks: bool
    recognizes: Callable
    class_count: Callable

    @property
    def iou_types(self):
        return iou_types_of(self.has_masks)


FAMILIES = {family.name: family for family in (
    DetectorFamily("maskrcnn", True, lambda state: _MASK_HEAD in state,
                   lambda state: state[_BOX_HEAD].shape[0]),
    DetectorFamily("fasterrcnn", False, lambda state: _BOX_HEAD in state and _MASK_HEAD not in state,
                   lambda state: state[_BOX_HEAD].shape[0]),
    DetectorFamily("retinanet", False, lambda state: _RETINA_HEAD in state,
                   lambda state: state[_RETINA_HEAD].shape[0] // _RETINA_ANCHORS),
)}


@dataclass(frozen=True)
class Detector:
    """One detector name: its family, its torchvision builder with the COCO and ImageNet weights
    enums (None for our light model, built by light_maskrcnn) and its default image sizes."""
    family: DetectorFamily
    builder: Callable | None = None
    coco_weights: object = None
    backbone_weights: object = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
    sizes: tuple = (800, 1333)  # torchvision's min_size / max_size


_FAMILY = FAMILIES
DETECTORS = {
    "maskrcnn_resnet18_fpn": Detector(_FAMILY["maskrcnn"], None, None,
                                      torchvision.models.ResNet18_Weights.IMAGENET1K_V1, (128, 512)),
    "maskrcnn_resnet50_fpn": Detector(_FAMILY["maskrcnn"], _D.maskrcnn_resnet50_fpn,
                                      _D.MaskRCNN_ResNet50_FPN_Weights.COCO_V1),
    "maskrcnn_resnet50_fpn_v2": Detector(_FAMILY["maskrcnn"], _D.maskrcnn_resnet50_fpn_v2,
                                         _D.MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1),
    "fasterrcnn_resnet50_fpn": Detector(_FAMILY["fasterrcnn"], _D.fasterrcnn_resnet50_fpn,
                                        _D.FasterRCNN_ResNet50_FPN_Weights.COCO_V1),
    "fasterrcnn_resnet50_fpn_v2": Detector(_FAMILY["fasterrcnn"], _D.fasterrcnn_resnet50_fpn_v2,
                                           _D.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1),
    "retinanet_resnet50_fpn": Detector(_FAMILY["retinanet"], _D.retinanet_resnet50_fpn,
                                       _D.RetinaNet_ResNet50_FPN_Weights.COCO_V1),
    "retinanet_resnet50_fpn_v2": Detector(_FAMILY["retinanet"], _D.retinanet_resnet50_fpn_v2,
                                          _D.RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1),
}
assert tuple(DETECTORS) == DETECTOR_NAMES  # the --help's names (toolkit.flag_choices, torch-free)
TORCHVISION_DETECTORS = {name: d for name, d in DETECTORS.items() if d.builder is not None}


def family_of(name):
    """The DetectorFamily of detector `name` (a DETECTORS key, e.g. a checkpoint's config["model"])."""
    if name not in DETECTORS:
        raise UserError(f"--model {name}: unknown detector; choose one of {', '.join(DETECTOR_NAMES)}")
    return DETECTORS[name].family


COCO_CATEGORY_NAMES = list(_D.MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


def cached_weights_path(weights):
    """Where torch.hub keeps the file of a torchvision weights enum."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def load_pretrained_state(weights, name, flag="--weights"):
    """State dict of a torchvision weights enum from the hub cache; never downloads."""
    path = cached_weights_path(weights)
    if not os.path.isfile(path):
        raise UserError(
            f"{path}: pretrained weights for {name} are not in the torch hub cache; on a machine "
            f"with internet run `python mask_rcnn/download_weights.py {name}` and copy the "
            f"file there, pass {flag} /path/to/{os.path.basename(path)}, or use {flag} none")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_state_file(path):
    """A state dict from a file: an llvision checkpoint or a plain torchvision state dict."""
    require_file(path, "weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"{path}: not a readable weights file ({str(e).splitlines()[0][:160]})") from None
    state = state["model"] if isinstance(state, dict) and "model" in state else state
    return check_finite_weights(state, path) if isinstance(state, dict) else state


def light_maskrcnn(num_classes, min_size, max_size, fpn_channels=64, pretrained_backbone=None):
    """ResNet18-FPN Mask R-CNN with trainable BatchNorm and narrow heads (fast from scratch)."""
    body = torchvision.models.resnet18(weights=None, norm_layer=nn.BatchNorm2d)
    if pretrained_backbone is not None:
        body.load_state_dict(pretrained_backbone)
    backbone = BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                               [64, 128, 256, 512], fpn_channels, extra_blocks=LastLevelMaxPool())
    # Fewer proposals and sampled RoIs than torchvision's 2000/2000/512: on CPU the RoIAlign
    # backward over 512 RoIs per image dominates a step (README, "Benchmarks").
    return MaskRCNN(
        backbone, None, min_size=min_size, max_size=max_size,
        rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500, box_batch_size_per_image=128,
        box_head=faster_rcnn.TwoMLPHead(fpn_channels * 7 * 7, 256),
        box_predictor=faster_rcnn.FastRCNNPredictor(256, num_classes),
        mask_head=mask_rcnn.MaskRCNNHeads(fpn_channels, [fpn_channels] * 4, 1),
        mask_predictor=mask_rcnn.MaskRCNNPredictor(fpn_channels, fpn_channels, num_classes))


def replace_heads(model, num_classes):
    """Give a COCO-pretrained detector new class-dependent heads for `num_classes`."""
    if isinstance(model, RetinaNet):
        head = model.head.classification_head
        group_norm = any(isinstance(m, nn.GroupNorm) for m in head.modules())  # the v2 head
        model.head.classification_head = retinanet.RetinaNetClassificationHead(
            head.cls_logits.in_channels, head.num_anchors, num_classes,
            norm_layer=functools.partial(nn.GroupNorm, 32) if group_norm else None)
        return model
    predictor = model.roi_heads.box_predictor
    model.roi_heads.box_predictor = faster_rcnn.FastRCNNPredictor(predictor.cls_score.in_features,
                                                                  num_classes)
    if isinstance(model, MaskRCNN):
        old = model.roi_heads.mask_predictor
        model.roi_heads.mask_predictor = mask_rcnn.MaskRCNNPredictor(
            old.conv5_mask.in_channels, old.conv5_mask.out_channels, num_classes)
    return model


def resized_short_side(height, width, min_size, max_size):
    """The short side of a height x width image after a torchvision detector's resize: its short
    side to min_size unless the long side would pass max_size (rounded down, as its interpolate)."""
    short, long = min(height, width), max(height, width)
    return math.floor(short * min(min_size / short, max_size / long))


def check_detector_input(model, path, height, width):
    """Refuse an image the detector cannot take: one so elongated that resizing its long side to
    max_size leaves its short side under 1 px (torchvision's interpolate then fails). Any image
    at most max_size:1 works, down to 1x1 (it is upscaled)."""
    min_size, max_size = model.transform.min_size[0], model.transform.max_size
    if resized_short_side(height, width, min_size, max_size) < 1:
        raise UserError(f"{path}: {width}x{height}: the detector resizes its long side to "
                        f"{max_size} px, which leaves the short side under 1 px; it takes images "
                        f"up to {max_size}:1 (crop or pad this one)")


def check_dataset_inputs(model, dataset):
    """check_detector_input on every image of a CocoDetection, before the first step (sizes from
    the annotation, else from the file's header)."""
    for index, image_id in enumerate(dataset.image_ids):
        info = dataset.images_by_id[image_id]
        path = dataset.image_path(index)
        height, width = ((info["height"], info["width"]) if info.get("height") and info.get("width")
                         else read_size(path))
        check_detector_input(model, path, height, width)


def build_detector(name, num_classes, weights="none", trainable_backbone_layers=None,
                   min_size=None, max_size=None, flag="--weights"):
    """A detector `name` for `num_classes` (background included), initialised from `weights`."""
    family_of(name)  # an unknown name is refused
    detector = DETECTORS[name]
    sizes = {"min_size": min_size or detector.sizes[0], "max_size": max_size or detector.sizes[1]}
    file_state = load_state_file(weights) if weights not in ("none", "coco", "imagenet") else None
    if detector.builder is None:
        if weights == "coco":
            raise UserError(f"{flag} coco: no COCO weights exist for {name}; use none, "
                            f"imagenet or a file")
        backbone = (load_pretrained_state(detector.backbone_weights, name, flag)
                    if weights == "imagenet" else None)
        model = light_maskrcnn(num_classes, sizes["min_size"], sizes["max_size"],
                               pretrained_backbone=backbone)
    else:
        builder, coco_weights, backbone_weights = (detector.builder, detector.coco_weights,
                                                   detector.backbone_weights)
        kwargs = dict(weights=None, weights_backbone=None, **sizes)
        if trainable_backbone_layers is not None:
            kwargs["trainable_backbone_layers"] = trainable_backbone_layers
        if weights == "coco":
            model = builder(num_classes=len(COCO_CATEGORY_NAMES), **kwargs)
            state = load_pretrained_state(coco_weights, name, flag)
            if not any(k.startswith("backbone.body") and k.endswith("num_batches_tracked") for k in state):
                freeze_batchnorm(model.backbone.body)  # v1 models were trained with frozen BN
            model.load_state_dict(state)
            if num_classes != len(COCO_CATEGORY_NAMES):
                replace_heads(model, num_classes)
            _freeze_backbone_layers(model, trainable_backbone_layers)
            return model
        if weights == "imagenet":
            model = builder(num_classes=num_classes, **kwargs)
            body = model.backbone.body
            if "v2" not in name:
                freeze_batchnorm(body)
            missing = body.load_state_dict(load_pretrained_state(backbone_weights, name, flag), strict=False)
            if [k for k in missing.missing_keys if "num_batches" not in k]:
                raise UserError(f"ImageNet weights do not fit {name}'s backbone")
            _freeze_backbone_layers(model, trainable_backbone_layers)
            return model
        model = builder(num_classes=num_classes, **kwargs)
    if file_state is not None:
        load_detector_weights(model, file_state, weights)
    return model


def freeze_batchnorm(module):
    """Replace every BatchNorm2d in `module` by a FrozenBatchNorm2d with the same statistics."""
    for child_name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = torchvision.ops.FrozenBatchNorm2d(child.num_features, child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, child_name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def _freeze_backbone_layers(model, trainable_layers):
    """Freeze all but the last `trainable_layers` ResNet stages (torchvision's convention)."""
    if trainable_layers is None:
        trainable_layers = 3
    if not 0 <= trainable_layers <= 5:
        raise UserError("--trainable_backbone_layers must be between 0 and 5")
    layers = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers.append("bn1")
    for name, parameter in model.backbone.body.named_parameters():
        parameter.requires_grad_(any(name.startswith(layer) for layer in layers))


def detector_config(name, categories, min_size=None, max_size=None, category_ids=None):
    """What a checkpoint needs to rebuild a detector: name, sizes, label names and category ids.

    `categories[label]` is the class name of each label, index 0 being the background.
    """
    default_min, default_max = DETECTORS[name].sizes
    return {"model": name, "num_classes": len(categories), "categories": list(categories),
            "category_ids": list(category_ids) if category_ids is not None else None,
            "min_size": min_size or default_min, "max_size": max_size or default_max}


def load_detector(spec, device="cpu", weights="coco", flag="--weights"):
    """(model in eval mode, config) from a checkpoint path or a torchvision detector name.

    A name loads `weights` ('coco' from the hub cache, or a file) in COCO's 91-label space;
    `flag` is the option named in the advice when the weights are missing.
    """
    if os.path.isfile(spec):
        weights_state, config = load_detector_checkpoint(spec)
        model = build_detector(config["model"], config["num_classes"], "none",
                               min_size=config.get("min_size"), max_size=config.get("max_size"))
        load_detector_weights(model, weights_state, spec)
    elif spec in TORCHVISION_DETECTORS:
        model = build_detector(spec, len(COCO_CATEGORY_NAMES), weights, flag=flag)
        config = detector_config(spec, COCO_CATEGORY_NAMES,
                                 category_ids=range(len(COCO_CATEGORY_NAMES)))
        config["min_size"], config["max_size"] = model.transform.min_size[0], model.transform.max_size
    else:
        raise UserError(f"{spec}: neither a checkpoint file nor a detector name "
                        f"({', '.join(DETECTOR_NAMES)})")
    return model.to(device).eval(), config


def _class_count(state):
    """Number of classes (background included) from a detector state dict's class-dependent head."""
    family = next((f for f in FAMILIES.values() if f.recognizes(state)), None)
    return family.class_count(state) if family else None


def _candidates(state):
    """The detector names whose family recognizes the state dict's heads."""
    return [name for name, d in DETECTORS.items() if d.family.recognizes(state)]


def _shapes(state):
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def recognize_detector(state, path):
    """(name, number of classes) of the detector whose plain state dict is `state`.

    Recognised from the keys and shapes: the class count from the box (or RetinaNet
    classification) head, the architecture as the one of our detectors with exactly these
    parameter names and shapes. UserError naming `path` when none fits.
    """
    num_classes = _class_count(state)
    if num_classes:
        shapes = _shapes(state)
        for name in _candidates(state):
            model = build_detector(name, num_classes, "none")
            if _shapes(model.state_dict()) == shapes:
                return name, num_classes
    raise UserError(f"{path}: a state dict of no known detector ({', '.join(DETECTOR_NAMES)}); "
                    f"pass a checkpoint written by mask_rcnn/train.py")


def load_detector_checkpoint(path):
    """(model state dict, config) of a mask_rcnn/train.py checkpoint or a plain state dict.

    A plain `torch.save(model.state_dict())` of one of our detectors is recognised from its keys
    and shapes; its labels are COCO's categories when it has 91 classes, else class_1... matched
    to the dataset's category ids. What was assumed is printed.
    """
    state = read_state(path)
    if is_plain_state_dict(state):
        name, num_classes = recognize_detector(state, path)
        if num_classes == len(COCO_CATEGORY_NAMES):
            names, labels = COCO_CATEGORY_NAMES, "COCO's category names and ids"
        else:
            names = ["__background__"] + [f"class_{i}" for i in range(1, num_classes)]
            labels = f"names class_1..class_{num_classes - 1} for category ids 1..{num_classes - 1}"
        print(f"{path}: a plain state dict; assumed {name} with {num_classes} classes "
              f"(background included) and {labels}")
        return state, detector_config(name, names, category_ids=range(num_classes))
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"{path}: not an llvision checkpoint (no 'model' state dict)")
    config = state.get("config") or {}
    if config.get("model") not in DETECTOR_NAMES:
        raise UserError(f"{path}: not a detector checkpoint (config names no known model)")
    return state["model"], config


def load_detector_weights(model, state, path):
    """Load a detector state dict; one saved with frozen BatchNorm (no num_batches_tracked) too."""
    if not any(k.endswith("num_batches_tracked") for k in state):
        freeze_batchnorm(model.backbone.body)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit {type(model).__name__} with "
                        f"{_class_count(model.state_dict())} classes "
                        f"({str(e).strip().splitlines()[-1].strip()[:160]})") from None
    return model


def keep_labels(outputs, labels):
    """Drop detections of labels outside `labels` (a COCO detector sees 80 classes, a dataset
    annotates a few: the rest have no category id in it)."""
    allowed = torch.tensor(sorted(labels), dtype=torch.int64)
    kept = []
    for output in outputs:
        mask = torch.isin(output["labels"], allowed)
        kept.append({k: v[mask] for k, v in output.items()})
    return kept


def detections_to_cpu(output):
    """A detector's output dict on the CPU, floating-point values as float32 (AMP gives half)."""
    return {k: v.float().cpu() if v.is_floating_point() else v.cpu() for k, v in output.items()}


@torch.no_grad()
def predict_images(model, images, device, amp=False):
    """Detections for HxWx3 uint8 images, one CPU output dict each (the model must be in eval)."""
    with autocast(torch.device(device), amp):
        outputs = model([to_tensor(i).to(device) for i in images])
    return [detections_to_cpu(o) for o in outputs]

