"""The benchmark end to end at toy scale: every step runs as the real scripts, every remedy gets a
row on every test set it applies to, real-format low-light sets included, and it resumes."""
import json
import os

import pytest

from tests.helpers import (assert_user_error, make_exdark_style_set, make_lis_style_set,
                           make_sample_set, run_script)
from torch_utils_lib.evaluation.coco_bootstrap import format_interval

SYNTHETIC = ("gamma_noise", "physics")
IMAGE_REMEDIES = ("diffusion", "gamma", "clahe", "histeq", "zero_dce", "enhancer", "gain", "identity")
# scored on normal light too, each with its own detector (enhancer_joint: its jointly trained one)
DETECTOR_REMEDIES = ("none", "finetune", "finetune_mixed", "enhancer_joint")
LEVELS = ("physics_ev2", "physics_ev2_raw", "physics_ev6", "physics_ev6_raw")  # RAW for GenISP


def gain_remedy():
    """A learned toy remedy, one entry: it learns one global gain (the normal-light train images'
    mean over their low-light copies', capped by its own flag --gain_max) in a study step, and
    applies it to each low-light test set."""
    import numpy as np

    from study.remedies import Flag, Remedy
    from torch_utils_lib.toolkit.atomic_io import atomic_write_json
    from torch_utils_lib.toolkit.cli import positive_float
    from torch_utils_lib.toolkit.atomic_io import read_json
    from torch_utils_lib.data.image_io import annotation_file_names, read_rgb, write_image

    def weights(study):
        return study.path("gain", "gain.json")

    def fit(study):
        d = study.data
        names = annotation_file_names(d.train_annotation)
        normal = np.mean([read_rgb(f"{d.train_image_dir}/{n}").mean() for n in names])
        low = np.mean([read_rgb(f"{d.low_light[study.target]['train']}/{n}").mean() for n in names])
        atomic_write_json(weights(study), {"gain": min(normal / low, study.args.gain_max)})

    def images(study, test_set):
        gain = read_json(weights(study))["gain"]
        out = study.output(f"gain {test_set.name}", "gain", test_set.name)
        for name in annotation_file_names(test_set.annotation):
            image = read_rgb(f"{test_set.image_dir}/{name}").astype(np.float32) * gain
            write_image(f"{out}/{name}", np.clip(image, 0, 255).round().astype(np.uint8))
        return out

    return Remedy("gain", "one learned global gain", low_light_only=True, images=images,
                  train=lambda study: study.timed("train gain", fit, study, done=weights(study)),
                  weights=weights, flags=(Flag("max", positive_float, 8.0, "the gain's cap"),),
                  settings=lambda study: f"global gain capped at {study.args.gain_max:g}")


def test_benchmark_rows_columns_real_sets_figures_and_resume(tmp_path, monkeypatch, capsys):
    from study.pipeline import REFERENCE_ROW, run_study
    from study.remedies import REMEDIES, Remedy
    from study.run import build_parser, check_args

    data = make_sample_set(tmp_path / "data", train=8, val=5, size=64)
    lis = make_lis_style_set(str(data), "val", str(tmp_path / "lis"))
    exdark_images, exdark_txt, class_list = make_exdark_style_set(str(data), "val", str(tmp_path / "exdark"))
    converted = run_script("dataset/convert_exdark.py", "--image_dir", exdark_images, "--annotation_dir",
                           exdark_txt, "--class_list", class_list, "--output_dir", tmp_path / "exdark_coco")
    assert converted.returncode == 0, converted.stderr[-2000:]
    category_map = tmp_path / "category_map.json"  # the sample detector knows shapes
    category_map.write_text(json.dumps({"chair": "circle", "car": "square", "motorbike": "triangle",
                                        "Cup": "circle", "Table": "square", "People": "triangle"}))

    # Adding a remedy: one registry entry (a learned toy remedy with its own flag and training
    # step, and an identity enhancement) gives its row, flag, report text and example.
    monkeypatch.setitem(REMEDIES, "gain", gain_remedy())
    monkeypatch.setitem(REMEDIES, "identity", Remedy(
        "identity", "the low-light images as they are",
        images=lambda study, test_set: test_set.image_dir, low_light_only=True))

    out = tmp_path / "study"
    argv = ["--output_dir", out, "--train_image_dir", data / "train",
            "--train_annotation", data / "annotations" / "instances_train.json",
            "--val_image_dir", data / "val", "--val_annotation", data / "annotations" / "instances_val.json",
            "--real_test", "lis=" + ",".join(lis),
            "--real_test", f"exdark={exdark_images},{tmp_path / 'exdark_coco' / 'instances_test.json'}",
            "--category_map", category_map,
            "--min_size", 64, "--epochs", 1, "--finetune_epochs", 1, "--batch_size", 4,
            "--diffusion_epochs", 1, "--diffusion_batch_size", 4, "--diffusion_steps", 2,
            "--genisp_epochs", 1, "--genisp_batch_size", 4, "--genisp_parameter_size", 32,
            "--zero_dce_epochs", 2, "--enhancer_epochs", 1, "--enhancer_parameter_size", 32,
            "--enhancer_joint_epochs", 1, "--enhancer_joint_parameter_size", 32,
            "--count", 1, "--severities", 6, 2, "--severity_methods", "physics", "--gain_max", 6,
            "--bootstrap", 200, "--device", "cpu"]
    args = build_parser().parse_args(list(map(str, argv)))
    assert args.remedies[-1] == "identity"
    check_args(args)
    run_study(args)
    report = json.loads((out / "report.json").read_text())
    rows = report["rows"]
    assert list(rows) == ["none", "finetune", "finetune_mixed", "diffusion", "gamma", "clahe",
                          "histeq", "zero_dce", "enhancer", "enhancer_joint", "genisp", "gain",
                          "identity", REFERENCE_ROW]
    assert [t["name"] for t in report["test_sets"]] == ["normal", *SYNTHETIC, *LEVELS, "lis", "exdark",
                                                         "raw"]
    for remedy in DETECTOR_REMEDIES + IMAGE_REMEDIES:
        for test_set in (*SYNTHETIC, "lis", "exdark"):
            cell = rows[remedy][test_set]
            assert 0 <= cell["bbox"]["AP"] <= cell["bbox"]["AP50"] <= 1, (remedy, test_set)
            with open(cell["detections"]["bbox"]) as f:  # COCO results, the set's own ids
                ids = {d["category_id"] for d in json.load(f)}
            assert ids <= ({0, 1, 2} if test_set == "lis" else
                           {8, 11, 12} if test_set == "exdark" else {1, 2, 3}), (remedy, test_set, ids)
        assert ("segm" in rows[remedy]["lis"]) and "segm" not in rows[remedy]["exdark"]  # box-only set
    for remedy in DETECTOR_REMEDIES:
        assert "bbox" in rows[remedy]["normal"]
    for remedy in IMAGE_REMEDIES:
        assert "normal" not in rows[remedy]
        assert 0 < rows[remedy]["lis"]["SSIM"] <= 1 and rows[remedy]["gamma_noise"]["PSNR"] > 5
        assert "PSNR" not in rows[remedy]["exdark"]  # no normal-light pair
    assert set(rows["genisp"]) == {"raw", "physics_ev2_raw", "physics_ev6_raw"}
    assert "raw" in rows["none"] and "physics_ev2_raw" not in rows["none"]  # RGB levels instead
    assert rows[REFERENCE_ROW]["lis"]["bbox"]["AP"] >= 0 and "exdark" not in rows[REFERENCE_ROW]
    # the identity remedy sees exactly the unremedied images
    assert rows["identity"]["lis"]["bbox"] == rows["none"]["lis"]["bbox"]
    assert rows["identity"]["lis"]["PSNR"] < rows["gamma"]["lis"]["PSNR"]  # gamma brightens 4x-darkened images
    assert_intervals_and_darkness_curves(report, rows, out)
    for figure in ("examples.png", "loss_curves.png", "ap_bars.png", "darkness.png"):
        assert (out / figure).stat().st_size > 1000
    text = (out / "report.md").read_text()
    assert "| identity |" in text and "lis bbox AP" in text and "dataset/enhance.py" in text
    assert "mask_rcnn/evaluate.py" in text and "--augment hflip" in text
    assert_learned_toy_remedy(report, rows, text, out)

    # A second run finds every step done and only rewrites the report.
    detector = out / "mask_rcnn" / "normal" / "last.pth"
    trained_at = detector.stat().st_mtime_ns
    capsys.readouterr()
    args = build_parser().parse_args(list(map(str, argv)))
    check_args(args)
    run_study(args)
    log = capsys.readouterr().out
    assert "[study] synthesis gamma_noise: reusing" in log and "[study] evaluate normal: reusing" in log
    assert detector.stat().st_mtime_ns == trained_at
    assert json.loads((out / "report.json").read_text())["rows"].keys() == rows.keys()


def assert_learned_toy_remedy(report, rows, text, out):
    """The toy remedy's training step ran once, with its flag; its row has both paired
    differences (against none and against the best classical enhancement), its settings are in
    the report and its column in the examples."""
    gain = json.loads((out / "gain" / "gain.json").read_text())["gain"]
    assert 1 < gain <= 6  # 4x-darkened LIS-style and synthetic sets: brighter, capped by --gain_max
    record = next(r for r in report["remedies"] if r["name"] == "gain")
    assert record["flags"] == {"--gain_max": 6.0} and record["learned"] and not record["classical"]
    assert record["weights"] == str(out / "gain" / "gain.json")
    assert "- `gain`: one learned global gain (global gain capped at 6)" in text
    classical = {"gamma", "clahe", "histeq"}
    for name in ("gamma_noise", "lis", "exdark"):
        stats = rows["gain"][name]["bbox"]
        best = stats["vs_best_classical"]["remedy"]
        assert best in classical and rows[best][name]["bbox"]["AP"] == max(
            rows[r][name]["bbox"]["AP"] for r in classical)
        assert stats["vs_best_classical"]["AP"]["delta"] == pytest.approx(
            stats["AP"] - rows[best][name]["bbox"]["AP"], abs=1e-9)
        assert "vs_best_classical" not in rows["gamma"][name]["bbox"]  # classical: not against itself
    headline = report["headline"]
    assert set(headline["gain"]) == {"gamma_noise", "physics", "lis", "exdark"}
    assert headline["gain"]["lis"].startswith(format_interval(rows["gain"]["lis"]["bbox"]["AP"],
                                                              rows["gain"]["lis"]["bbox"]["AP_ci"]))
    assert headline["gain"]["lis"][-2:] in {a + b for a in "▲▼·" for b in "▲▼·"}
    assert "| gain |" in text.split("## Per test set")[0]  # a row of the main table
    assert any("gain" in e["columns"] for e in report["examples"])


def assert_intervals_and_darkness_curves(report, rows, out):
    """Every AP has its interval around it, the paired difference of none with itself is exactly
    0 [0, 0], and each remedy's darkness curve has P, both levels, mPC, rPC = mPC / P and EV50."""
    assert [t["name"] for t in report["test_sets"] if t["severity"] is not None] == list(LEVELS)
    for remedy, cells in rows.items():
        for name, cell in cells.items():
            box_only = name in LEVELS or name.endswith("raw")  # curves and RAW sets: bbox
            for iou_type in ("bbox",) if box_only else ("bbox", "segm"):
                if iou_type in cell:
                    low, high = cell[iou_type]["AP_ci"]
                    assert low <= cell[iou_type]["AP"] <= high, (remedy, name, iou_type)
                    if name in rows["none"]:
                        assert cell[iou_type]["vs_none"]["AP"]["delta"] == pytest.approx(
                            cell[iou_type]["AP"] - rows["none"][name][iou_type]["AP"], abs=1e-9), (
                            remedy, name, iou_type)
    for name, cell in rows["none"].items():
        assert cell["bbox"]["vs_none"]["AP"] == {"delta": 0.0, "ci": [0.0, 0.0], "share_le_0": 1.0}
    curves = report["darkness"]["physics"]
    assert set(curves) == {*DETECTOR_REMEDIES, *IMAGE_REMEDIES, "genisp"}
    for remedy, curve in curves.items():
        clean = rows[remedy if remedy in DETECTOR_REMEDIES else "none"]["normal"]["bbox"]
        suffix = "_raw" if remedy == "genisp" else ""  # GenISP's levels are the levels' RAW
        assert curve["P"] == clean["AP"] and curve.get("P_ci", clean["AP_ci"]) == clean["AP_ci"]
        assert curve["levels"] == {"2.0": rows[remedy]["physics_ev2" + suffix]["bbox"]["AP"],
                                   "6.0": rows[remedy]["physics_ev6" + suffix]["bbox"]["AP"]}
        assert curve["mPC"] == pytest.approx(sum(curve["levels"].values()) / 2)
        if curve["P"] > 0:
            assert curve["rPC"] == pytest.approx(curve["mPC"] / curve["P"])
        assert curve["mPC_ci"][0] <= curve["mPC"] <= curve["mPC_ci"][1]
        assert curve["EV50"] is None or 0 < curve["EV50"] <= 6
    text = (out / "report.md").read_text()
    assert "## AP against darkness" in text
    for column in ("P", "2 EV", "6 EV", "mPC", "rPC", "EV50"):
        assert f" {column} |" in text, column
    none_normal = rows["none"]["normal"]["bbox"]
    assert f"| none | {format_interval(none_normal['AP'], none_normal['AP_ci'])} |" in text
    assert "0.000 [0.000, 0.000] (n.s.)" in text  # none against itself


def test_bad_study_arguments_end_in_one_line(tmp_path):
    from tests.helpers import assert_user_error
    result = run_script("study/run.py", "--output_dir", tmp_path / "s", "--real_test", "lis=only_a_dir")
    assert_user_error(result, "--real_test lis=only_a_dir", "NAME=IMAGE_DIR,ANNOTATION")
    result = run_script("study/run.py", "--output_dir", tmp_path / "s", "--real_test",
                        f"lis={tmp_path},{tmp_path / 'missing.json'}")
    assert_user_error(result, "missing.json", "annotation of --real_test lis not found")
    result = run_script("study/run.py", "--output_dir", tmp_path / "s", "--mix_ratio", "1.5")
    assert_user_error(result, "--mix_ratio")


def test_nproc_per_node_launches_steps_under_torchrun(tmp_path, capfd):
    import argparse

    from study.pipeline import Study
    args = argparse.Namespace(output_dir=str(tmp_path), methods=["gamma_noise"], nproc_per_node=2,
                              overwrite=False)
    study = Study(args)
    study.run("help", "mask_rcnn/evaluate.py", "--help", distributed=True)
    study.run("help", "dataset/enhance.py", "--help")
    assert study.commands == ["torchrun --standalone --nproc_per_node 2 mask_rcnn/evaluate.py --help",
                              "python dataset/enhance.py --help"]
    assert capfd.readouterr().out.count("usage: evaluate.py") == 2  # one per process


def test_report_marks_differences_whose_interval_includes_zero():
    from study.report import darkness_rows, shown
    table = {"finetune": {"lis bbox AP": 0.4, "lis bbox AP_ci": [0.3, 0.5], "lis bbox ΔAP": 0.05,
                          "lis bbox ΔAP_ci": [0.01, 0.09], "lis PSNR": 20.0},
             "gamma": {"lis bbox ΔAP": -0.01, "lis bbox ΔAP_ci": [-0.03, 0.0]}}
    assert shown(table) == {
        "finetune": {"lis bbox AP": "0.400 [0.300, 0.500]", "lis bbox ΔAP": "0.050 [0.010, 0.090]",
                     "lis PSNR": 20.0},
        "gamma": {"lis bbox ΔAP": "-0.010 [-0.030, 0.000] (n.s.)"}}
    curve = {"P": 0.5, "P_ci": [0.4, 0.6], "levels": {"2.0": 0.4, "8.0": 0.3},
             "levels_ci": {"2.0": [0.3, 0.5], "8.0": [0.2, 0.4]}, "mPC": 0.35, "mPC_ci": [0.25, 0.45],
             "rPC": 0.7, "rPC_ci": [0.6, 0.8], "EV50": None, "EV50_ci": [6.5, None]}
    assert darkness_rows({"physics": {"none": curve}}) == {"none": {
        "P": "0.500 [0.400, 0.600]", "2 EV": "0.400 [0.300, 0.500]", "8 EV": "0.300 [0.200, 0.400]",
        "mPC": "0.350 [0.250, 0.450]", "rPC": "0.700 [0.600, 0.800]", "EV50": ">8 [6.50, >8]"}}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """A 4+3-image sample set: (folder, train annotation, val annotation)."""
    data = make_sample_set(tmp_path_factory.mktemp("tiny"), train=4, val=3, size=32)
    return data, data / "annotations" / "instances_train.json", data / "annotations" / "instances_val.json"


def with_absolute_names(annotation, image_dir, out):
    coco = json.loads(annotation.read_text())
    for image in coco["images"]:
        image["file_name"] = str(image_dir / image["file_name"])
    out.write_text(json.dumps(coco))
    return out


def refusal_cases(data, train, val, tmp_path):
    """(extra argv, the output folder, fragments of the one error line) of studies that must stop
    before their first step."""
    user = ["--train_image_dir", data / "train", "--train_annotation", train,
            "--val_image_dir", data / "val", "--val_annotation", val]
    absolute = with_absolute_names(val, data / "val", tmp_path / "absolute.json")
    return [
        (user, data / "annotations", ("--output_dir contains the input", "annotations")),
        (user, data, ("--output_dir", "contains the input")),
        (user + ["--real_test", f"lis={data / 'val'},{absolute}"], tmp_path / "s1",
         ("absolute.json", "points outside")),  # the gamma step would write into the images
        (user + ["--real_test", f"..={data / 'val'},{val}"], tmp_path / "s2", ("--real_test ..=",)),
        (user + ["--real_test", f"normal={data / 'val'},{val}"], tmp_path / "s3",
         ("--real_test normal", "already has a test set")),
        (user + ["--real_test", f"physics_ev2={data / 'val'},{val}"], tmp_path / "s4",
         ("--real_test physics_ev2",)),
        (user + ["--severities", 2, 2.0000001], tmp_path / "s5", ("--severities 2.0 2.0000001",)),
        (user + ["--severities", 1100], tmp_path / "s6", ("--severities 1100", "takes levels from 0 to")),
        (user + ["--remedies", "finetune"], tmp_path / "s7", ("--remedies must include none",)),
        (user + ["--bootstrap", 1000000000], tmp_path / "s9", ("--bootstrap 1000000000: must be between 0",)),
        (user + ["--remedies", "none", "genisp", "--methods", "gamma_noise"], tmp_path / "s8",
         ("genisp read RAW", "--methods")),
    ]


def test_study_refuses_before_its_first_step(tiny_set, tmp_path):
    """Each refusal: one error line, no input changed, nothing run (no data, no run.json)."""
    from tests.test_user_errors import tree_digest
    data, train, val = tiny_set
    cases = refusal_cases(data, train, val, tmp_path)
    before = tree_digest(data)
    for argv, out, fragments in cases:
        existed = set(os.listdir(out)) if out.is_dir() else set()
        result = run_script("study/run.py", "--output_dir", out, *argv, "--device", "cpu", timeout=120)
        assert_user_error(result, *fragments)
        assert "[study]" not in result.stdout, (argv, result.stdout[-500:])
        assert (set(os.listdir(out)) if out.is_dir() else set()) == existed, argv
    assert tree_digest(data) == before


def test_study_plan_reads_raw_only_for_a_remedy_that_scores_it(tiny_set, tmp_path):
    """Without a remedy that reads RAW there is no RAW set (the `none` row's RAW pipeline needs
    one's weights), and every remedy's plan is made before any step."""
    from study.pipeline import Study
    from study.run import build_parser, check_args
    data, train, val = tiny_set
    user = ["--train_image_dir", data / "train", "--train_annotation", train,
            "--val_image_dir", data / "val", "--val_annotation", val, "--output_dir", tmp_path / "s"]
    for remedies, raw_sets in ((["none"], []), (["none", "genisp"], ["physics_ev2_raw", "physics_ev4_raw",
                                                                    "physics_ev6_raw", "physics_ev8_raw",
                                                                    "raw"])):
        args = build_parser().parse_args(list(map(str, user + ["--remedies", *remedies])))
        check_args(args)
        study = Study(args).plan()
        assert [t.name for t in study.test_sets if t.kind == "raw"] == raw_sets
        assert (study.data.raw_val_dir is None) == (not raw_sets)
    assert not (tmp_path / "s").exists()


def test_mixed_folder_survives_a_study_killed_while_linking(tiny_set, tmp_path):
    """A hard link left under a temporary name by a killed study is cleaned, and the folder
    is made again with the same images."""
    import shutil

    from study.pipeline import Study
    from study.remedies import mixed_folder
    from study.run import build_parser, check_args
    data, train, val = tiny_set
    args = build_parser().parse_args(list(map(str, [
        "--train_image_dir", data / "train", "--train_annotation", train, "--val_image_dir",
        data / "val", "--val_annotation", val, "--output_dir", tmp_path / "s", "--remedies", "none",
        "finetune_mixed", "--finetune_mixed_ratio", 0.5])))
    check_args(args)
    study = Study(args).plan()
    shutil.copytree(data / "train", study.data.low_light["gamma_noise"]["train"])
    first = mixed_folder(study)
    names = sorted(os.listdir(first))
    victim = os.path.join(first, names[0])
    stale = os.path.join(first, f".{names[0]}.999999999.0.tmp")  # no such process
    os.link(victim, stale)
    os.unlink(victim)
    assert mixed_folder(study) == first
    assert sorted(os.listdir(first)) == names


def test_planning_leaves_the_arguments_as_typed(tiny_set, tmp_path):
    """The plan (augmentation, darkness levels, the category map's absolute path) lives on the
    study; the arguments stay what the user typed, as run.json records them."""
    import copy

    from study.pipeline import Study
    from study.run import build_parser, check_args
    data, train, val = tiny_set
    category_map = tmp_path / "map.json"
    category_map.write_text('{"person": "person"}')
    args = build_parser().parse_args(list(map(str, [
        "--train_image_dir", data / "train", "--train_annotation", train, "--val_image_dir",
        data / "val", "--val_annotation", val, "--output_dir", tmp_path / "s", "--remedies", "none",
        "--severities", "4", "2", "--category_map", os.path.relpath(category_map)])))
    typed = copy.deepcopy(vars(args))
    check_args(args)
    study = Study(args).plan()
    assert vars(args) == typed
    assert study.augment == "hflip"
    assert study.severities == (2.0, 4.0) and study.severity_methods == ("gamma_noise", "physics")
    assert study.category_map == str(category_map.resolve())
    assert sorted(study.data.levels) == ["gamma_noise", "physics"]
