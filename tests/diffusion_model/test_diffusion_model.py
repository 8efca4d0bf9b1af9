"""The UNet, the schedules, the objectives and the samplers (tiny models, no training data)."""
import pytest
import torch
from torch import nn

from diffusion_model.model import ConditionalDiffusion, UNet, build_diffusion, make_betas
from diffusion_model.model.diffusion import gaussian_noise


def tiny_unet(**kw):
    return UNet(dim=8, dim_mults=(1, 2, 4), **kw)


@pytest.mark.parametrize("size", [(13, 29), (7, 5), (32, 32), (1, 9)])
def test_unet_takes_any_size_and_crops_back(size):
    torch.manual_seed(0)
    unet = tiny_unet().eval()
    x, cond = torch.randn(2, 3, *size), torch.randn(2, 3, *size)
    out = unet(x, torch.tensor([0, 999]), cond)
    assert out.shape == (2, 3, *size)
    assert torch.isfinite(out).all()


def test_padding_is_on_the_bottom_right_only():
    """Cropping back keeps pixel alignment: an odd-sized image gives (almost) the same top-left
    output as the same content inside a larger, already aligned image."""
    torch.manual_seed(0)
    unet = tiny_unet().eval()
    x, cond = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    t = torch.tensor([500])
    full = unet(x, t, cond)
    part = unet(x[..., :31, :31], t, cond[..., :31, :31])
    # the receptive field differs only near the replicated border
    assert (full[..., :16, :16] - part[..., :16, :16]).abs().max() < 0.25 * full.abs().max()
    assert part.shape[-2:] == (31, 31)


def test_default_unet_size_is_modest():
    unet = UNet()
    params = sum(p.numel() for p in unet.parameters())
    assert 3.0e6 < params < 4.0e6  # documented as 3.6 M
    assert unet.multiple == 8
    assert unet.config["attn_levels"] == [1, 2, 3]


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("timesteps", [1000, 50])
def test_schedules_alphas_cumprod_monotone_with_right_endpoints(schedule, timesteps):
    d = ConditionalDiffusion(tiny_unet(), timesteps=timesteps, schedule=schedule)
    acp = d.alphas_cumprod.double()
    assert acp.shape == (timesteps,)
    assert (acp[1:] < acp[:-1]).all()  # strictly decreasing
    assert 0.99 < acp[0].item() < 1.0  # almost no noise at the first step
    assert acp[-1].item() < 1e-3  # pure noise at the last
    if schedule == "linear" and timesteps == 1000:
        assert acp[0].item() == pytest.approx(1 - 1e-4, abs=1e-7)  # Ho et al.'s beta_1
        assert acp[-1].item() == pytest.approx(4.036e-5, rel=1e-2)
    betas = make_betas(schedule, timesteps)
    assert betas.min() > 0 and betas.max() <= 0.999


class OracleNet(nn.Module):
    """Returns the exact eps (or v) for a known clean image: isolates the samplers' algebra."""

    def __init__(self, x0, diffusion):
        super().__init__()
        self.x0, self.channels, self.objective = x0, 3, diffusion.objective
        self.sqrt_a = diffusion.sqrt_alphas_cumprod
        self.sqrt_1ma = diffusion.sqrt_one_minus_alphas_cumprod

    def forward(self, x_t, t, cond):
        a, s = self.sqrt_a[t].view(-1, 1, 1, 1), self.sqrt_1ma[t].view(-1, 1, 1, 1)
        eps = (x_t - a * self.x0) / s
        return eps if self.objective == "eps" else a * eps - s * self.x0


@pytest.mark.parametrize("objective", ["eps", "v"])
@pytest.mark.parametrize("sampler,steps,eta", [("ddim", 1, 0.0), ("ddim", 7, 0.0), ("ddim", 7, 1.0),
                                                ("ddpm", None, 0.0)])
def test_samplers_recover_x0_from_a_perfect_network(objective, sampler, steps, eta):
    torch.manual_seed(0)
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1
    d = ConditionalDiffusion(tiny_unet(), timesteps=100, objective=objective)
    d.unet = OracleNet(x0, d)
    out = d.sample(torch.zeros_like(x0), sampler, steps=steps or 1, eta=eta)
    assert torch.allclose(out, x0, atol=1e-4)


def test_ddim_eta0_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(0)
    d = ConditionalDiffusion(tiny_unet(), timesteps=100).eval()
    cond = torch.rand(2, 3, 12, 12) * 2 - 1
    state = torch.get_rng_state()
    runs = [d.sample(cond, "ddim", steps=5, eta=0.0,
                     generators=[torch.Generator().manual_seed(i) for i in (3, 4)]) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(torch.get_rng_state(), state)
    other = d.sample(cond, "ddim", steps=5, eta=0.0,
                     generators=[torch.Generator().manual_seed(i) for i in (5, 6)])
    assert not torch.equal(runs[0], other)  # the initial noise matters, nothing else does
    noisy = [d.sample(cond, "ddim", steps=5, eta=1.0, generators=[torch.Generator().manual_seed(3)] * 2)
             for _ in range(2)]
    assert torch.equal(noisy[0], noisy[1])  # eta > 0 is reproducible from the generators too


def test_per_image_noise_does_not_depend_on_the_batch():
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    batch = gaussian_noise((3, 3, 4, 5), "cpu", gens())
    single = gaussian_noise((1, 3, 4, 5), "cpu", gens()[1:2])
    assert torch.equal(batch[1:2], single)


@pytest.mark.parametrize("objective", ["eps", "v"])
def test_both_objectives_train(objective):
    """Fitting one fixed pair: the loss at fixed steps and noise drops by over 30%."""
    torch.manual_seed(0)
    d = ConditionalDiffusion(tiny_unet(), timesteps=100, objective=objective)
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    cond = x0 * 0.3 - 0.6
    probe_t, probe_noise = torch.tensor([10, 40, 70, 95]), torch.randn_like(x0)

    def probe_loss():
        with torch.no_grad():
            x_t = d.q_sample(x0, probe_t, probe_noise)
            pred = d.unet(x_t, probe_t, cond)
            a = d.sqrt_alphas_cumprod[probe_t].view(-1, 1, 1, 1)
            s = d.sqrt_one_minus_alphas_cumprod[probe_t].view(-1, 1, 1, 1)
            target = probe_noise if objective == "eps" else a * probe_noise - s * x0
            return torch.mean((pred - target) ** 2).item()

    before = probe_loss()
    optimizer = torch.optim.Adam(d.parameters(), lr=3e-3)
    for _ in range(100):
        loss = d(x0, cond)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = probe_loss()
    assert after < 0.7 * before, (before, after)


def test_config_rebuilds_the_same_model():
    torch.manual_seed(0)
    d = ConditionalDiffusion(UNet(dim=8, dim_mults=(1, 2), num_blocks=2), timesteps=20,
                             schedule="cosine", objective="v")
    clone = build_diffusion(d.config)
    clone.load_state_dict(d.state_dict())
    assert clone.config == d.config
    assert set(d.state_dict()) == set(clone.state_dict())
    assert not any(k.startswith(("betas", "alphas")) for k in d.state_dict())  # derived, not stored
    x, cond, t = torch.randn(1, 3, 10, 10), torch.randn(1, 3, 10, 10), torch.tensor([7])
    assert torch.equal(d.unet(x, t, cond), clone.unet(x, t, cond))
    assert torch.equal(d.alphas_cumprod, clone.alphas_cumprod)
