"""enhancer/zero_dce.py: the curve, each loss term by hand, the size, and a short real training."""
import os

import torch

from enhancer.data import DarkImages, image_names
from enhancer.zero_dce import (ZeroDCE, ZeroReferenceObjective, apply_curve, color_constancy_loss,
                               exposure_loss, spatial_consistency_loss, total_variation_loss)
from torch_utils_lib.toolkit.paths import sample_low_light


def test_curve_is_the_identity_at_zero_and_stays_in_the_unit_range():
    x = torch.linspace(0, 1, 101).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    assert torch.equal(apply_curve(x, torch.zeros_like(x)), x)
    for a in (-1.0, -0.3, 0.5, 1.0):
        y = apply_curve(x, torch.full_like(x, a))
        assert y.min() >= 0 and y.max() <= 1
    # one step by hand: 0.25 + 0.5 * 0.25 * 0.75
    assert abs(apply_curve(torch.tensor(0.25), torch.tensor(0.5), 1).item() - 0.34375) < 1e-7
    assert apply_curve(torch.tensor(0.2), torch.tensor(1.0)) > 0.9  # 8 steps brighten a lot


def test_exposure_loss_by_hand():
    x = torch.zeros(1, 3, 16, 32)
    x[..., :16] = 0.2  # two 16x16 patches of luma 0.2 and 0
    # ((0.2 - 0.6)^2 + (0 - 0.6)^2) / 2
    assert abs(exposure_loss(x, 0.6).item() - (0.16 + 0.36) / 2) < 1e-6
    assert abs(exposure_loss(torch.full((1, 3, 16, 16), 0.5), 0.5).item()) < 1e-12


def test_color_constancy_loss_by_hand():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0], x[0, 1] = 0.5, 0.2
    # sqrt((0.3^2)^2 + (0.5^2)^2 + (0.2^2)^2)
    expected = (0.09 ** 2 + 0.25 ** 2 + 0.04 ** 2) ** 0.5
    assert abs(color_constancy_loss(x).item() - expected) < 1e-6


def test_total_variation_loss_by_hand():
    a = torch.zeros(1, 1, 2, 3)
    a[0, 0, 0] = torch.tensor([0.0, 1.0, 0.0])
    # vertical: (0, 1, 0)^2 summed = 1 over 1*3; horizontal: row0 (1, 1) = 2 over 2*2
    assert abs(total_variation_loss(a).item() - 2 * (1 / 3 + 2 / 4)) < 1e-6


def test_spatial_consistency_loss_by_hand():
    original = torch.zeros(1, 3, 4, 8)
    enhanced = torch.zeros(1, 3, 4, 8)
    enhanced[..., :4] = 0.4  # pooled: [0.4, 0] against [0, 0]
    # left pixel: left/up/down neighbours are padding: (0.4)^2 each, right: (0.4 - 0)^2;
    # right pixel: its left neighbour differs by -0.4: (0.4)^2; the rest 0. Mean over 2 pixels.
    assert abs(spatial_consistency_loss(enhanced, original).item() - 5 * 0.16 / 2) < 1e-6
    assert spatial_consistency_loss(original, original).item() == 0


def test_parameter_count_and_shapes():
    model = ZeroDCE(scale_factor=12)
    assert 10_000 <= sum(p.numel() for p in model.parameters()) <= 11_000
    out, a = model(torch.rand(2, 3, 50, 70))
    assert out.shape == a.shape == (2, 3, 50, 70)
    assert out.min() >= 0 and out.max() <= 1


def test_short_training_moves_the_exposure_towards_e():
    torch.manual_seed(0)
    image_dir = sample_low_light("train", "gamma_noise")
    images = torch.stack([DarkImages(image_dir, image_names(image_dir), 64)[i] for i in range(16)])
    model = ZeroDCE(scale_factor=1)
    objective = ZeroReferenceObjective(model, exposure=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def mean_exposure():
        with torch.no_grad():
            return model(images)[0].mean().item()

    before = mean_exposure()
    for step in range(30):
        batch = images[(step % 2) * 8:(step % 2) * 8 + 8]
        loss = sum(objective(batch).values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
    after = mean_exposure()
    assert images.mean().item() < 0.2  # the sample's low light is dark
    assert abs(after - 0.5) < abs(before - 0.5) - 0.05, (before, after)
