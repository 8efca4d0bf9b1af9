"""The denoising UNet: ConvNeXt blocks, a sinusoidal time embedding, attention at coarse levels.

The noisy image x_t and the low-light condition are concatenated along channels, so the network
sees both at every pixel. It is fully convolutional: inputs of any size are padded (replicate) to
a multiple of 2**(levels - 1) and the output is cropped back.

Default size (dim=16, dim_mults=(1, 2, 4, 8), num_blocks=1): 3.6 M parameters, 2.8 GMACs per
128x128 forward pass (training speed: README, "Benchmarks").
Most parameters sit at the coarse levels, where they are cheap; the full-resolution level keeps
few channels because it dominates the cost.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


class SinusoidalTimeEmbedding(nn.Module):
    """Transformer-style sin/cos features of the (integer or fractional) diffusion step."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32)
                          * (-math.log(10000.0) / (half - 1)))
        args = t.float()[:, None] * freqs[None]
        return torch.cat((args.sin(), args.cos()), dim=-1)


class ConvNextBlock(nn.Module):
    """Depthwise 7x7 conv, time-conditioned shift, then an inverted-bottleneck MLP (as conv3x3s)."""

    def __init__(self, dim, dim_out, time_dim, mult=2):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.GELU(), nn.Linear(time_dim, dim))
        self.depthwise = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.net = nn.Sequential(
            nn.GroupNorm(1, dim),
            nn.Conv2d(dim, dim_out * mult, 3, padding=1),
            nn.GELU(),
            nn.GroupNorm(1, dim_out * mult),
            nn.Conv2d(dim_out * mult, dim_out, 3, padding=1),
        )
        self.residual = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x, time_emb):
        h = self.depthwise(x) + self.time_mlp(time_emb)[:, :, None, None]
        return self.net(h) + self.residual(x)


class LinearAttention(nn.Module):
    """Attention linear in the number of pixels, so full-resolution restoration stays affordable."""

    def __init__(self, dim, heads=4, dim_head=32):
        super().__init__()
        self.heads, self.scale = heads, dim_head ** -0.5
        hidden = heads * dim_head
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), nn.GroupNorm(1, dim))

    def forward(self, x):
        b, _, h, w = x.shape
        q, k, v = self.to_qkv(self.norm(x)).reshape(b, 3, self.heads, -1, h * w).unbind(1)
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q).reshape(b, -1, h, w)
        return x + self.to_out(out)


class Attention(nn.Module):
    """Full softmax self-attention (used once, at the coarsest resolution)."""

    def __init__(self, dim, heads=4, dim_head=32):
        super().__init__()
        self.heads = heads
        hidden = heads * dim_head
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        q, k, v = (self.to_qkv(self.norm(x)).reshape(b, 3, self.heads, -1, h * w)
                   .transpose(-1, -2).unbind(1))
        out = F.scaled_dot_product_attention(q, k, v)  # memory-efficient kernels on CPU and CUDA
        return x + self.to_out(out.transpose(-1, -2).reshape(b, -1, h, w))


class UNet(nn.Module):
    """Predicts noise (or v) for x_t given the step t and the condition image.

    dim: channels at full resolution; dim_mults: one multiplier per level (each level after the
    first halves the resolution); num_blocks: ConvNeXt blocks per level; attn_levels: indices of
    levels that get linear attention (default: all but the finest).
    """

    def __init__(self, dim=16, dim_mults=(1, 2, 4, 8), num_blocks=1, channels=3, cond_channels=3,
                 attn_levels=None, convnext_mult=2):
        super().__init__()
        dim_mults = tuple(dim_mults)
        if attn_levels is None:
            attn_levels = tuple(range(1, len(dim_mults)))
        self.config = {"dim": dim, "dim_mults": list(dim_mults), "num_blocks": num_blocks,
                       "channels": channels, "cond_channels": cond_channels,
                       "attn_levels": list(attn_levels), "convnext_mult": convnext_mult}
        self.channels = channels
        self.multiple = 2 ** (len(dim_mults) - 1)
        time_dim = dim * 4
        self.time_mlp = nn.Sequential(SinusoidalTimeEmbedding(dim), nn.Linear(dim, time_dim),
                                      nn.GELU(), nn.Linear(time_dim, time_dim))
        self.init_conv = nn.Conv2d(channels + cond_channels, dim, 7, padding=3)

        dims = [dim * m for m in dim_mults]
        self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
        in_dim = dim
        for level, level_dim in enumerate(dims):
            last = level == len(dims) - 1
            blocks = nn.ModuleList(ConvNextBlock(in_dim if i == 0 else level_dim, level_dim,
                                                 time_dim, convnext_mult)
                                   for i in range(num_blocks))
            attn = LinearAttention(level_dim) if level in attn_levels else nn.Identity()
            down = nn.Identity() if last else nn.Conv2d(level_dim, level_dim, 4, 2, 1)
            self.downs.append(nn.ModuleList([blocks, attn, down]))
            in_dim = level_dim

        mid = dims[-1]
        self.mid_block1 = ConvNextBlock(mid, mid, time_dim, convnext_mult)
        self.mid_attn = Attention(mid)
        self.mid_block2 = ConvNextBlock(mid, mid, time_dim, convnext_mult)

        for level in reversed(range(len(dims))):
            level_dim = dims[level]
            blocks = nn.ModuleList(ConvNextBlock((in_dim + level_dim) if i == 0 else level_dim,
                                                 level_dim, time_dim, convnext_mult)
                                   for i in range(num_blocks))
            attn = LinearAttention(level_dim) if level in attn_levels else nn.Identity()
            up = (nn.Identity() if level == 0 else
                  nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                nn.Conv2d(level_dim, dims[level - 1], 3, padding=1)))
            self.ups.append(nn.ModuleList([blocks, attn, up]))
            in_dim = dims[level - 1] if level > 0 else level_dim

        self.final_block = ConvNextBlock(dims[0] + dim, dim, time_dim, convnext_mult)
        self.final_conv = nn.Conv2d(dim, channels, 1)

    def forward(self, x, t, cond):
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        inp = torch.cat((x, cond), dim=1)
        if pad_h or pad_w:
            inp = F.pad(inp, (0, pad_w, 0, pad_h), mode="replicate")
        time_emb = self.time_mlp(t)

        x = self.init_conv(inp)
        first = x
        skips = []
        for blocks, attn, down in self.downs:
            for block in blocks:
                x = block(x, time_emb)
            x = attn(x)
            skips.append(x)
            x = down(x)

        x = self.mid_block2(self.mid_attn(self.mid_block1(x, time_emb)), time_emb)

        for blocks, attn, up in self.ups:
            x = torch.cat((x, skips.pop()), dim=1)
            for block in blocks:
                x = block(x, time_emb)
            x = up(attn(x))

        x = self.final_block(torch.cat((x, first), dim=1), time_emb)
        return self.final_conv(x)[..., :h, :w]
