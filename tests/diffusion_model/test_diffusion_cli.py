"""train.py / inference.py / evaluate.py on tiny models: resume, reproducibility, sizes, errors."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from diffusion_model import evaluate, inference, train
from diffusion_model.data import PairedImageDataset, resolve_names
from torch_utils_lib.data.image_io import annotation_file_names
from diffusion_model.ema import EMA
from diffusion_model.model import ConditionalDiffusion, UNet
from diffusion_model.training import load_diffusion
from torch_utils_lib.runtime.checkpoint import load_checkpoint, save_checkpoint
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.image_io import read_rgb, write_image
from torch_utils_lib.toolkit.paths import REPO_ROOT, sample_annotation, sample_images, sample_low_light
from torch_utils_lib.toolkit.atomic_io import read_jsonl

TRAIN, LOW_TRAIN = sample_images("train"), sample_low_light("train", "gamma_noise")
TINY = ["--dim", "8", "--dim_mults", "1,2,4", "--image_size", "16", "--batch_size", "4",
        "--timesteps", "50", "--sample_every", "0", "--checkpoint_epoch", "0", "--device", "cpu"]


@pytest.fixture
def subset(tmp_path):
    """The original project's annotation format naming 8 training pairs."""
    path = tmp_path / "subset.json"
    path.write_text(json.dumps({"filename": sorted(os.listdir(TRAIN))[:8]}))
    return str(path)


def tiny_checkpoint(path, seed=0):
    torch.manual_seed(seed)
    model = ConditionalDiffusion(UNet(dim=8, dim_mults=(1, 2)), timesteps=20, objective="v")
    ema = EMA(model, 0.9)
    save_checkpoint(path, model, model.config, epoch=0, ema=ema)
    return model


def test_resume_continues_exactly(tmp_path, subset):
    """1 epoch + --resume to 3 gives the same losses and weights as 3 epochs in one go."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train.main(["--checkpoint_dir", str(straight), "--annotation", subset, "--epoch", "3", *TINY])
    train.main(["--checkpoint_dir", str(split), "--annotation", subset, "--epoch", "1", *TINY])
    with pytest.raises(UserError, match="pass --resume"):
        train.main(["--checkpoint_dir", str(split), "--annotation", subset, "--epoch", "3", *TINY])
    train.main(["--checkpoint_dir", str(split), "--annotation", subset, "--epoch", "3", "--resume", *TINY])

    losses = [[r["loss"] for r in read_jsonl(d / "train_log.jsonl")] for d in (straight, split)]
    assert len(losses[0]) == 3 * 2 and losses[0] == losses[1]
    a, b = load_checkpoint(straight / "last.pth"), load_checkpoint(split / "last.pth")
    assert a["epoch"] == b["epoch"] == 2
    for key in ("model",):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert all(torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]) for k in a["ema"]["shadow"])
    assert a["config"]["unet"]["dim_mults"] == [1, 2, 4] and a["config"]["timesteps"] == 50
    assert a["config"]["objective"] == "v" and a["config"]["schedule"] == "linear"
    # the model is rebuilt from the file alone, with the EMA weights
    model, _ = load_diffusion(str(straight / "last.pth"))
    assert all(torch.equal(v, a["ema"]["shadow"][k]) for k, v in model.state_dict().items())
    run = json.loads((straight / "run.json").read_text())
    assert run["args"]["epochs"] == 3 and "torch" in run["versions"]


@pytest.mark.parametrize("objective", ["eps", "v"])
def test_train_cli_both_objectives_and_cosine(tmp_path, subset, objective):
    out = tmp_path / objective
    train.main(["--checkpoint_dir", str(out), "--annotation", subset, "--epoch", "4", "--lr", "3e-3",
                "--objective", objective, "--schedule", "cosine", "--sample_every", "4", "--sample_steps", "3",
                "--checkpoint_epoch", "2", *TINY[:-6], "--device", "cpu"])
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (out / "epoch_2.pth").is_file() and (out / "epoch_4.pth").is_file()
    assert read_rgb(str(out / "samples_epoch_4.png")).shape[1] > 500  # 6 columns
    assert load_checkpoint(out / "last.pth")["config"]["objective"] == objective


def test_annotation_formats(tmp_path):
    names = sorted(os.listdir(TRAIN))[:3]
    seed_format = tmp_path / "seed.json"
    seed_format.write_text(json.dumps({"filename": names}))
    assert resolve_names([TRAIN, LOW_TRAIN], str(seed_format)) == names
    coco = resolve_names([sample_images("val"), sample_low_light("val")], sample_annotation("val"))
    assert len(coco) == 32 and coco[0] == "val_0001.png"
    assert resolve_names([TRAIN, LOW_TRAIN]) == sorted(os.listdir(TRAIN))  # all common names
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"filename": ["nope.png"]}))
    with pytest.raises(UserError, match="nope.png: listed in"):
        resolve_names([TRAIN, LOW_TRAIN], str(missing))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        annotation_file_names(str(tmp_path / "bad.json"))


def test_pairs_get_the_same_crop_and_flip(tmp_path):
    """With the condition = the inverted image, every crop/flip must keep cond == -x0."""
    names = sorted(os.listdir(TRAIN))[:4]
    inverted = tmp_path / "inverted"
    for name in names:
        write_image(str(inverted / name), 255 - read_rgb(os.path.join(TRAIN, name)))
    torch.manual_seed(0)
    cropped = PairedImageDataset(TRAIN, str(inverted), names, image_size=24)
    for _ in range(5):
        for i in range(len(names)):
            x0, cond = cropped[i]
            assert x0.shape == cond.shape == (3, 24, 24)
            assert torch.allclose(cond, -x0, atol=1e-6)
    whole = PairedImageDataset(TRAIN, str(inverted), names)  # no crop: only the flip is random
    full = torch.from_numpy(read_rgb(os.path.join(TRAIN, names[0])).copy()).permute(2, 0, 1) / 127.5 - 1
    flipped = set()
    for _ in range(12):
        x0, cond = whole[0]
        assert torch.allclose(cond, -x0, atol=1e-6)
        assert torch.allclose(x0, full, atol=1e-6) or torch.allclose(x0, full.flip(-1), atol=1e-6)
        flipped.add(torch.allclose(x0, full.flip(-1), atol=1e-6))
    assert flipped == {True, False}


def test_inference_any_size_keeps_names_and_is_reproducible(tmp_path):
    weights = str(tmp_path / "tiny.pth")
    tiny_checkpoint(weights)
    low = tmp_path / "low"
    rng = np.random.default_rng(0)
    sizes = {"a.png": (37, 53), "b.png": (20, 30), "c.png": (37, 53)}
    for name, (h, w) in sizes.items():
        write_image(str(low / name), rng.integers(0, 60, (h, w, 3), dtype=np.uint8))
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    common = ["--conditional_image_dir", str(low), "--weight_path", weights, "--steps", "4",
              "--device", "cpu", "--input_image_dir", "", "--seed", "3"]
    inference.main([*common, "--output_image_dir", str(out1), "--batch_size", "2"])
    inference.main([*common, "--output_image_dir", str(out2), "--batch_size", "2"])
    for name, (h, w) in sizes.items():
        assert read_rgb(str(out1 / name)).shape == (h, w, 3)
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes()
    assert (out1 / "a.png").read_bytes() != (out1 / "c.png").read_bytes()  # own noise per image
    # finished images are skipped on a rerun; other settings may not mix into the same folder
    stamp = os.stat(out1 / "a.png").st_mtime_ns
    inference.main([*common, "--output_image_dir", str(out1), "--batch_size", "2"])
    assert os.stat(out1 / "a.png").st_mtime_ns == stamp
    with pytest.raises(UserError, match="other settings"):
        inference.main([*common, "--output_image_dir", str(out1), "--eta", "0.5"])
    assert (low / "a.png").is_file() and sorted(os.listdir(low)) == sorted(sizes)  # inputs untouched


def test_ddpm_sampler_through_the_cli(tmp_path):
    weights = str(tmp_path / "tiny.pth")
    tiny_checkpoint(weights)
    low = tmp_path / "low"
    write_image(str(low / "x.png"), np.full((9, 11, 3), 30, np.uint8))
    inference.main(["--conditional_image_dir", str(low), "--weight_path", weights, "--sampler", "ddpm",
                    "--output_image_dir", str(tmp_path / "out"), "--device", "cpu",
                    "--input_image_dir", ""])
    assert read_rgb(str(tmp_path / "out" / "x.png")).shape == (9, 11, 3)
    settings = json.loads((tmp_path / "out" / "restore_settings.json").read_text())
    assert settings["sampler"] == "ddpm" and settings["epoch"] == 0


def test_user_errors(tmp_path, subset):
    with pytest.raises(UserError, match="image directory not found"):
        train.main(["--input_image_dir", str(tmp_path / "nowhere"), "--checkpoint_dir", str(tmp_path)])
    with pytest.raises(UserError, match="--batch_size 0: must be between 1 and 1024"):
        train.main(["--batch_size", "0", "--checkpoint_dir", str(tmp_path)])
    with pytest.raises(UserError, match="checkpoint not found"):
        inference.main(["--weight_path", str(tmp_path / "none.pth"), "--output_image_dir", str(tmp_path)])
    not_diffusion = tmp_path / "other.pth"
    save_checkpoint(str(not_diffusion), torch.nn.Linear(2, 2), {"model": "linear"})
    with pytest.raises(UserError, match="not a diffusion checkpoint"):
        inference.main(["--weight_path", str(not_diffusion), "--output_image_dir", str(tmp_path / "o")])
    # a pair whose images differ in size
    small = tmp_path / "small"
    name = sorted(os.listdir(TRAIN))[0]
    write_image(str(small / name), np.zeros((10, 10, 3), np.uint8))
    one = tmp_path / "one.json"
    one.write_text(json.dumps([name]))
    with pytest.raises(UserError, match="differs from"):
        train.main(["--conditional_image_dir", str(small), "--annotation", str(one),
                    "--checkpoint_dir", str(tmp_path / "c"), *TINY[:-2], "--epoch", "1", "--device", "cpu"])


def test_scripts_run_from_anywhere_and_fail_in_one_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    inside = subprocess.run([sys.executable, "inference.py", "--help"], capture_output=True, text=True,
                            cwd=os.path.join(REPO_ROOT, "diffusion_model"), env=env)
    assert inside.returncode == 0 and "--sampler" in inside.stdout and "--eta" in inside.stdout
    bad = subprocess.run([sys.executable, "diffusion_model/train.py", "--conditional_img_dir",
                          str(tmp_path / "missing"), "--checkpoint_dir", str(tmp_path / "c")],
                         capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"error: {tmp_path / 'missing'}: image directory not found"


def test_ddp_two_cpu_processes(tmp_path, subset):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "diffusion_model/train.py", "--checkpoint_dir", str(out), "--annotation", subset,
         "--epoch", "1", *TINY], capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = load_checkpoint(out / "last.pth")
    assert state["epoch"] == 0
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2
    # 8 pairs sharded over 2 processes, batches of 4: one step per process
    assert len(read_jsonl(out / "train_log.jsonl")) == 1


def test_psnr_ssim_match_scikit_image(tmp_path):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from torch_utils_lib.evaluation.image_quality import score_sets
    names = sorted(os.listdir(sample_images("val")))[:3]
    low = sample_low_light("val", "gamma_noise")
    summary, per_image = score_sets(names, sample_images("val"), {"low_light": low}, progress=False)
    for record in per_image:
        ref = read_rgb(os.path.join(sample_images("val"), record["file_name"]))
        img = read_rgb(os.path.join(low, record["file_name"]))
        assert record["low_light"]["psnr"] == pytest.approx(
            peak_signal_noise_ratio(ref, img, data_range=255), abs=1e-3)
        assert record["low_light"]["ssim"] == pytest.approx(structural_similarity(
            ref, img, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False), abs=1e-3)
        assert record["low_light"]["psnr_gt_mean"] > record["low_light"]["psnr"]  # brightness fixed
    assert summary["low_light"]["psnr"]["count"] == 3


def test_evaluate_writes_table_and_json(tmp_path, capsys):
    names = sorted(os.listdir(sample_images("val")))[:2]
    restored = tmp_path / "restored"
    restored.mkdir()
    for name in names:  # a "restoration" that is the reference itself scores inf / 1.0
        shutil.copy(os.path.join(sample_images("val"), name), restored / name)
    evaluate.main(["--restored_image_dir", str(restored), "--output_dir", str(tmp_path / "eval")])
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["images"] == 2 and metrics["quality"]["restored"]["ssim"]["mean"] == pytest.approx(1.0)
    assert metrics["quality"]["restored"]["psnr"]["count"] == 0  # inf is not averaged
    assert [r["file_name"] for r in metrics["per_image"]] == names
    out = capsys.readouterr().out
    assert "low_light" in out and "PSNR GT-mean (dB)" in out
