"""dataset/data_preprocessing.py: determinism, the noise model, RAW output, annotations, bad input."""
import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import rawpy
from PIL import Image

from dataset import gamma_noise, physics
from dataset.data_preprocessing import main as synthesis_main
from torch_utils_lib.data.camera import cfa_index_pattern
from dataset.synthesis import draw_params, synthesize_array
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.image_io import read_rgb
from torch_utils_lib.evaluation.image_metrics import luma, psnr, ssim
from torch_utils_lib.toolkit.paths import REPO_ROOT, sample_annotation, sample_images, sample_low_light

SCRIPT = os.path.join(REPO_ROOT, "dataset", "data_preprocessing.py")


def _tree_digest(folder):
    """{relative path: sha256} of every file under `folder`, run.json excluded."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            if name == "run.json":
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture
def small_set(tmp_path):
    """Eight sample images cropped to 40x48 (odd crops of 39x45 for two) + their annotation."""
    src = sample_images("train")
    folder = tmp_path / "images"
    folder.mkdir()
    with open(sample_annotation("train")) as f:
        dataset = json.load(f)
    images = dataset["images"][:8]
    for k, image in enumerate(images):
        rgb = cv2.imread(os.path.join(src, image["file_name"]))
        h, w = (45, 39) if k < 2 else (40, 48)
        cv2.imwrite(str(folder / image["file_name"]), rgb[:h, :w])
        image["height"], image["width"] = h, w
    ids = {image["id"] for image in images}
    dataset["images"] = images
    dataset["annotations"] = [a for a in dataset["annotations"] if a["image_id"] in ids]
    annotation = tmp_path / "instances.json"
    annotation.write_text(json.dumps(dataset))
    return str(folder), str(annotation), dataset


def _run(*args):
    return synthesis_main(["--quiet", *map(str, args)])


def test_outputs_are_byte_identical_whatever_the_workers(small_set, tmp_path):
    folder, annotation, _ = small_set
    before = _tree_digest(folder)
    for method, extra in (("gamma_noise", []), ("physics", ["--save_raw"])):
        digests = []
        for workers in (1, 2):
            out = tmp_path / f"{method}_{workers}"
            _run("--input_dir", folder, "--output_dir", out, "--annotation", annotation,
                 "--method", method, "--workers", workers, "--seed", 7, *extra)
            digests.append(_tree_digest(out))
        assert digests[0] == digests[1]
        expected = 8 * (2 if method == "physics" else 1) + 2 + (1 if method == "physics" else 0)
        assert len(digests[0]) == expected  # images (+ DNGs), synthesis.json, annotation(s)
    assert _tree_digest(folder) == before  # the input is never written
    # another seed gives other images
    _run("--input_dir", folder, "--output_dir", tmp_path / "seed8", "--seed", 8)
    name = sorted(os.listdir(folder))[2]
    assert (tmp_path / "seed8" / name).read_bytes() != (tmp_path / "gamma_noise_1" / name).read_bytes()


def test_gamma_noise_matches_its_definition():
    flat = np.full((200, 200, 3), 128, np.uint8)
    params = {"gamma": 1.0, "noise_var": 0.004, "noise_seed": 3}
    out = gamma_noise.synthesize(flat, params).astype(np.float64)
    expected_std = np.sqrt(0.004) * 127.5  # 8.06 levels on the 0..255 scale
    for c in range(3):  # every channel is noisy, not only the first
        assert abs(out[..., c].mean() - 128) < 0.2
        assert out[..., c].std() == pytest.approx(np.sqrt(expected_std ** 2 + 1 / 12), rel=0.03)
    gray = np.full((8, 8, 3), 200, np.uint8)
    dark = gamma_noise.synthesize(gray, {"gamma": 4.0, "noise_var": 1e-12, "noise_seed": 1})
    assert np.all(dark == round(255 * (200 / 255) ** 4))  # 96
    rng = np.random.default_rng(0)
    drawn = [gamma_noise.draw_params(rng) for _ in range(200)]
    assert all(3 <= p["gamma"] <= 8 and 0.001 <= p["noise_var"] <= 0.01 for p in drawn)


def test_physics_noise_variance_is_linear_in_the_signal():
    """Flat grey patches in the RAW domain: Var = K * signal + read^2 + row^2 + 1/12."""
    params = {**physics.draw_params(np.random.default_rng(0)), "K": 2.0, "read_std": 3.0,
              "row_std": 0.5, "noise_seed": 11}
    rng = np.random.default_rng(1)
    means, variances = [], []
    for level in (40, 80, 120, 160, 200, 240):
        camera = physics.unprocess(np.full((256, 256, 3), level, np.uint8), params)
        signal = physics.mosaic(camera) * np.float32(physics.WHITE_LEVEL - physics.BLACK_LEVEL) / 20
        raw = physics.add_sensor_noise(signal, params, rng).astype(np.float64) - physics.BLACK_LEVEL
        green = raw[0::2, 1::2]  # one CFA channel: a single expected signal value
        expected = float(signal[0, 1])
        assert abs(green.mean() - expected) < 0.5
        means.append(expected)
        variances.append(green.var())
    slope, intercept = np.polyfit(means, variances, 1)
    residual = np.array(variances) - (slope * np.array(means) + intercept)
    assert slope == pytest.approx(2.0, rel=0.05)
    assert intercept == pytest.approx(9 + 0.25 + 1 / 12, abs=3.0)
    assert np.abs(residual).max() < 0.05 * max(variances)
    assert means[-1] > 5 * means[0]  # the range tested spans a factor > 5 in signal


def test_physics_without_noise_round_trips():
    rgb = cv2.GaussianBlur(read_rgb(os.path.join(sample_images("val"), "val_0001.png")), (0, 0), 2)
    params = {**physics.draw_params(np.random.default_rng(4)), "ratio": 1.0}
    camera = physics.unprocess(rgb, params)
    raw = physics.add_sensor_noise(physics.mosaic(camera) * np.float32(
        physics.WHITE_LEVEL - physics.BLACK_LEVEL), params, None, shot=False, read=False, row=False)
    back = physics.process(raw, params).astype(np.float64)
    # demosaicking a smooth image loses little: within 2 levels on average
    assert np.abs(back - rgb)[2:-2, 2:-2].mean() < 2.0


def test_save_raw_writes_dngs_rawpy_reads(small_set, tmp_path):
    folder, annotation, dataset = small_set
    out = tmp_path / "phys"
    _run("--input_dir", folder, "--output_dir", out, "--annotation", annotation,
         "--method", "physics", "--save_raw")
    raw_annotation = json.loads((out / "raw" / "annotations.json").read_text())
    assert [i["id"] for i in raw_annotation["images"]] == [i["id"] for i in dataset["images"]]
    assert raw_annotation["annotations"] == dataset["annotations"]
    for image in raw_annotation["images"]:
        stem = os.path.splitext(image["file_name"])[0]
        original = [i for i in dataset["images"] if i["id"] == image["id"]][0]
        assert stem == os.path.splitext(original["file_name"])[0] and image["file_name"].endswith(".dng")
        rgb = read_rgb(os.path.join(folder, original["file_name"]))
        _, expected_raw, _ = synthesize_array(rgb, {"method": "physics", "seed": 0,
                                                    "ratio": [10.0, 100.0]}, original["file_name"])
        with rawpy.imread(str(out / "raw" / image["file_name"])) as raw:
            assert raw.raw_pattern.tolist() == cfa_index_pattern("RGGB").tolist()
            assert list(raw.black_level_per_channel) == [2048] * 4
            assert raw.white_level == 16383
            assert raw.raw_image_visible.shape == (image["height"], image["width"])
            assert np.array_equal(raw.raw_image_visible, expected_raw)


def test_annotations_round_trip(small_set, tmp_path):
    folder, annotation, dataset = small_set
    out = tmp_path / "out"
    _run("--input_dir", folder, "--output_dir", out, "--annotation", annotation,
         "--preview", tmp_path / "preview.png")
    assert json.loads((out / "annotations.json").read_text()) == dataset
    assert read_rgb(str(tmp_path / "preview.png")).shape == (6 * 164, 3 * 164, 3)  # 6 rows, 3 tiles
    for image in dataset["images"]:  # sizes unchanged
        assert read_rgb(str(out / image["file_name"])).shape == (image["height"], image["width"], 3)
    summary = json.loads((out / "synthesis.json").read_text())
    assert summary["count"] == 8 and summary["failed"] == []
    assert summary["metrics"]["psnr"]["count"] == 8
    assert 3 < summary["metrics"]["psnr"]["mean"] < 25
    assert {"gamma", "noise_var", "noise_seed"} == set(summary["images"][0]["params"])
    # the recorded statistics are those of the written images (PNG: lossless) against the inputs
    for record in summary["images"]:
        low, source = read_rgb(str(out / record["file_name"])), read_rgb(os.path.join(folder, record["file_name"]))
        assert record["psnr"] == pytest.approx(psnr(low, source), abs=1e-6)
        assert record["ssim"] == pytest.approx(ssim(luma(low), luma(source), downsample="auto"), abs=1e-6)


def test_annotation_keeps_only_synthesized_images_and_checks_sizes(small_set, tmp_path):
    folder, annotation, dataset = small_set
    names = sorted(os.listdir(folder))
    os.unlink(os.path.join(folder, names[-1]))  # annotated but absent: dropped silently
    bad = dict(dataset)
    bad["images"] = [dict(i) for i in dataset["images"]]
    bad["images"][3]["width"] += 1  # the annotation disagrees with the file
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="1 image"):
        _run("--input_dir", folder, "--output_dir", tmp_path / "o", "--annotation", tmp_path / "bad.json")
    kept = json.loads((tmp_path / "o" / "annotations.json").read_text())
    assert len(kept["images"]) == 6
    assert all(a["image_id"] in {i["id"] for i in kept["images"]} for a in kept["annotations"])


def _make_bad_inputs(folder):
    rgb = cv2.cvtColor(cv2.imread(os.path.join(sample_images("val"), "val_0002.png")),
                       cv2.COLOR_BGR2RGB)[:40, :64]
    Image.fromarray(rgb).save(folder / "a_rgb.png")
    Image.fromarray(rgb[..., 0]).save(folder / "b_gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(folder / "c_rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "d_cmyk.jpg")
    cv2.imwrite(str(folder / "e_16bit.png"), (rgb[..., ::-1].astype(np.uint16) * 257))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(rgb).save(folder / "f_rotated.jpg", exif=exif.tobytes())
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "g_palette.png")
    full = (folder / "a_rgb.png").read_bytes()
    Image.fromarray(rgb).save(folder / "x_truncated.jpg", quality=90)
    data = (folder / "x_truncated.jpg").read_bytes()
    (folder / "x_truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "y_truncated.png").write_bytes(full[: len(full) // 2])
    (folder / "z_garbage.jpg").write_bytes(b"this is not an image")


def test_bad_inputs_are_listed_others_converted(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _make_bad_inputs(folder)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, SCRIPT, "--input_dir", str(folder), "--output_dir",
                             str(out), "--quiet", "--method", "physics"],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for bad in ("x_truncated.jpg", "y_truncated.png", "z_garbage.jpg"):
        assert any(str(folder / bad) in line for line in error_lines), result.stderr
    assert error_lines[-1].endswith("3 image(s) could not be synthesized (listed above and in "
                                    "synthesis.json)")
    written = sorted(n for n in os.listdir(out) if not n.endswith(".json"))
    assert written == ["a_rgb.png", "b_gray.png", "c_rgba.png", "d_cmyk.jpg", "e_16bit.png",
                       "f_rotated.jpg", "g_palette.png"]
    for name in written:
        shape = read_rgb(str(out / name)).shape
        assert shape == (40, 64, 3), name  # f_rotated.jpg too: pixels as stored
    summary = json.loads((out / "synthesis.json").read_text())
    assert [f["file_name"] for f in summary["failed"]] == ["x_truncated.jpg", "y_truncated.png",
                                                           "z_garbage.jpg"]


def test_rerun_skips_finished_images_and_guards_settings(small_set, tmp_path):
    folder, _, _ = small_set
    out = tmp_path / "out"
    _run("--input_dir", folder, "--output_dir", out)
    first = _tree_digest(out)
    names = sorted(os.listdir(folder))
    mtimes = {n: os.stat(out / n).st_mtime_ns for n in names}
    os.unlink(out / names[0])
    os.unlink(out / "synthesis.json")  # as if killed before the summary was written
    (out / ".half.tmp").write_bytes(b"")  # a killed atomic write leaves only a hidden temp file
    _run("--input_dir", folder, "--output_dir", out)
    os.unlink(out / ".half.tmp")
    assert _tree_digest(out) == first
    assert all(os.stat(out / n).st_mtime_ns == mtimes[n] for n in names[1:])  # not redone
    with pytest.raises(UserError, match="other settings"):
        _run("--input_dir", folder, "--output_dir", out, "--seed", 1)
    _run("--input_dir", folder, "--output_dir", out, "--seed", 1, "--overwrite")
    assert _tree_digest(out) != first


def test_cli_errors_are_one_line(tmp_path, small_set):
    folder, _, _ = small_set
    cases = [
        (["--input_dir", str(tmp_path / "missing")], "image directory not found"),
        (["--input_dir", folder, "--output_dir", os.path.join(folder, "sub")], "lies inside the input"),
        (["--input_dir", folder, "--save_raw"], "--save_raw"),
        (["--input_dir", folder, "--gamma", "5", "3"], "--gamma 5 3"),
        (["--input_dir", folder, "--annotation", str(tmp_path / "no.json")], "annotation file not found"),
        (["--sample", "--input_dir", folder], "--sample: makes the bundled set"),
        (["--input_dir", folder, "--workers", "0"], "--workers 0"),
    ]
    for args, message in cases:
        result = subprocess.run([sys.executable, SCRIPT, "--quiet", *args], capture_output=True,
                                text=True, cwd=REPO_ROOT)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not os.path.exists(os.path.join(folder, "sub"))


def test_script_runs_from_its_folder_without_torch(small_set, tmp_path):
    folder, _, _ = small_set
    help_run = subprocess.run([sys.executable, "data_preprocessing.py", "--help"],
                              cwd=os.path.join(REPO_ROOT, "dataset"), capture_output=True, text=True)
    assert help_run.returncode == 0 and "--noise_var" in help_run.stdout
    code = ("import runpy, sys; script = runpy.run_path(sys.argv[1], run_name='not_main'); "
            "script['main'](['--quiet', '--input_dir', sys.argv[2], '--output_dir', sys.argv[3], "
            "'--method', 'physics', '--save_raw', '--workers', '2']); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, SCRIPT, folder, str(tmp_path / "o")],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_bundled_low_light_sets_are_current():
    """data/sample/low_light was made by this code with the default seed (regenerate if not)."""
    for method in ("gamma_noise", "physics"):
        summary_path = os.path.join(sample_low_light("val", method), "synthesis.json")
        with open(summary_path) as f:
            summary = json.load(f)
        assert summary["seed"] == 0 and summary["count"] == 32
        record = summary["images"][0]
        rgb = read_rgb(os.path.join(sample_images("val"), record["file_name"]))
        low, _, params = synthesize_array(rgb, summary["settings"], record["file_name"])
        assert params == record["params"]
        stored = read_rgb(os.path.join(sample_low_light("val", method), record["file_name"]))
        assert np.array_equal(low, stored)
    params, _ = draw_params({"method": "gamma_noise", "seed": 0, "gamma": [3, 8],
                             "noise_var": [0.001, 0.01]}, "val_0001.png")
    assert 3 <= params["gamma"] <= 8


def test_interrupted_run_resumes_to_the_same_result(small_set, tmp_path, monkeypatch):
    import dataset.synthesis as synthesis
    folder, _, _ = small_set
    settings = {"method": "physics", "seed": 0, "ratio": [10.0, 100.0], "save_raw": True}
    synthesis.run_synthesis(folder, str(tmp_path / "whole"), settings, progress=False)
    real, calls = synthesis.process_image, []

    def dies_after_three(task):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(task[0])
        return real(task)

    monkeypatch.setattr(synthesis, "process_image", dies_after_three)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        synthesis.run_synthesis(folder, str(out), settings, progress=False)
    assert sorted(n for n in os.listdir(out) if n.endswith(".png")) == sorted(calls)
    assert not (out / "synthesis.json").exists()
    lines = (out / synthesis.RECORDS_FILE).read_text().splitlines()
    assert json.loads(lines[0]) == {"settings": settings} and len(lines) == 4
    monkeypatch.setattr(synthesis, "process_image", real)
    summary = synthesis.run_synthesis(folder, str(out), settings, progress=False)
    assert not (out / synthesis.RECORDS_FILE).exists()
    assert summary["count"] == 8
    assert _tree_digest(out) == _tree_digest(tmp_path / "whole")
    # a cheaper metrics choice skips SSIM; asking for SSIM later fills it in without redoing images
    psnr_only = synthesis.run_synthesis(folder, str(out), settings, progress=False, metrics="psnr")
    assert set(psnr_only["metrics"]) == {"psnr"}
    again = synthesis.run_synthesis(folder, str(out), settings, progress=False)
    assert again["metrics"] == summary["metrics"]
