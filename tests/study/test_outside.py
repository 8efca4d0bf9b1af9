"""Outside rows (study/outside.py): another lab's enhanced images and detections become rows with
the paired differences, equal to the built-in rows they copy; bad ones stop before the first step."""
import json
import shutil

import pytest

from tests.helpers import make_sample_set
from tests.study.test_needs import plan
from tests.test_user_errors import tree_digest
from torch_utils_lib.toolkit.errors import UserError


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_sample_set(tmp_path_factory.mktemp("outside"), train=4, val=3, size=32)


def study_argv(data, out, *extra):
    return list(map(str, [
        "--output_dir", out, "--train_image_dir", data / "train", "--train_annotation",
        data / "annotations" / "instances_train.json", "--val_image_dir", data / "val",
        "--val_annotation", data / "annotations" / "instances_val.json", "--remedies", "none",
        "gamma", "--methods", "gamma_noise", "--severities", "--min_size", 64, "--epochs", 1,
        "--batch_size", 4, "--count", 0, "--bootstrap", 30, "--device", "cpu", *extra]))


def run(argv):
    from study.pipeline import run_study
    from study.run import build_parser, check_args
    args = build_parser().parse_args(argv)
    check_args(args)
    run_study(args)


def test_outside_rows_equal_the_rows_they_copy(toy, tmp_path):
    out = tmp_path / "study"
    run(study_argv(toy, out))
    rows = json.loads((out / "report.json").read_text())["rows"]
    # the gamma enhancement's folder and none's detections, brought back as another lab's
    shutil.copytree(out / "enhanced" / "gamma" / "gamma_noise", tmp_path / "their_images")
    shutil.copy(rows["none"]["gamma_noise"]["detections"]["bbox"], tmp_path / "their.json")
    run(study_argv(toy, out, "--external_images", f"their_gamma:gamma_noise={tmp_path / 'their_images'}",
                   "--external_detections", f"their_none:gamma_noise={tmp_path / 'their.json'}"))
    report = json.loads((out / "report.json").read_text())
    rows = report["rows"]
    assert list(rows)[:4] == ["none", "gamma", "their_gamma", "their_none"]
    assert set(rows["their_gamma"]) == set(rows["their_none"]) == {"gamma_noise"}
    gamma, theirs = rows["gamma"]["gamma_noise"]["bbox"], rows["their_gamma"]["gamma_noise"]["bbox"]
    for key in ("AP", "AP50", "AP_ci", "AP50_ci", "vs_none"):
        assert theirs[key] == gamma[key], key
    assert rows["their_gamma"]["gamma_noise"]["PSNR"] == rows["gamma"]["gamma_noise"]["PSNR"]
    none, copied = rows["none"]["gamma_noise"]["bbox"], rows["their_none"]["gamma_noise"]["bbox"]
    for key in ("AP", "AP50", "AP75", "AP_ci", "AP50_ci"):
        assert copied[key] == none[key], key
    assert copied["vs_none"]["AP"]["delta"] == 0.0 and copied["vs_none"]["AP"]["ci"] == [0.0, 0.0]
    assert "their_none" in report["headline"] and "their_gamma" in (out / "report.md").read_text()


def test_bad_outside_rows_stop_before_the_first_step(toy, tmp_path):
    data = toy
    train, val = data / "annotations" / "instances_train.json", data / "annotations" / "instances_val.json"
    images = tmp_path / "images"
    shutil.copytree(data / "val", images)
    missing = sorted(images.iterdir())[0]
    missing.unlink()
    good = tmp_path / "good"
    shutil.copytree(data / "val", good)
    coco = json.loads(val.read_text())
    (tmp_path / "bad_id.json").write_text(json.dumps(
        [{"image_id": 999, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]))
    (tmp_path / "nan.json").write_text(
        '[{"image_id": %d, "category_id": 1, "bbox": [1, 2, NaN, 4], "score": 0.5}]'
        % coco["images"][0]["id"])
    before = tree_digest(data)
    cases = [
        (("--external_images", f"x:gamma_noise={images}"), rf"{missing.name}: missing from --external_images"),
        (("--external_images", f"gamma:gamma_noise={good}"), "'gamma' is a built-in row"),
        (("--external_images", f"x:lis={good}"), "the study has no test set 'lis'"),
        (("--external_images", f"x:gamma_noise={good}", "--external_detections",
          f"X:gamma_noise={tmp_path / 'bad_id.json'}"), "already an --external_images row"),
        (("--external_detections", f"y:gamma_noise={tmp_path / 'bad_id.json'}"),
         r"bad_id.json: entry 0: image_id 999 is not in the annotation"),
        (("--external_detections", f"y:gamma_noise={tmp_path / 'nan.json'}"),
         r"nan.json: entry 0: bbox .* is not 4 finite numbers"),
        (("--external_images", "no_set_given"), "expected NAME:SET=PATH"),
    ]
    for n, (extra, message) in enumerate(cases):
        with pytest.raises(UserError, match=message):
            plan(data, train, val, tmp_path / f"s{n}", "none", "gamma", "--methods", "gamma_noise",
                 *extra)
        assert not (tmp_path / f"s{n}").exists()
    assert tree_digest(data) == before
    study = plan(data, train, val, tmp_path / "ok", "none", "--methods", "gamma_noise",
                 "--external_images", f"x:gamma_noise={good}")
    assert [r.name for r in study.remedies] == ["none", "x"]


def test_retrain_on_enhanced_adds_a_fine_tuned_row(toy, tmp_path):
    """gamma+ft: the normal-light detector fine-tuned on gamma's enhanced train images, scored on
    gamma's enhanced test images, compared with none and with gamma's frozen-detector row."""
    out = tmp_path / "study"
    run(study_argv(toy, out, "--retrain_on_enhanced", "gamma", "--finetune_epochs", 1))
    report = json.loads((out / "report.json").read_text())
    rows = report["rows"]
    assert list(rows)[:3] == ["none", "gamma", "gamma+ft"]
    assert "normal" not in rows["gamma+ft"]  # low light only, as gamma
    cell = rows["gamma+ft"]["gamma_noise"]["bbox"]
    assert 0 <= cell["AP"] <= cell["AP50"] <= 1
    assert cell["vs_frozen"]["remedy"] == "gamma"
    assert cell["vs_frozen"]["AP"]["delta"] == pytest.approx(
        cell["AP"] - rows["gamma"]["gamma_noise"]["bbox"]["AP"])
    assert cell["vs_none"]["AP"]["delta"] == pytest.approx(
        cell["AP"] - rows["none"]["gamma_noise"]["bbox"]["AP"])
    assert (out / "mask_rcnn" / "gamma_ft" / "last.pth").is_file()
    commands = "\n".join(report["commands"])
    assert f"--image_dir {out / 'enhanced' / 'gamma' / 'train_gamma_noise'}" in commands
    assert "ΔAP vs frozen" in (out / "report.md").read_text()


def test_retrain_on_enhanced_refuses_rows_it_cannot_make(toy, tmp_path):
    data = toy
    train, val = data / "annotations" / "instances_train.json", data / "annotations" / "instances_val.json"
    with pytest.raises(UserError, match="--retrain_on_enhanced clahe: not a row of the study"):
        plan(data, train, val, tmp_path / "s1", "none", "gamma", "--retrain_on_enhanced", "clahe")
    with pytest.raises(UserError, match="--retrain_on_enhanced finetune: not an image remedy"):
        plan(data, train, val, tmp_path / "s2", "none", "finetune", "--retrain_on_enhanced", "finetune")
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s2").exists()
