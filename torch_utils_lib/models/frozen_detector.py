"""An image module in front of a detector, trained through the detector's own training losses.

GenISP (genisp/) and the DIP enhancer (enhancer/) learn an image module whose output a detector
reads; the detector's losses (computed by torchvision only in train() mode) are what it learns
from. With `frozen=True` the detector's weights and its BatchNorm/Dropout statistics never move
(its modules stay in eval mode inside a model in train mode); with `frozen=False` both learn
end to end (the joint variant).
"""
import contextlib

from torch import nn

from torch_utils_lib.models.detectors import load_detector

_EVAL_IN_TRAINING = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout2d)


@contextlib.contextmanager
def boxes_only(detector):
    """Skip a Mask R-CNN's mask branch (data without masks, such as RAW sets)."""
    heads = getattr(detector, "roi_heads", None)
    pool = getattr(heads, "mask_roi_pool", None)
    if pool is None:
        yield
        return
    heads.mask_roi_pool = None
    try:
        yield
    finally:
        heads.mask_roi_pool = pool


def freeze(detector):
    """No gradients for the detector's weights (gradients still flow through it to its input)."""
    return detector.requires_grad_(False)


def load_frozen_detector(spec, weights="coco", device="cpu", flag="--detector_weights"):
    """(frozen detector in eval mode, its config) from a torchvision name or a checkpoint path.

    config["categories"][label] is the class name of each label (0: background).
    """
    detector, config = load_detector(spec, device, weights=weights, flag=flag)
    return freeze(detector), config


class ImageModuleDetector(nn.Module):
    """`image_module` followed by `detector`: one module for engine.fit and engine.evaluate.

    forward(images, targets) -> the detector's losses (training) plus `image_losses(enhanced)`,
    or its detections (eval). `images` is a list of CxHxW tensors or an NxCxHxW batch; the image
    module gets them as given. `boxes_only` skips a Mask R-CNN's mask branch.
    """

    def __init__(self, image_module, detector, *, frozen=True, boxes_only=False):
        super().__init__()
        self.image_module = image_module
        self.detector = freeze(detector) if frozen else detector
        self.frozen, self.boxes_only = frozen, boxes_only

    def train(self, mode=True):
        super().train(mode)
        if self.frozen:
            for module in self.detector.modules():
                if isinstance(module, _EVAL_IN_TRAINING):
                    module.eval()
        return self

    def image_losses(self, enhanced):
        """Extra loss terms on the image module's output (none here; GenISP adds a colour term)."""
        return {}

    def forward(self, images, targets=None):
        enhanced = list(self.image_module(images))
        with boxes_only(self.detector) if self.boxes_only else contextlib.nullcontext():
            if not self.training:
                return self.detector(enhanced)
            losses = dict(self.detector(enhanced, targets))
        losses.update(self.image_losses(enhanced))
        return losses
