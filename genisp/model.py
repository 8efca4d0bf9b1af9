"""GenISP (Morawski et al., CVPRW 2022): a neural ISP trained through a frozen detector.

XYZ image -> ConvWB (3 gains) -> ConvCC (3x3 matrix) -> shallow ConvNet -> detector. ConvWB and
ConvCC each look at a 256x256 resize of their input through an image-to-parameter network. A
whole batch goes through at once; a list of differently sized images is grouped by size.
"""
import torch
import torch.nn.functional as F
from torch import nn

from torch_utils_lib.models.frozen_detector import ImageModuleDetector, boxes_only


class ImageToParameter(nn.Module):
    """Conv 7x7/16, 5x5/32, 3x3/128 with LeakyReLU and max-pooling, global average, linear."""

    def __init__(self, num_outputs, initial_output):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 7, padding=3), nn.LeakyReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.LeakyReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 128, 3, padding=1), nn.LeakyReLU(inplace=True), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.head = nn.Linear(128, num_outputs)
        # Start as the identity transform (gains 1, matrix I): training begins from the minimal
        # pipeline's colours rather than from a random colour cast (the paper does not say).
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.as_tensor(initial_output, dtype=torch.float32).ravel())

    def forward(self, x):
        return self.head(self.features(x))


def instance_norm(channels):
    return nn.GroupNorm(channels, channels, affine=False)


class PointwiseConv(nn.Conv2d):
    """A 1x1 convolution computed as a batched matrix product (the same weights and numbers).

    On CPU, oneDNN's 1x1 convolution from 64 channels to 3 is slower (forward and backward)
    than this product (README, "Benchmarks").
    """

    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        weight = self.weight.view(1, self.out_channels, c).expand(n, -1, -1)
        out = torch.bmm(weight, x.reshape(n, c, h * w)).view(n, self.out_channels, h, w)
        return out + self.bias.to(out.dtype).view(1, -1, 1, 1)  # fp16 under AMP, as a conv


class GenISP(nn.Module):
    """The trainable ISP. forward(images) takes an NxCxHxW tensor or a list of CxHxW tensors."""

    def __init__(self, parameter_size=256):
        super().__init__()
        self.parameter_size = parameter_size
        self.conv_wb = ImageToParameter(3, torch.ones(3))
        self.conv_cc = ImageToParameter(9, torch.eye(3))
        # Instance normalisation written as GroupNorm with one channel per group: the same
        # numbers (no parameters either way) from a kernel that is faster on CPU. The
        # activations work in place: GroupNorm's backward needs its input, not its output, and
        # the full-resolution 64-channel tensors are what a step's time goes to.
        self.enhance = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), instance_norm(16), nn.LeakyReLU(inplace=True),
            nn.Conv2d(16, 64, 3, padding=1), instance_norm(64), nn.LeakyReLU(inplace=True),
            PointwiseConv(64, 3))

    def _thumbnail(self, x):
        size = (self.parameter_size, self.parameter_size)
        if x.shape[-2:] == size:
            return x
        shrink = x.shape[-2] > size[0] and x.shape[-1] > size[1]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)

    def forward_batch(self, x):
        """NxCxHxW -> NxCxHxW, every image at once.

        Resizing is linear per channel, so ConvCC's thumbnail is the white-balanced thumbnail of
        the input: one full-resolution resize and one full-resolution colour transform
        (matrix @ diag(gains)) per image instead of two of each.
        """
        thumbnail = self._thumbnail(x)
        gains = self.conv_wb(thumbnail)                                # N x 3
        matrix = self.conv_cc(thumbnail * gains[:, :, None, None]).view(-1, 3, 3)
        colour = matrix * gains[:, None, :]                            # M @ diag(gains)
        return self.enhance(torch.einsum("nij,njhw->nihw", colour, x))

    def forward(self, images):
        if torch.is_tensor(images):
            return self.forward_batch(images)
        images = list(images)
        outputs = [None] * len(images)
        groups = {}
        for i, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(i)
        for indices in groups.values():
            batch = self.forward_batch(torch.stack([images[i] for i in indices]))
            for i, out in zip(indices, batch):
                outputs[i] = out
        return outputs


def gray_world_loss(images):
    """The paper's optional colour term (equation 4): squared differences of channel means."""
    means = torch.stack([image.float().mean(dim=(-2, -1)) for image in images])  # N x 3
    r, g, b = means.unbind(-1)
    return ((r - g) ** 2 + (r - b) ** 2 + (g - b) ** 2).mean()


def use_smooth_l1(detector):
    """Switch a RetinaNet to the paper's smooth-L1 box loss (torchvision's v2 default is GIoU)."""
    regression = getattr(getattr(detector, "head", None), "regression_head", None)
    if regression is not None and hasattr(regression, "_loss_type"):
        regression._loss_type = "smooth_l1"
    return detector


class BoxDetector(nn.Module):
    """A detector's boxes alone (a Mask R-CNN's mask branch skipped): the baselines' model."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, images, targets=None):
        with boxes_only(self.detector):
            return self.detector(list(images), targets)


class GenISPDetector(ImageModuleDetector):
    """GenISP followed by a frozen detector (boxes only), with the paper's losses.

    torch_utils_lib.models.frozen_detector.ImageModuleDetector keeps the detector frozen (eval-mode
    BatchNorm and Dropout); a RetinaNet uses the paper's smooth-L1 box loss, and the optional
    gray-world colour term is added with `color_loss_weight`.
    """

    def __init__(self, genisp, detector, color_loss_weight=0.0):
        super().__init__(genisp, use_smooth_l1(detector), frozen=True, boxes_only=True)
        self.color_loss_weight = color_loss_weight

    @property
    def genisp(self):
        return self.image_module

    def image_losses(self, enhanced):
        if not self.color_loss_weight:
            return {}
        return {"color": self.color_loss_weight * gray_world_loss(enhanced)}
