"""User errors as a class: inputs are never written, and every user error is one `error:` line.

The scripts run as a user runs them (tests.helpers.run_script); inputs are hashed before and after.
"""
import hashlib
import json
import os
import shutil
import stat

import numpy as np
import pytest
import torch

from tests.helpers import assert_user_error, run_script
from torch_utils_lib.toolkit.errors import UserError, user_error_message
from torch_utils_lib.toolkit.guards import check_outputs_apart
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images, sample_low_light

COUNT = 4


def tree_digest(root):
    """{relative path: sha256} of every file under `root` (or of `root` itself)."""
    if os.path.isfile(root):
        return {"": hashlib.sha256(open(root, "rb").read()).hexdigest()}
    digest = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            digest[os.path.relpath(path, root)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return digest


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """4 normal/low-light pairs of the sample val set, their COCO file and a file-name list."""
    root = tmp_path_factory.mktemp("inputs")
    with open(sample_annotation("val")) as f:
        coco = json.load(f)
    coco["images"] = coco["images"][:COUNT]
    ids = {i["id"] for i in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    names = [i["file_name"] for i in coco["images"]]
    for folder, source in (("normal", sample_images("val")), ("low", sample_low_light("val"))):
        os.makedirs(root / folder)
        for name in names:
            shutil.copy(os.path.join(source, name), root / folder / name)
    (root / "annotations").mkdir()
    (root / "annotations" / "coco.json").write_text(json.dumps(coco))
    (root / "low" / "list.json").write_text(json.dumps(
        {"filename": [str(root / "low" / n) for n in names]}))
    (root / "low" / "dotdot.json").write_text(json.dumps({"filename": [f"../low/{n}" for n in names]}))
    absolute = {**coco, "images": [{**i, "file_name": str(root / "normal" / i["file_name"])}
                                   for i in coco["images"]]}
    (root / "annotations" / "absolute.json").write_text(json.dumps(absolute))
    (root / "weights.pth").write_bytes(b"checked before it is read")
    (root / "raw").mkdir()
    (root / "raw" / "a.dng").write_bytes(b"checked before it is read")
    return root


# (script, args with {root} for the inputs folder, the flag the message names)
COLLISIONS = {
    "synthesis into its input": ("dataset/data_preprocessing.py",
                                 ["--input_dir", "{root}/normal", "--output_dir", "{root}/normal/..//normal"],
                                 "--output_dir"),
    "synthesis run.json onto the annotation": (
        "dataset/data_preprocessing.py", ["--input_dir", "{root}/normal", "--output_dir", "{out}/syn",
                                          "--annotation", "{root}/annotations/coco.json",
                                          "--run_json", "{root}/annotations/coco.json"], "--run_json"),
    "synthesis preview into the input folder": (
        "dataset/data_preprocessing.py", ["--input_dir", "{root}/normal", "--output_dir", "{out}/syn",
                                          "--preview", "{root}/normal/preview.png"], "--preview"),
    "subset over its annotation": ("dataset/make_subset.py",
                                   ["--annotation", "{root}/annotations/coco.json", "--no_copy",
                                    "--num_images", "2", "--output_dir", "{root}/annotations"],
                                   "--output_dir"),
    "subset through a symlink": ("dataset/make_subset.py",
                                 ["--annotation", "{root}/annotations/coco.json", "--image_dir",
                                  "{root}/normal", "--num_images", "2", "--output_dir", "{out}/link"],
                                 "--output_dir"),
    "mask_rcnn inference into its images": ("mask_rcnn/inference.py",
                                            ["--image_dir", "{root}/low", "--weight_path",
                                             "{root}/weights.pth", "--output_dir", "{root}/low"],
                                            "--output_dir"),
    "mask_rcnn evaluate into the low-light set": (
        "mask_rcnn/evaluate.py", ["--normal_light_img_dir", "{root}/normal", "--low_light_img_dir",
                                  "{root}/low", "--annotation", "{root}/annotations/coco.json",
                                  "--weight_path", "{root}/weights.pth", "--output_dir", "{root}"],
        "--output_dir"),
    "mask_rcnn train into the annotation folder": (
        "mask_rcnn/train.py", ["--image_dir", "{root}/normal", "--annotation",
                               "{root}/annotations/coco.json", "--checkpoint_dir", "{root}/annotations"],
        "--checkpoint_dir"),
    "diffusion restore onto its inputs": ("diffusion_model/inference.py",
                                          ["--conditional_image_dir", "{root}/low", "--weight_path",
                                           "{root}/weights.pth", "--output_image_dir", "{root}/low",
                                           "--overwrite"], "--output_dir"),
    "diffusion restore onto absolute names of a list": (
        "diffusion_model/inference.py", ["--conditional_image_dir", "{root}/low", "--annotation",
                                         "{root}/low/list.json", "--weight_path", "{root}/weights.pth",
                                         "--output_image_dir", "{out}/restored", "--input_image_dir", ""],
        "--output_dir (with an --annotation entry)"),
    "diffusion train into the condition folder": (
        "diffusion_model/train.py", ["--input_image_dir", "{root}/normal", "--conditional_image_dir",
                                     "{root}/low", "--checkpoint_dir", "{root}/low/ckpt", "--device", "cpu"],
        "--checkpoint_dir"),
    "diffusion evaluate into the restored folder": (
        "diffusion_model/evaluate.py", ["--input_image_dir", "{root}/normal", "--conditional_image_dir",
                                        "", "--restored_image_dir", "{root}/low", "--output_dir",
                                        "{root}/low"], "--output_dir"),
    "enhancement onto its reference set": ("dataset/enhance.py",
                                           ["--method", "gamma", "--input_dir", "{root}/low",
                                            "--reference_dir", "{root}/normal", "--output_dir",
                                            "{root}/normal"], "--output_dir"),
    "enhancement into the default reference set": ("dataset/enhance.py",
                                                   ["--method", "clahe", "--input_dir", "{root}/low",
                                                    "--output_dir", sample_images("train")],
                                                   "--output_dir"),
    "enhancement beside its input through a symlinked folder": (
        "dataset/enhance.py", ["--method", "histeq", "--input_dir", "{root}/normal",
                               "--output_dir", "{out}/link/.."], "--output_dir"),
    "ExDark conversion inside the image folder": (
        "dataset/convert_exdark.py", ["--image_dir", "{root}/normal", "--annotation_dir",
                                      "{root}/annotations", "--class_list",
                                      "{root}/annotations/coco.json", "--output_dir",
                                      "{root}/normal/coco"], "--output_dir"),
    "ExDark conversion over the class list's folder": (
        "dataset/convert_exdark.py", ["--image_dir", "{root}/normal", "--annotation_dir",
                                      "{root}/low", "--class_list", "{root}/annotations/coco.json",
                                      "--output_dir", "{root}/annotations"], "--output_dir"),
    "genisp inference into the RAW folder": ("genisp/inference.py",
                                             ["--raw_dir", "{root}/raw", "--weight_path",
                                              "{root}/weights.pth", "--output_dir", "{root}/raw"],
                                             "--output_dir"),
    "genisp train caches into the RAW folder": (
        "genisp/train.py", ["--raw_dir", "{root}/raw", "--checkpoint_dir", "{out}/genisp",
                            "--cache_dir", "{root}/raw/cache"], "--cache_dir"),
    "enhance into the annotation folder": (
        "dataset/enhance.py", ["--method", "clahe", "--input_dir", "{root}/low", "--annotation",
                               "{root}/annotations/coco.json", "--output_dir", "{root}/annotations"],
        "--output_dir"),
    "ExDark conversion inside its images": (
        "dataset/convert_exdark.py", ["--image_dir", "{root}/normal", "--annotation_dir", "{root}/low",
                                      "--class_list", "{root}/annotations/coco.json", "--output_dir",
                                      "{root}/normal/coco"], "--output_dir"),
    "genisp evaluate into the RAW folder": ("genisp/evaluate.py",
                                            ["--raw_dir", "{root}/raw", "--pipelines", "minimal",
                                             "--output_dir", "{root}/raw/eval"], "--output_dir"),
}


@pytest.mark.parametrize("case", list(COLLISIONS))
def test_inputs_are_never_written(inputs, tmp_path, case):
    script, args, flag = COLLISIONS[case]
    os.symlink(inputs / "normal", tmp_path / "link")
    before = tree_digest(inputs)
    result = run_script(script, *[a.format(root=inputs, out=tmp_path) for a in args])
    assert_user_error(result, "inputs are never written", f"choose another {flag}")
    assert tree_digest(inputs) == before
    assert sorted(os.listdir(tmp_path)) == ["link"]  # nothing written elsewhere either


@pytest.mark.parametrize("names", ["absolute", "parent"])
def test_enhancement_refuses_listed_names_outside_its_input(inputs, tmp_path, names):
    """A list naming images by absolute path or `../` would write the enhanced images onto them."""
    listed = [str(inputs / "low" / n) if names == "absolute" else f"../low/{n}"
              for n in sorted(os.listdir(inputs / "normal"))]
    (tmp_path / "list.json").write_text(json.dumps({"filename": listed}))
    before = tree_digest(inputs)
    result = run_script("dataset/enhance.py", "--method", "clahe", "--input_dir",
                        inputs / ("low" if names == "absolute" else "normal"), "--annotation",
                        tmp_path / "list.json", "--output_dir", tmp_path / "out")
    assert_user_error(result, "list.json", "points outside")
    assert tree_digest(inputs) == before and not (tmp_path / "out").exists()


# list files naming absolute and `../` paths: (script, args, what the line says)
LISTED_OUTSIDE = {
    "enhancement of absolute names into its input": (
        "dataset/enhance.py", ["--method", "clahe", "--input_dir", "{root}/low", "--annotation",
                               "{root}/low/list.json", "--output_dir", "{out}/enhanced"]),
    "enhancement of ../ names": (
        "dataset/enhance.py", ["--method", "histeq", "--input_dir", "{root}/low", "--annotation",
                               "{root}/low/dotdot.json", "--output_dir", "{out}/enhanced"]),
    "enhancement of a COCO file with absolute names": (
        "dataset/enhance.py", ["--method", "clahe", "--input_dir", "{root}/normal", "--annotation",
                               "{root}/annotations/absolute.json", "--output_dir", "{out}/enhanced"]),
    "gamma reference of absolute names": (
        "dataset/enhance.py", ["--method", "gamma", "--input_dir", "{root}/low", "--reference_dir",
                               "{root}/normal", "--reference_annotation",
                               "{root}/annotations/absolute.json", "--output_dir", "{out}/enhanced"]),
    "subset copies of absolute names": (
        "dataset/make_subset.py", ["--annotation", "{root}/annotations/absolute.json", "--image_dir",
                                   "{root}/normal", "--num_images", "2", "--output_dir", "{out}/sub"]),
    "diffusion restore of ../ names": (
        "diffusion_model/inference.py", ["--conditional_image_dir", "{root}/low", "--annotation",
                                         "{root}/low/dotdot.json", "--weight_path",
                                         "{root}/weights.pth", "--output_image_dir",
                                         "{out}/restored", "--input_image_dir", ""]),
}


@pytest.mark.parametrize("case", list(LISTED_OUTSIDE))
def test_listed_names_never_leave_their_folders(inputs, tmp_path, case):
    script, args = LISTED_OUTSIDE[case]
    before = tree_digest(inputs)
    result = run_script(script, *[a.format(root=inputs, out=tmp_path) for a in args])
    assert result.returncode == 2
    assert_user_error(result, "points outside", "must be relative to it, without '..'")
    assert tree_digest(inputs) == before
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("reads, writes, clash", [
    ({"-i": "a"}, {"-o": "b"}, None),
    ({"-i": "a"}, {"-o": "a"}, "is"),
    ({"-i": "a"}, {"-o": "a/sub/x.png"}, "lies inside"),
    ({"-i": "a/f.json"}, {"-o": "a"}, "contains"),
    ({"-i": "a/f.json"}, {"-o": "./a/../a/f.json"}, "is"),
    ({"-i": "a/f.json"}, {"-o": "a/g.json"}, None),
    ({"-i": "b_link"}, {"-o": "a"}, "is"),
    ({"-i": "a"}, {"-o": "a_sibling"}, None),
    ({"-i": "missing"}, {"-o": "missing"}, None),  # a read that does not exist cannot be written
    ({"-i": ["b", "a/f.json"]}, {"-o": [None, "c", "{tmp}/a/f.json"]}, "is"),
])
def test_check_outputs_apart(tmp_path, monkeypatch, reads, writes, clash):
    monkeypatch.chdir(tmp_path)
    os.makedirs("a/sub")
    os.makedirs("b")
    open("a/f.json", "w").close()
    os.symlink("a", "b_link")
    writes = {k: [p.format(tmp=tmp_path) if p else p for p in v] if isinstance(v, list) else v
              for k, v in writes.items()}
    if clash is None:
        check_outputs_apart(reads, writes)
        return
    with pytest.raises(UserError, match=f"-o {clash} the input") as error:
        check_outputs_apart(reads, writes)
    assert "choose another -o" in str(error.value)


# ------------------------------------------------------------ errors in DataLoader workers

class _BadImages(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise UserError(f"img_{index}.png: cannot read image (truncated)")


def test_worker_user_error_keeps_its_one_line():
    loader = torch.utils.data.DataLoader(_BadImages(), num_workers=1)
    with pytest.raises(UserError) as error:
        next(iter(loader))
    assert "worker process" in str(error.value)  # how torch re-raises it
    assert user_error_message(error.value) == "img_0.png: cannot read image (truncated)"


@pytest.fixture(scope="module")
def light_state_dict(tmp_path_factory):
    """A plain torch.save(model.state_dict()) of the light detector with 4 classes."""
    from torch_utils_lib.models.detectors import build_detector
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "light_state_dict.pth"
    torch.save(build_detector("maskrcnn_resnet18_fpn", 4, "none", min_size=64, max_size=64).state_dict(), path)
    return path


def test_worker_error_in_a_script_is_one_line(inputs, tmp_path, light_state_dict):
    low = tmp_path / "low"
    shutil.copytree(inputs / "low", low)
    name = sorted(n for n in os.listdir(low) if n.endswith(".png"))[1]
    (low / name).write_bytes((low / name).read_bytes()[:200])  # truncated
    result = run_script("mask_rcnn/evaluate.py", "--normal_light_img_dir", inputs / "normal",
                        "--low_light_img_dir", low, "--annotation", inputs / "annotations" / "coco.json",
                        "--weight_path", light_state_dict, "--pretrained", "none", "--count", 0,
                        "--workers", 1, "--device", "cpu", "--output_dir", tmp_path / "eval")
    assert_user_error(result, f"{low / name}: cannot read image")
    assert "DataLoader worker" not in result.stderr


# ------------------------------------------------------------ devices, disks, file names

@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_inference_on_missing_cuda_is_one_line(inputs, tmp_path, light_state_dict):
    result = run_script("mask_rcnn/inference.py", "--image_dir", inputs / "low", "--weight_path",
                        light_state_dict, "--output_dir", tmp_path / "out", "--device", "cuda")
    assert_user_error(result, "--device cuda: CUDA is not available")


def test_unwritable_output_is_one_line_naming_the_path(inputs, tmp_path, light_state_dict):
    """A regular file where a folder is needed fails as root too (chmod would not)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for script, args in (
            ("mask_rcnn/inference.py", ["--image_dir", inputs / "low", "--weight_path", light_state_dict,
                                        "--output_dir", blocker / "out", "--device", "cpu"]),
            ("dataset/make_subset.py", ["--annotation", inputs / "annotations" / "coco.json",
                                        "--no_copy", "--num_images", 2, "--output_dir", blocker / "sub"])):
        result = run_script(script, *args)
        assert_user_error(result, str(blocker))


def test_atomic_write_failure_names_the_target(tmp_path):
    from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=f"^{tmp_path / 'file' / 'x.json'}: cannot write"):
        atomic_write_bytes(str(tmp_path / "file" / "x.json"), b"{}")
    (tmp_path / "dir.json").mkdir()  # os.replace onto a folder fails; no temporary is left
    with pytest.raises(UserError, match="dir.json: cannot write"):
        atomic_write_bytes(str(tmp_path / "dir.json"), b"{}")
    assert sorted(os.listdir(tmp_path)) == ["dir.json", "file"]


def _write_png(path):
    from torch_utils_lib.data.image_io import write_image
    write_image(path, np.full((16, 16, 3), 128, np.uint8))


def test_listing_skips_fifos_and_undecodable_names(tmp_path, capsys):
    from torch_utils_lib.data.image_io import list_images, read_rgb
    _write_png(str(tmp_path / "good.png"))
    os.mkfifo(tmp_path / "pipe.png")
    with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.png"), "wb") as f:
        f.write((tmp_path / "good.png").read_bytes())
    assert list_images(str(tmp_path)) == ["good.png"]
    assert "skipped 1 file(s) whose names are not valid UTF-8" in capsys.readouterr().err
    with pytest.raises(UserError, match="pipe.png: not a regular file"):
        read_rgb(str(tmp_path / "pipe.png"))


def test_synthesis_finishes_beside_a_fifo_and_a_non_utf8_name(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        _write_png(str(src / f"{i}.png"))
    os.mkfifo(src / "x.png")
    with open(os.path.join(os.fsencode(src), b"caf\xe9.png"), "wb") as f:
        f.write((src / "0.png").read_bytes())
    result = run_script("dataset/data_preprocessing.py", "--input_dir", src, "--output_dir",
                        tmp_path / "out", "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "not valid UTF-8" in result.stderr
    assert sorted(n for n in os.listdir(tmp_path / "out") if n.endswith(".png")) == ["0.png", "1.png"]
    assert stat.S_ISFIFO(os.stat(src / "x.png").st_mode)


# ------------------------------------------------------------ numbers that are not numbers

@pytest.mark.parametrize("steps", [2, 5])
def test_ddim_cosine_eta_one_stays_finite(steps):
    from diffusion_model.model import ConditionalDiffusion, UNet
    torch.manual_seed(0)
    diffusion = ConditionalDiffusion(UNet(dim=8, dim_mults=(1, 2)), timesteps=1000,
                                     schedule="cosine", objective="v").eval()
    assert diffusion.alphas_cumprod[-1] < 1e-8  # the corner where 1 - a - sigma^2 rounds below 0
    cond = torch.rand(2, 3, 16, 16) * 2 - 1
    out = diffusion.sample(cond, "ddim", steps=steps, eta=1.0,
                           generators=[torch.Generator().manual_seed(i) for i in range(2)])
    assert out.shape == cond.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="eta"):
        diffusion.sample(cond, "ddim", steps=steps, eta=1.5)


@pytest.mark.parametrize("eta, problem", [("1.5", "must be between 0 and 1"),
                                          ("-0.1", "must be between 0 and 1"),
                                          ("nan", "not a finite number")])
def test_eta_outside_zero_one_is_refused(inputs, tmp_path, eta, problem):
    result = run_script("diffusion_model/inference.py", "--conditional_image_dir", inputs / "low",
                        "--weight_path", inputs / "weights.pth", "--output_image_dir", tmp_path / "o",
                        "--eta", eta)
    assert_user_error(result, f"--eta {eta}: {problem}")


def test_images_holding_nan_are_not_written(tmp_path):
    from torch_utils_lib.data.image_io import write_image
    from torch_utils_lib.data.transforms import to_uint8
    image = torch.zeros(3, 4, 4)
    image[1, 2, 2] = float("nan")
    with pytest.raises(UserError, match="not finite"):
        to_uint8(image)
    with pytest.raises(UserError, match="not finite"):
        write_image(str(tmp_path / "x.png"), np.full((4, 4, 3), np.inf, np.float32))
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------ checkpoints and resume

def _regression_fit(checkpoint_dir, epochs, start_epoch=0, model=None, on_epoch_end=None):
    from torch_utils_lib.engine.loop import fit
    from torch_utils_lib.engine.hooks import Hook
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)),
                                         batch_size=4)
    model = model or torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = lambda m, batch, device: {"mse": torch.nn.functional.mse_loss(m(batch[0]), batch[1])}
    hooks = []
    if on_epoch_end is not None:
        class AtEpochEnd(Hook):
            def after_epoch(self, epoch, record):
                return on_epoch_end(epoch)
        hooks.append(AtEpochEnd())
    return fit(model, optimizer, None, loader, torch.device("cpu"), epochs=epochs,
               checkpoint_dir=str(checkpoint_dir), config={"model": "linear"}, start_epoch=start_epoch,
               loss_fn=loss, hooks=hooks)


def test_killed_run_leaves_no_temporary_and_no_repeated_log_lines(tmp_path):
    """SIGKILL during the first last.pth: a stale temporary and a log of epoch 0, no checkpoint."""
    from torch_utils_lib.toolkit.atomic_io import read_jsonl
    run = tmp_path / "run"
    run.mkdir()
    stale = run / ".last.pth.4194999.0.tmp"  # above Linux's default pid_max: no such process
    stale.write_bytes(b"half a checkpoint")
    foreign = run / ".notes.tmp"  # not of our pattern: kept
    foreign.write_text("")
    (run / "train_log.jsonl").write_text("".join(
        json.dumps({"epoch": 0, "iteration": i, "loss": 1.0}) + "\n" for i in range(3)))
    _regression_fit(run, epochs=2)
    assert not stale.exists() and foreign.exists()
    assert [(r["epoch"], r["iteration"]) for r in read_jsonl(run / "train_log.jsonl")] == [
        (e, i) for e in range(2) for i in range(4)]


def test_finished_epoch_is_kept_when_extras_fail(tmp_path, capsys):
    (tmp_path / "plot" / "loss_curve.png").mkdir(parents=True)  # the plot cannot be written
    _regression_fit(tmp_path / "plot", epochs=1)
    assert (tmp_path / "plot" / "last.pth").is_file()
    assert "loss curve not drawn" in capsys.readouterr().err

    def failing_preview(epoch):
        raise UserError(f"preview_{epoch}.png: cannot write (No space left on device)")
    with pytest.raises(UserError, match="No space left"):
        _regression_fit(tmp_path / "preview", epochs=3, on_epoch_end=failing_preview)
    assert torch.load(tmp_path / "preview" / "last.pth", weights_only=True)["epoch"] == 0


@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    with open(sample_annotation("train")) as f:
        coco = json.load(f)
    coco["images"] = coco["images"][:4]
    ids = {i["id"] for i in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    path = tmp_path_factory.mktemp("coco") / "tiny.json"
    path.write_text(json.dumps(coco))
    return path


def mask_train_args(annotation, out, *more):
    return ["--annotation", annotation, "--checkpoint_dir", out, "--epoch", 1, "--batch_size", 2,
            "--min_size", 64, "--max_size", 64, "--eval_every", 0, "--warmup_iters", 0,
            "--device", "cpu", *more]


def test_mask_rcnn_resume_of_another_model_or_class_count_is_one_line(tmp_path, tiny_coco):
    out = tmp_path / "run"
    first = run_script("mask_rcnn/train.py", *mask_train_args(tiny_coco, out))
    assert first.returncode == 0, first.stderr[-2000:]
    for flags, differs in ((["--num_classes", 6], "num_classes 4 there, 6 here"),
                           (["--model", "fasterrcnn_resnet50_fpn"], "model 'maskrcnn_resnet18_fpn' there")):
        result = run_script("mask_rcnn/train.py", *mask_train_args(tiny_coco, out, "--resume", *flags))
        assert_user_error(result, f"{out / 'last.pth'}: the checkpoint was made with other settings",
                          differs)


def test_diffusion_resume_with_other_dims_is_refused(tmp_path):
    common = ["--input_image_dir", sample_images("train"), "--conditional_image_dir",
              sample_low_light("train"), "--image_size", 16, "--batch_size", 4, "--timesteps", 20,
              "--sample_every", 0, "--checkpoint_epoch", 0, "--device", "cpu", "--checkpoint_dir",
              tmp_path, "--dim_mults", "1,2"]
    subset = tmp_path.parent / "pairs.json"
    subset.write_text(json.dumps({"filename": sorted(os.listdir(sample_images("train")))[:4]}))
    first = run_script("diffusion_model/train.py", *common, "--annotation", subset, "--dim", 8, "--epoch", 1)
    assert first.returncode == 0, first.stderr[-2000:]
    result = run_script("diffusion_model/train.py", *common, "--annotation", subset, "--dim", 16,
                        "--epoch", 2, "--resume")
    assert_user_error(result, f"{tmp_path / 'last.pth'}: the checkpoint was made with other settings",
                      "unet.dim 8 there, 16 here")


def test_plain_state_dicts_load_in_every_detector_script(inputs, tmp_path, light_state_dict, tiny_coco):
    result = run_script("mask_rcnn/inference.py", "--image_dir", inputs / "low", "--weight_path",
                        light_state_dict, "--output_dir", tmp_path / "inference", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    assumed = (f"{light_state_dict}: a plain state dict; assumed maskrcnn_resnet18_fpn with 4 classes")
    assert result.stdout.count(assumed) == 1
    assert len(json.load(open(tmp_path / "inference" / "detections.json"))) >= 0
    assert len([n for n in os.listdir(tmp_path / "inference") if n.endswith("_pred.png")]) == COUNT

    result = run_script("mask_rcnn/evaluate.py", "--normal_light_img_dir", inputs / "normal",
                        "--low_light_img_dir", inputs / "low", "--annotation",
                        inputs / "annotations" / "coco.json", "--weight_path", light_state_dict,
                        "--pretrained", "none", "--count", 0, "--device", "cpu",
                        "--output_dir", tmp_path / "eval")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count(assumed) == 1
    rows = json.load(open(tmp_path / "eval" / "ap_table.json"))["rows"]["checkpoint"]
    assert 0 <= rows["bbox AP normal"] <= 1

    result = run_script("mask_rcnn/train.py", *mask_train_args(tiny_coco, tmp_path / "ft",
                                                               "--weight_path", light_state_dict))
    assert result.returncode == 0, result.stderr[-2000:]
    config = torch.load(tmp_path / "ft" / "last.pth", weights_only=True)["config"]
    assert config["model"] == "maskrcnn_resnet18_fpn" and config["num_classes"] == 4


def test_plain_torchvision_state_dict_with_coco_classes(tmp_path, capsys):
    import torchvision
    from torch_utils_lib.models.detectors import COCO_CATEGORY_NAMES, load_detector
    torch.manual_seed(0)
    original = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                                                  num_classes=91)
    path = tmp_path / "maskrcnn_coco.pth"
    torch.save(original.state_dict(), path)
    model, config = load_detector(str(path))
    assert config["model"] == "maskrcnn_resnet50_fpn" and config["categories"] == COCO_CATEGORY_NAMES
    assert "91 classes" in capsys.readouterr().out
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "classifier.pth")
    with pytest.raises(UserError, match="classifier.pth: a state dict of no known detector"):
        load_detector(str(tmp_path / "classifier.pth"))


def test_full_disk_and_blocked_paths_are_one_line(tmp_path, capsys):
    """/dev/full answers every write with ENOSPC; a file where a folder is needed fails as root."""
    from torch_utils_lib.toolkit.errors import run_main
    from torch_utils_lib.engine.metric_logger import MetricLogger
    logger = MetricLogger("/dev/full", disable=True)
    with pytest.raises(UserError, match="^/dev/full: cannot write .No space left on device"):
        logger.update(loss=1.0)

    (tmp_path / "checkpoints").write_text("a file, not a folder")
    for failing, expected in (
            (lambda: os.makedirs(tmp_path / "checkpoints", exist_ok=True),
             f"error: {tmp_path / 'checkpoints'}: cannot write or create (File exists)"),
            (lambda: open("/dev/full", "w").write("x" * 10**6),
             "error: output disk: cannot write or create (No space left on device)")):
        with pytest.raises(SystemExit) as code:
            run_main(failing)
        assert code.value.code == 2
        assert capsys.readouterr().err.strip().splitlines() == [expected]
