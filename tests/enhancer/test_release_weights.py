"""The Zero-DCE++ authors' released state dict (Li-Chongyi/Zero-DCE_extension) loads as it is
and gives the release's own output; other plain state dicts are refused in one line."""
import pytest
import torch
import torch.nn.functional as F

from enhancer.models import load_enhancer
from enhancer.zero_dce import RELEASE_TEST_SCALE, ZeroDCE
from torch_utils_lib.toolkit.errors import UserError


def release_layout(model):
    """Our weights under the release's keys, with the release's curve sign (last layer negated)."""
    state = {}
    for layer, conv in enumerate(model.convs):
        for part, name in enumerate(("depth_conv", "point_conv")):
            for kind in ("weight", "bias"):
                value = getattr(conv[part], kind).detach().clone()
                if layer == 6 and part == 1:
                    value = -value
                state[f"e_conv{layer + 1}.{name}.{kind}"] = value
    return state


def release_forward(state, x, scale_factor):
    """The release's enhance_net_nopool.forward written from its model.py: maps r on the
    downscaled input, upsampled with align_corners, then x + r·(x² − x) eight times."""
    def conv(i, y):
        depth = state[f"e_conv{i}.depth_conv.weight"]
        y = F.conv2d(y, depth, state[f"e_conv{i}.depth_conv.bias"], padding=1, groups=depth.shape[0])
        return F.conv2d(y, state[f"e_conv{i}.point_conv.weight"], state[f"e_conv{i}.point_conv.bias"])
    small = x if scale_factor == 1 else F.interpolate(x, scale_factor=1 / scale_factor,
                                                      mode="bilinear")
    x1 = F.relu(conv(1, small))
    x2 = F.relu(conv(2, x1))
    x3 = F.relu(conv(3, x2))
    x4 = F.relu(conv(4, x3))
    x5 = F.relu(conv(5, torch.cat([x3, x4], 1)))
    x6 = F.relu(conv(6, torch.cat([x2, x5], 1)))
    r = torch.tanh(conv(7, torch.cat([x1, x6], 1)))
    if scale_factor != 1:
        r = F.interpolate(r, scale_factor=scale_factor, mode="bilinear", align_corners=True)
    for _ in range(8):
        x = x + r * (torch.pow(x, 2) - x)
    return x


def test_release_state_dict_gives_the_release_output(tmp_path):
    torch.manual_seed(0)
    ours = ZeroDCE(scale_factor=RELEASE_TEST_SCALE).eval()
    with torch.no_grad():
        ours.convs[6][1].bias.fill_(0.3)  # a clearly non-zero curve, so the sign matters
    state = release_layout(ours)
    path = tmp_path / "Epoch99.pth"
    torch.save(state, path)
    enhancer, detector, config = load_enhancer(str(path))
    assert detector is None
    assert config["scale_factor"] == RELEASE_TEST_SCALE and config["release"] is True
    x = torch.rand(1, 3, 48, 72)  # sides multiples of 12, as the release's test crops them
    with torch.no_grad():
        expected = release_forward(state, x, RELEASE_TEST_SCALE)
        got, _ = enhancer(x)
        own, _ = ours(x)
    assert (expected - x).abs().max() > 0.05  # the curve changes the image
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got, own, atol=1e-6)
    # DataParallel's "module." prefix loads too; --scale_factor 1 gives the release at 1
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    enhancer, _, config = load_enhancer(str(path), scale_factor=1)
    assert config["scale_factor"] == 1
    with torch.no_grad():
        assert torch.allclose(enhancer(x)[0], release_forward(state, x, 1), atol=1e-6)


def test_a_foreign_state_dict_is_refused_in_one_line(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(UserError) as error:
        load_enhancer(str(path))
    assert str(error.value).startswith(f"{path}: a state dict that is neither")
    assert "\n" not in str(error.value)
