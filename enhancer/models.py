"""Enhancer checkpoints: which model, which objective, rebuilding them, enhancing image folders.

A checkpoint's `model` holds the enhancer's state dict, except for the `joint` objective, whose
`model` is the enhancer and the fine-tuned detector together (keys `image_module.*` and
`detector.*`); `config` names the model (`zero_dce`, `dip`), the objective and what rebuilds
them (scale_factor or parameter_size, exposure, the detector and its config).
"""
import os

import torch

from enhancer.dip import DIPEnhancer
from enhancer.zero_dce import RELEASE_TEST_SCALE, ZeroDCE, from_release_state, state_layout
from torch_utils_lib.runtime.checkpoint import is_plain_state_dict, read_state
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.models.detectors import build_detector, load_detector_weights
from torch_utils_lib.runtime.devices import autocast
from torch_utils_lib.data.image_io import read_rgb, write_image
from torch_utils_lib.toolkit.progress import progress
from torch_utils_lib.data.transforms import to_tensor, to_uint8

MODELS = ("zero_dce", "dip")
OBJECTIVES = {"zero_dce": ("zero_reference",), "dip": ("frozen_detector", "joint")}


def build_enhancer(config):
    """The (untrained) enhancer a config describes."""
    if config["model"] == "zero_dce":
        return ZeroDCE(config["scale_factor"])
    return DIPEnhancer(config["parameter_size"])


def split_joint_state(state):
    """(enhancer state, detector state) of a joint checkpoint's combined state dict."""
    parts = {"image_module.": {}, "detector.": {}}
    for key, value in state.items():
        for prefix, part in parts.items():
            if key.startswith(prefix):
                part[key[len(prefix):]] = value
    return parts["image_module."], parts["detector."]


def read_enhancer_state(path):
    """(checkpoint dict with 'model' and 'config') of an enhancer/train.py checkpoint or of the
    Zero-DCE++ authors' released state dict as it is (Li-Chongyi/Zero-DCE_extension,
    snapshots_Zero_DCE++/Epoch99.pth; recognised by its keys, zero_dce.state_layout), whose
    config is the release's test setting (scale factor 12, config "release": True). Anything
    else is refused in one line."""
    state = read_state(path)
    if is_plain_state_dict(state):
        if state_layout(state) == "release":
            return {"model": from_release_state(state),
                    "config": {"model": "zero_dce", "objective": "zero_reference",
                               "scale_factor": RELEASE_TEST_SCALE, "release": True}}
        raise UserError(f"{path}: a state dict that is neither the Zero-DCE++ release's "
                        f"(e_conv1.depth_conv.weight ... e_conv7.point_conv.bias) nor an "
                        f"enhancer/train.py checkpoint (first key {next(iter(state))!r})")
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"{path}: not an enhancer/train.py checkpoint nor the Zero-DCE++ "
                        f"release's state dict (no 'model' state dict, no e_conv1.* keys)")
    return state


def load_enhancer(path, device="cpu", scale_factor=None):
    """(enhancer in eval mode, the joint detector in eval mode or None, config) of a checkpoint
    or of the Zero-DCE++ release's state dict (read_enhancer_state). `scale_factor` replaces a
    Zero-DCE++ checkpoint's (the thumbnail its curve maps are estimated on)."""
    state = read_enhancer_state(path)
    config = dict(state.get("config") or {})
    if config.get("model") not in MODELS:
        raise UserError(f"{path}: not an enhancer/train.py checkpoint (config model is "
                        f"{config.get('model')!r})")
    if scale_factor is not None:
        if config["model"] != "zero_dce":
            raise UserError(f"--scale_factor {scale_factor}: only for Zero-DCE++ weights; {path} "
                            f"is a {config['model']} enhancer")
        config["scale_factor"] = scale_factor
    enhancer, detector, weights = build_enhancer(config), None, state["model"]
    if config.get("objective") == "joint":
        weights, detector_weights = split_joint_state(weights)
        dc = config["detector_config"]
        detector = build_detector(dc["model"], dc["num_classes"], "none",
                                  min_size=dc.get("min_size"), max_size=dc.get("max_size"))
        load_detector_weights(detector, detector_weights, path)
        detector = detector.to(device).eval()
    enhancer.load_state_dict(weights)
    return enhancer.to(device).eval(), detector, config


@torch.no_grad()
def enhance(enhancer, image, device, amp=False):
    """One HxWx3 uint8 image through the enhancer -> HxWx3 uint8."""
    x = to_tensor(image)[None].to(device)
    with autocast(torch.device(device), amp):
        out = enhancer(x)
    out = out[0] if isinstance(out, tuple) else out  # Zero-DCE++ also returns its curve maps
    return to_uint8(out[0].float().cpu())


def enhance_folder(enhancer, input_dir, names, output_dir, device, amp=False):
    """Enhance `input_dir/<name>` into `output_dir/<name>` (atomic writes, same names)."""
    for name in progress(names, desc="enhancing"):
        write_image(os.path.join(output_dir, name),
                    enhance(enhancer, read_rgb(os.path.join(input_dir, name)), device, amp))
