"""A differentiable image-processing (DIP) enhancer in the style of IA-YOLO (Liu et al., AAAI 2022).

A small CNN looks at a thumbnail (`parameter_size`, IA-YOLO: 256) and predicts 15 parameters
of six differentiable filters, applied in this order at full resolution, each clipped to [0, 1]:

1. exposure: x · 2^e, e in [-3.5, 3.5];
2. white balance: per-channel gains exp(0.5·tanh(p)), normalised to keep the luma;
3. gamma: x^g, g in [1/3, 3];
4. tone curve: a monotone piecewise-linear curve of 8 pieces, slopes ∝ t_i in [0.5, 2]
   (IA-YOLO's tone filter, after Hu et al.'s "Exposure");
5. contrast: blend towards a luma S-curve (0.5 − 0.5·cos(π·luma)) by α in [-1, 1];
6. sharpening: unsharp mask x + λ·(x − gaussian(x)), λ in [-1, 1] (λ = −1: the blurred image,
   which removes noise).

IA-YOLO's defog filter is left out (no haze in low light). The prediction head starts at zero,
so the untrained enhancer is the identity and training starts from the detector's own view.
35,919 parameters (whatever the thumbnail size).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

TONE_PIECES = 8
PARAMETERS = {"exposure": 1, "white_balance": 3, "gamma": 1, "tone": TONE_PIECES, "contrast": 1,
              "sharpen": 1}
LUMA = (0.27, 0.67, 0.06)  # IA-YOLO's luminance weights


def _luma(x):
    return (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _gaussian_kernel(sigma=1.0, radius=2):
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, -1, -1).contiguous()


def apply_filters(x, p, blur_kernel):
    """The six filters with raw parameters p (N x 15) on images x (N x 3 x H x W in [0, 1])."""
    view = lambda v: v.view(-1, 1, 1, 1)
    e, wb, g, tone, c, s = torch.split(p, list(PARAMETERS.values()), dim=1)
    x = (x * torch.exp2(view(3.5 * torch.tanh(e[:, 0])))).clamp(0, 1)
    gains = torch.exp(0.5 * torch.tanh(wb))
    gains = gains / (gains * gains.new_tensor(LUMA)).sum(1, keepdim=True)
    x = (x * gains[:, :, None, None]).clamp(0, 1)
    x = x.clamp_min(1e-4) ** view(torch.exp(math.log(3.0) * torch.tanh(g[:, 0])))
    slopes = 0.5 + 1.5 * torch.sigmoid(tone)  # in [0.5, 2], all equal at 0: the identity
    pieces = torch.stack([(TONE_PIECES * x - i).clamp(0, 1) for i in range(TONE_PIECES)], 2)
    x = (pieces * slopes[:, None, :, None, None]).sum(2) / slopes.sum(1).view(-1, 1, 1, 1)
    lum = _luma(x).clamp(1e-4, 1)
    curved = x / lum * (0.5 - 0.5 * torch.cos(math.pi * lum))
    x = (x + view(torch.tanh(c[:, 0])) * (curved - x)).clamp(0, 1)
    # reflection needs 3 pixels a side; a smaller image repeats its border instead
    pad = "reflect" if min(x.shape[-2:]) > 2 else "replicate"
    blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode=pad), blur_kernel.to(x.dtype), groups=3)
    return (x + view(torch.tanh(s[:, 0])) * (x - blurred)).clamp(0, 1)


class DIPEnhancer(nn.Module):
    """Thumbnail CNN (5 stride-2 3x3 convs of 16-32 channels, LeakyReLU, global average, two
    linear layers) -> filter parameters -> the filters at full resolution.

    forward(images) takes an NxCxHxW tensor or a list of CxHxW tensors (each image its own
    parameters) and returns the same kind.
    """

    min_training_size = 1  # any image (enhancer.sizes)

    def __init__(self, parameter_size=256):
        super().__init__()
        self.parameter_size = parameter_size
        channels = [3, 16, 32, 32, 32, 32]
        layers = []
        for cin, cout in zip(channels, channels[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.1)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.head = nn.Sequential(nn.Linear(32, 64), nn.LeakyReLU(0.1),
                                  nn.Linear(64, sum(PARAMETERS.values())))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.register_buffer("blur_kernel", _gaussian_kernel(), persistent=False)

    def parameters_of(self, x):
        """The raw filter parameters (N x 15) of a batch."""
        thumbnail = F.interpolate(x, size=(self.parameter_size, self.parameter_size),
                                  mode="bilinear", align_corners=False)
        return self.head(self.features(thumbnail))

    def forward_batch(self, x):
        return apply_filters(x, self.parameters_of(x), self.blur_kernel)

    def forward(self, images):
        if torch.is_tensor(images):
            return self.forward_batch(images)
        return [self.forward_batch(image[None])[0] for image in images]
