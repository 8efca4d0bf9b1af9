"""The synthesis methods' registry: one `SynthesisMethod` entry per method, read by the synthesis
run, `dataset/data_preprocessing.py`'s flags, the study and the benches.

A new method is its own module (draw the parameters, synthesize one image) plus one entry here.
Torch-free, like the whole synthesis path.
"""
import math
from dataclasses import dataclass, field
from typing import Callable

from dataset import gamma_noise, physics
from dataset.dng import write_dng


@dataclass(frozen=True)
class RangeFlag:
    """A `--NAME LOW HIGH` flag of a method: the range one of its parameters is drawn from."""
    name: str
    default: tuple
    help: str
    positive: bool = True  # False: zero is allowed (noise variance)


@dataclass(frozen=True)
class SynthesisMethod:
    """Everything the toolkit needs of one synthesis method.

    draw(rng, settings) -> (params, rng or None): one image's parameters (and the Generator to
    go on drawing from, None where the method needs no more of it). synthesize(rgb, params, rng)
    -> (low-light uint8 RGB, RAW mosaic or None). level_settings(ev) -> the settings ranges that
    fix a darkness of `ev` stops. max_level: the darkest level in stops, past which the image
    holds no signal (`max_level_reason` says why). model(): the model's constants, written into
    synthesis.json.
    """
    name: str
    description: str
    draw: Callable
    synthesize: Callable
    level_settings: Callable
    max_level: float
    max_level_reason: str
    model: Callable
    range_flags: tuple = field(default_factory=tuple)
    write_raw: Callable | None = None  # (path, raw, params): --save_raw writes the noisy RAW

    @property
    def writes_raw(self):
        return self.write_raw is not None


def _gamma_noise_draw(rng, settings):
    return gamma_noise.draw_params(rng, settings["gamma"], settings["noise_var"]), None


def _gamma_noise_synthesize(rgb, params, rng):
    return gamma_noise.synthesize(rgb, params), None


def _gamma_noise_level(ev):
    gamma, noise_var = gamma_noise.level_params(ev)
    return {"gamma": [gamma] * 2, "noise_var": [noise_var] * 2}


def _physics_draw(rng, settings):
    return physics.draw_params(rng, settings["ratio"]), rng


def _physics_write_raw(path, raw, params):
    """The noisy mosaic as a DNG with the drawn camera's colour matrix and white balance."""
    matrix, neutral = physics.dng_color_matrix(params)
    write_dng(path, raw, physics.CFA_PATTERN, physics.BLACK_LEVEL, physics.WHITE_LEVEL, matrix,
              neutral)


SYNTHESIS_METHODS = {method.name: method for method in (
    SynthesisMethod(
        name="gamma_noise",
        description="the original project's: random gamma, Gaussian noise (dataset/gamma_noise.py)",
        draw=_gamma_noise_draw, synthesize=_gamma_noise_synthesize, level_settings=_gamma_noise_level,
        # noise_var = 0.001 * 10 ** ((EV - 2) / 5) = 4: a noise std of 2 * 127.5, the whole 0-255 range
        max_level=2.0 + 5.0 * math.log10(4.0 / 0.001),
        max_level_reason="past it the noise's standard deviation exceeds the whole 0-255 range",
        model=lambda: {"noise_std_0_255": "sqrt(noise_var) * 127.5"},
        range_flags=(RangeFlag("gamma", gamma_noise.GAMMA_RANGE, "gamma ~ U(LOW, HIGH)"),
                     RangeFlag("noise_var", gamma_noise.NOISE_VAR_RANGE,
                               "Gaussian noise variance on the [-1, 1] scale ~ U(LOW, HIGH)",
                               positive=False))),
    SynthesisMethod(
        name="physics",
        description="unprocess to RAW, Poisson-Gaussian sensor noise, process back "
                    "(dataset/physics.py)",
        draw=_physics_draw, synthesize=physics.synthesize,
        level_settings=lambda ev: {"ratio": [2.0 ** ev] * 2},
        # 2**EV = white - black: even white lands below one DN of the 14-bit sensor
        max_level=math.log2(physics.WHITE_LEVEL - physics.BLACK_LEVEL),
        max_level_reason=(f"past it even white falls below one DN of the simulated sensor's "
                          f"{physics.WHITE_LEVEL - physics.BLACK_LEVEL} DN"),
        model=physics.default_ranges,
        range_flags=(RangeFlag("ratio", physics.RATIO_RANGE,
                               "darkening ratio of the RAW signal ~ U(LOW, HIGH)"),),
        write_raw=_physics_write_raw),
)}

RAW_METHOD = next(m.name for m in SYNTHESIS_METHODS.values() if m.writes_raw)  # the study's RAW source


def default_settings(name, seed=0):
    """The synthesis settings of method `name` with its default ranges (no RAW written)."""
    method = SYNTHESIS_METHODS[name]
    return {"method": name, "seed": seed, **{f.name: list(f.default) for f in method.range_flags},
            **({"save_raw": False} if method.writes_raw else {})}
