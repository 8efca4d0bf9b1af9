"""Real-world images on the diffusion scripts (issue 32): tiny (1x1, 2x2, 1xN), all-black and
mixed-size pairs train (whole images batched per size, or padded crops) to finite weights and
restore at their own size; evaluation refuses an image under SSIM's window in one line naming
it; a pair whose two images differ in size is refused before the first step. Inputs are hashed
before and after."""
import numpy as np
import pytest
import torch

from diffusion_model import evaluate, inference, train
from tests.diffusion_model.test_diffusion_cli import tiny_checkpoint
from tests.helpers import assert_user_error, run_script
from tests.test_user_errors import tree_digest
from torch_utils_lib.data.image_io import read_rgb, write_image
from torch_utils_lib.runtime.checkpoint import load_checkpoint
from torch_utils_lib.toolkit.errors import UserError

SIZES = [(1, 1), (2, 2), (1, 40), (40, 1), (24, 16), (24, 16), (16, 16)]  # (width, height)


def pairs(root, sizes=SIZES):
    """normal/ and dark/ folders of one pair per size; the last pair is all black."""
    rng = np.random.default_rng(0)
    for n, (w, h) in enumerate(sizes):
        normal = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if n == len(sizes) - 1:
            normal[:] = 0
        write_image(str(root / "normal" / f"pair_{n}.png"), normal)
        write_image(str(root / "dark" / f"pair_{n}.png"), (normal // 8).astype(np.uint8))
    return root / "normal", root / "dark"


def tiny_training(normal, dark, out, image_size):
    train.main(list(map(str, [
        "--input_image_dir", normal, "--conditional_image_dir", dark, "--checkpoint_dir", out,
        "--dim", 8, "--dim_mults", "1,2", "--timesteps", 20, "--image_size", image_size,
        "--batch_size", 2, "--epochs", 1, "--sample_every", 1, "--sample_steps", 2,
        "--checkpoint_epoch", 0, "--device", "cpu"])))


@pytest.mark.parametrize("image_size", [0, 16])
def test_training_runs_through_tiny_black_and_mixed_size_pairs(tmp_path, image_size):
    normal, dark = pairs(tmp_path)
    before = tree_digest(tmp_path)
    tiny_training(normal, dark, tmp_path / "run", image_size)
    state = load_checkpoint(str(tmp_path / "run" / "last.pth"))
    for key, value in state["model"].items():
        assert torch.isfinite(value).all(), key
    assert (tmp_path / "run" / "samples_epoch_1.png").is_file()
    for path, digest in before.items():
        assert tree_digest(tmp_path / path) == {"": digest}


def test_a_pair_of_two_sizes_is_refused_before_the_first_step(tmp_path):
    normal, dark = pairs(tmp_path, [(16, 16), (24, 16)])
    write_image(str(dark / "pair_1.png"), np.zeros((16, 20, 3), np.uint8))
    before = tree_digest(tmp_path)
    with pytest.raises(UserError, match=r"pair_1.png: size 20x16 differs from .*pair_1.png \(24x16\)"):
        tiny_training(normal, dark, tmp_path / "run", 0)
    assert not (tmp_path / "run" / "last.pth").exists()
    assert tree_digest(tmp_path) == before


def test_restoring_and_scoring_tiny_images(tmp_path):
    normal, dark = pairs(tmp_path)
    tiny_checkpoint(str(tmp_path / "model.pth"))
    before = tree_digest(tmp_path)
    inference.main(list(map(str, [
        "--conditional_image_dir", dark, "--input_image_dir", normal, "--output_dir",
        tmp_path / "restored", "--weight_path", tmp_path / "model.pth", "--steps", 2,
        "--device", "cpu"])))
    for n, (w, h) in enumerate(SIZES):
        assert read_rgb(str(tmp_path / "restored" / f"pair_{n}.png")).shape == (h, w, 3)
    for path, digest in before.items():
        assert tree_digest(tmp_path / path) == {"": digest}
    # PSNR/SSIM: SSIM's 11x11 window is the smallest image scored, said naming the first under it
    result = run_script("diffusion_model/evaluate.py", "--input_image_dir", normal,
                        "--conditional_image_dir", dark, "--restored_image_dir", tmp_path / "restored",
                        "--output_dir", tmp_path / "eval", "--device", "cpu")
    assert_user_error(result, "pair_0.png", "at least 11x11")
    assert not (tmp_path / "eval" / "metrics.json").exists()
    big = [(16, 16), (24, 16), (16, 12)]
    normal, dark = pairs(tmp_path / "big", big)
    restored = tmp_path / "big" / "restored"
    for n, (w, h) in enumerate(big):
        write_image(str(restored / f"pair_{n}.png"), read_rgb(str(dark / f"pair_{n}.png")))
    evaluate.main(list(map(str, ["--input_image_dir", normal, "--conditional_image_dir", dark,
                                 "--restored_image_dir", restored, "--output_dir",
                                 tmp_path / "big" / "eval", "--device", "cpu"])))
    assert (tmp_path / "big" / "eval" / "metrics.json").is_file()


def test_a_diverging_run_names_its_step_and_image(tmp_path):
    normal, dark = pairs(tmp_path, [(16, 16)] * 3)
    with pytest.raises(UserError, match=r"at epoch 0, iteration \d+ on image .*dark/pair_\d.png .*no "
                                        r"checkpoint was written"):
        train.main(list(map(str, [
            "--input_image_dir", normal, "--conditional_image_dir", dark, "--checkpoint_dir",
            tmp_path / "run", "--dim", 8, "--dim_mults", "1,2", "--timesteps", 20, "--image_size", 0,
            "--batch_size", 1, "--epochs", 1, "--lr", 1e30, "--max_grad_norm", 0,
            "--sample_every", 0, "--checkpoint_epoch", 0, "--device", "cpu"])))
    assert not (tmp_path / "run" / "last.pth").exists()
