"""Zero-DCE++ (Li, Guo and Loy, TPAMI 2021): light-enhancement curves learnt without references.

The network and the losses follow the authors' release (Li-Chongyi/Zero-DCE_extension,
Zero-DCE++/model.py, Myloss.py, lowlight_train.py) where it and the paper differ; each docstring
says which. The total loss is the release's 1600·TV(a) + L_spa + 5·L_col + 10·L_exp.
"""
import torch
import torch.nn.functional as F
from torch import nn

from enhancer.sizes import ZERO_DCE_EXPOSURE_PATCH, ZERO_DCE_MIN_TRAINING_SIZE

ITERATIONS = 8  # curve applications (paper and release)
RELEASE_TEST_SCALE = 12  # lowlight_test.py's scale_factor (the release trains at 1)
RELEASE_EXPOSURE = 0.6  # the release's E; its issue tracker advises 0.45-0.5 against over-exposure
LOSS_WEIGHTS = {"tv": 1600.0, "spatial": 1.0, "color": 5.0, "exposure": 10.0}


class SeparableConv(nn.Sequential):
    """A depthwise 3x3 convolution followed by a pointwise 1x1 one (both with bias)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels),
                         nn.Conv2d(in_channels, out_channels, 1))


def apply_curve(x, a, iterations=ITERATIONS):
    """LE(x) = x + a·x·(1 − x), applied `iterations` times with the same map `a` in [-1, 1].

    For x in [0, 1] and |a| <= 1 each step stays in [0, 1]. The paper's sign; the release writes
    x + r·(x² − x), the same curve with r = −a (tanh is odd, so the network is the same up to
    the sign of its last layer).
    """
    for _ in range(iterations):
        x = x + a * x * (1 - x)
    return x


class ZeroDCE(nn.Module):
    """Zero-DCE++: 7 depthwise-separable 3x3 conv layers of 32 channels (about 10.5k parameters).

    Layers 5-7 take the concatenation of the previous layer with layers 3, 2 and 1 (the U-like
    skips); layer 7 gives 3 tanh curve maps, shared by the 8 iterations (Zero-DCE++'s change
    from Zero-DCE's 24). The maps are estimated on the input downscaled by `scale_factor`
    (the release tests at 12, trains at 1) and upsampled bilinearly to the input's size.
    forward(x) -> (enhanced, curve maps at full resolution).
    """

    min_training_size = ZERO_DCE_MIN_TRAINING_SIZE  # the exposure loss's patch; enhancing: any

    def __init__(self, scale_factor=12, width=32):
        super().__init__()
        self.scale_factor = scale_factor
        self.convs = nn.ModuleList([SeparableConv(3, width)] +
                                   [SeparableConv(width, width) for _ in range(3)] +
                                   [SeparableConv(2 * width, width) for _ in range(2)] +
                                   [SeparableConv(2 * width, 3)])
        # depthwise and 1x1 convolutions on CPU (oneDNN) run about twice as fast channels-last
        # (forward and backward, measured at 128 px); values equal to float rounding
        self.to(memory_format=torch.channels_last)

    def curve_maps(self, x):
        small = x
        if self.scale_factor != 1:
            size = [max(1, round(s / self.scale_factor)) for s in x.shape[-2:]]
            small = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        c = self.convs
        x1 = F.relu(c[0](small.contiguous(memory_format=torch.channels_last)))
        x2 = F.relu(c[1](x1))
        x3 = F.relu(c[2](x2))
        x4 = F.relu(c[3](x3))
        x5 = F.relu(c[4](torch.cat([x3, x4], 1)))
        x6 = F.relu(c[5](torch.cat([x2, x5], 1)))
        a = torch.tanh(c[6](torch.cat([x1, x6], 1)))
        if a.shape[-2:] != x.shape[-2:]:
            a = F.interpolate(a, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return a

    def forward(self, x):
        a = self.curve_maps(x)
        return apply_curve(x, a), a


# The release's state dict (enhance_net_nopool.state_dict(), e.g. snapshots_Zero_DCE++/Epoch99.pth):
# layer N is e_conv{N}.depth_conv / .point_conv, ours convs.{N-1}.0 / .1.
LAYERS = 7


def release_key(layer, part, kind):
    return f"e_conv{layer + 1}.{('depth_conv', 'point_conv')[part]}.{kind}"


def own_key(layer, part, kind):
    return f"convs.{layer}.{part}.{kind}"


def state_layout(state):
    """'llvision', 'release' (the authors' keys, optionally DataParallel's `module.` prefix) or
    None: which Zero-DCE++ state dict `state` is, by its keys alone."""
    keys = {k[len("module."):] if k.startswith("module.") else k for k in state}
    for layout, key in (("llvision", own_key), ("release", release_key)):
        if keys == {key(layer, part, kind) for layer in range(LAYERS) for part in (0, 1)
                    for kind in ("weight", "bias")}:
            return layout
    return None


def from_release_state(state):
    """Our state dict of the release's: keys renamed, and the last layer's pointwise weight and
    bias negated (the release's curve is x + r·(x² − x), ours x + a·x·(1 − x): a = −r, and
    tanh is odd)."""
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    own = {}
    for layer in range(LAYERS):
        for part in (0, 1):
            for kind in ("weight", "bias"):
                value = state[release_key(layer, part, kind)]
                own[own_key(layer, part, kind)] = -value if (layer, part) == (LAYERS - 1, 1) else value
    return own


def luma(x):
    """The channel mean (both paper and release use it as the intensity)."""
    return x.mean(dim=1, keepdim=True)


def spatial_consistency_loss(enhanced, original):
    """L_spa: 4x4-pooled luma; each pooled pixel's differences to its 4 neighbours should be the
    same in the enhanced image as in the original.

    Release: squared difference of the signed neighbour differences, the borders compared with
    zero padding (the paper: of their absolute values, neighbours inside the image), averaged
    over pooled pixels and summed over the 4 neighbours.
    """
    e, o = F.avg_pool2d(luma(enhanced), 4), F.avg_pool2d(luma(original), 4)
    total = 0
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        de = e - _shifted(e, dy, dx)
        do = o - _shifted(o, dy, dx)
        total = total + (de - do) ** 2
    return total.mean()


def _shifted(x, dy, dx):
    """x[i + dy, j + dx] with zeros outside the image."""
    padded = F.pad(x, (1, 1, 1, 1))
    h, w = x.shape[-2:]
    return padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def exposure_loss(enhanced, exposure=RELEASE_EXPOSURE, patch=ZERO_DCE_EXPOSURE_PATCH):
    """L_exp: mean of (16x16 patch mean of luma − E)² (release; the paper's is |· − E|)."""
    return ((F.avg_pool2d(luma(enhanced), patch) - exposure) ** 2).mean()


def color_constancy_loss(enhanced):
    """L_col: channel means' pairwise differences. Release: sqrt(Σ ((J^p − J^q)²)²) per image,
    averaged (the paper: Σ (J^p − J^q)²).

    The square root is taken only where its argument is positive: the same value as the
    release's, but a frame whose channel means are equal (black, 1-bit, grey) gives the gradient
    0 (the minimum) instead of the release's NaN (sqrt's infinite slope at 0 times 0).
    """
    r, g, b = enhanced.mean(dim=(2, 3)).unbind(1)
    squared = ((r - g) ** 2) ** 2 + ((r - b) ** 2) ** 2 + ((g - b) ** 2) ** 2
    positive = squared > 0
    return torch.where(positive, torch.where(positive, squared, 1).sqrt(), 0).mean()


def total_variation_loss(a):
    """TV(a): 2·(mean squared vertical + mean squared horizontal difference), summed over the 3
    maps and averaged over the batch (release; the paper squares the sum of absolute
    gradients)."""
    n, _, h, w = a.shape
    vertical = ((a[:, :, 1:] - a[:, :, :-1]) ** 2).sum() / ((h - 1) * w)
    horizontal = ((a[:, :, :, 1:] - a[:, :, :, :-1]) ** 2).sum() / (h * (w - 1))
    return 2 * (vertical + horizontal) / n


def zero_reference_losses(original, enhanced, a, exposure=RELEASE_EXPOSURE):
    """The weighted terms of the release's loss, by name (their sum is what is minimised)."""
    return {"loss_tv": LOSS_WEIGHTS["tv"] * total_variation_loss(a),
            "loss_spatial": LOSS_WEIGHTS["spatial"] * spatial_consistency_loss(enhanced, original),
            "loss_color": LOSS_WEIGHTS["color"] * color_constancy_loss(enhanced),
            "loss_exposure": LOSS_WEIGHTS["exposure"] * exposure_loss(enhanced, exposure)}


class ZeroReferenceObjective(nn.Module):
    """Zero-DCE++ with its loss, for engine.fit: forward(images) -> the loss terms (training)."""

    def __init__(self, model, exposure=RELEASE_EXPOSURE):
        super().__init__()
        self.model, self.exposure = model, exposure

    def forward(self, images):
        enhanced, a = self.model(images)
        return zero_reference_losses(images, enhanced, a, self.exposure)
