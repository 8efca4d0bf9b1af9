"""Real-world images on the enhancer scripts (issue 32): mixed sizes train, constant frames train,
images under a model's minimum are refused in one line naming them (or handled), every size flag
has a range that can run, and a NaN names its step and images. Inputs are hashed before and
after, as in tests/test_user_errors.py."""

import numpy as np
import pytest
import torch

from enhancer.sizes import ZERO_DCE_MIN_TRAINING_SIZE
from enhancer.zero_dce import ZeroDCE, color_constancy_loss, zero_reference_losses
from tests.helpers import assert_user_error, run_script
from tests.test_user_errors import tree_digest
from torch_utils_lib.data.image_io import list_images, read_rgb, write_image
from torch_utils_lib.engine.loop import NonFiniteLossError, train_one_epoch
from torch_utils_lib.runtime.checkpoint import load_checkpoint, save_checkpoint


def dark_images(folder, sizes, seed=0):
    rng = np.random.default_rng(seed)
    for n, (w, h) in enumerate(sizes):
        write_image(str(folder / f"train_{n:04d}.png"),
                    rng.integers(0, 60, (h, w, 3), dtype=np.uint8))
    return folder


def train(image_dir, out, *extra):
    return run_script("enhancer/train.py", "--model", "zero_dce", "--image_dir", image_dir,
                      "--checkpoint_dir", out, "--device", "cpu", "--epochs", 1, *extra)


def assert_finite_weights(path):
    for key, value in load_checkpoint(str(path))["model"].items():
        assert torch.isfinite(value).all(), key


def test_zero_dce_trains_on_whole_images_of_mixed_sizes(tmp_path):
    """Failure 1: the study's zero_dce row runs train.py without --image_size on COCO-like sets."""
    images = dark_images(tmp_path / "dark", [(160, 128), (128, 128), (160, 128), (48, 64),
                                              (128, 128), (16, 16)])
    before = tree_digest(images)
    result = train(images, tmp_path / "run", "--batch_size", 2)
    assert result.returncode == 0, result.stderr[-2000:]
    assert tree_digest(images) == before
    assert_finite_weights(tmp_path / "run" / "last.pth")


def test_constant_frames_train_and_the_colour_loss_keeps_its_value():
    """Failure 2: equal channel means (black, 1-bit, grey) gave a NaN gradient through sqrt(0)."""
    for frame in (torch.zeros(2, 3, 32, 32), torch.full((2, 3, 32, 32), 0.5),
                  (torch.rand(1, 1, 32, 32) > 0.5).float().expand(2, 3, -1, -1)):
        frame = frame.clone().requires_grad_(True)
        color_constancy_loss(frame).backward()
        assert torch.isfinite(frame.grad).all() and not frame.grad.any()
        model = ZeroDCE(scale_factor=1)
        x = frame.detach()
        enhanced, a = model(x)
        sum(zero_reference_losses(x, enhanced, a).values()).backward()
        for name, p in model.named_parameters():
            assert torch.isfinite(p.grad).all(), name
    torch.manual_seed(0)  # elsewhere the release's value, bit for bit
    for _ in range(50):
        x = torch.rand(4, 3, 17, 23) ** 3
        r, g, b = x.mean(dim=(2, 3)).unbind(1)
        release = (((r - g) ** 2) ** 2 + ((r - b) ** 2) ** 2 + ((g - b) ** 2) ** 2).sqrt().mean()
        assert torch.equal(color_constancy_loss(x), release)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_zero_dce_trains_through_black_and_one_bit_frames(tmp_path, batch_size):
    images = dark_images(tmp_path / "dark", [(32, 32)] * 4)
    write_image(str(images / "black.png"), np.zeros((32, 32, 3), np.uint8))
    write_image(str(images / "onebit.png"),
                (np.random.default_rng(1).random((32, 32)) > 0.5).astype(np.uint8)[..., None]
                .repeat(3, 2) * 255)
    before = tree_digest(images)
    result = train(images, tmp_path / "run", "--batch_size", batch_size, "--lr", 1e-2)
    assert result.returncode == 0, result.stderr[-2000:]
    assert tree_digest(images) == before
    assert_finite_weights(tmp_path / "run" / "last.pth")


def test_images_under_zero_dce_minimum_are_refused_or_resized(tmp_path):
    """Failure 3 (training): 8x8 images; --image_size 1..15 stops at the flag."""
    images = dark_images(tmp_path / "dark", [(32, 32), (8, 8)])
    before = tree_digest(images)
    result = train(images, tmp_path / "run")
    assert_user_error(result, "train_0001.png: 8x8, smaller than the 16x16")
    assert len(result.stderr.strip().splitlines()) == 1
    for size in (1, 8, ZERO_DCE_MIN_TRAINING_SIZE - 1):
        assert_user_error(train(images, tmp_path / "run", "--image_size", size),
                          f"--image_size {size}: must be 0 or between 16 and")
    result = train(images, tmp_path / "run", "--image_size", ZERO_DCE_MIN_TRAINING_SIZE)
    assert result.returncode == 0, result.stderr[-2000:]
    assert tree_digest(images) == before


@pytest.mark.parametrize("model", ["zero_dce", "dip"])
def test_inference_enhances_tiny_images(tmp_path, model):
    """Failure 3 (inference): the DIP's reflection padding crashed on a 2x2 image."""
    if model == "zero_dce":
        enhancer, config = ZeroDCE(12), {"model": "zero_dce", "objective": "zero_reference",
                                         "scale_factor": 12, "exposure": 0.6, "image_size": 0}
    else:
        from enhancer.dip import DIPEnhancer
        enhancer = DIPEnhancer(32)
        torch.nn.init.normal_(enhancer.head[-1].weight, std=0.5)  # not the identity
        config = {"model": "dip", "objective": "frozen_detector", "parameter_size": 32}
    save_checkpoint(str(tmp_path / "last.pth"), enhancer, config)
    images = dark_images(tmp_path / "dark", [(1, 1), (2, 2), (3, 2), (1, 5), (33, 17)])
    before = tree_digest(images)
    result = run_script("enhancer/inference.py", "--weight_path", tmp_path / "last.pth",
                        "--input_dir", images, "--output_dir", tmp_path / "out", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    assert tree_digest(images) == before
    for name in list_images(images):
        assert read_rgb(str(tmp_path / "out" / name)).shape == read_rgb(str(images / name)).shape


@pytest.mark.parametrize("script,flag,value,message", [
    ("enhancer/train.py", "--parameter_size", 100000, "must be between 32 and 1024"),
    ("enhancer/train.py", "--parameter_size", 0, "must be between 32 and 1024"),
    ("enhancer/train.py", "--image_size", 100000, "must be 0 or between 16 and 2048"),
    ("enhancer/train.py", "--image_size", -1, "must be 0 or between 16 and 2048"),
    ("enhancer/train.py", "--scale_factor", 100000, "must be between 1 and 64"),
    ("genisp/train.py", "--parameter_size", 4, "must be between 8 and 1024"),
    ("mask_rcnn/train.py", "--min_size", 100000, "must be between 32 and 4096"),
    ("mask_rcnn/train.py", "--max_size", 4, "must be between 32 and 4096"),
    ("study/run.py", "--min_size", 1, "must be between 32 and 4096"),
])
def test_size_flags_have_ranges_that_run(tmp_path, script, flag, value, message):
    """Failure 4: --parameter_size 100000 asked the allocator for 120 GB."""
    out = "--output_dir" if script == "study/run.py" else "--checkpoint_dir"
    result = run_script(script, flag, value, out, tmp_path / "run")
    assert_user_error(result, f"{flag} {value}: {message}")
    assert not (tmp_path / "run").exists()


def test_a_nan_gradient_names_the_step_and_the_images():
    """A finite loss whose gradient is NaN stops before the step, naming epoch, iteration, files."""
    model = torch.nn.Linear(3, 1)
    before = model.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    names = [f"img_{i}.png" for i in range(4)]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.zeros(4, 3), torch.arange(4)), batch_size=2)

    def sqrt_at_zero(model, batch, device):  # the old colour loss's trap: finite value, NaN slope
        return {"loss": (model(batch[0]) * 0).abs().sum().sqrt() + model(batch[0]).sum() * 0}

    with pytest.raises(NonFiniteLossError) as error:
        train_one_epoch(model, optimizer, loader, torch.device("cpu"), 0, loss_fn=sqrt_at_zero,
                        batch_names=lambda batch: [names[int(i)] for i in batch[1]])
    message = str(error.value)
    assert "epoch 0, iteration 0 on images img_0.png, img_1.png" in message, message
    assert "\n" not in message
    assert torch.equal(model.weight, before)


def test_an_image_too_elongated_for_the_frozen_detector_is_refused_up_front(tmp_path):
    """The detector objectives: the detector's resize takes images up to max_size:1."""
    from tests.genisp.test_genisp_scripts import tiny_detector
    from tests.mask_rcnn.test_image_sizes import coco_set
    images, annotation = coco_set(tmp_path / "set", [(32, 32), (1, 65)])
    detector = tiny_detector(tmp_path / "detector.pth")  # 64 px input
    before = tree_digest(tmp_path / "set")
    result = run_script("enhancer/train.py", "--model", "dip", "--objective", "frozen_detector",
                        "--detector", detector, "--image_dir", images, "--annotation", annotation,
                        "--checkpoint_dir", tmp_path / "run", "--device", "cpu", "--epochs", 1)
    assert_user_error(result, "image_1x65_2.png: 1x65:", "up to 64:1")
    assert not (tmp_path / "run" / "last.pth").exists()
    assert tree_digest(tmp_path / "set") == before
