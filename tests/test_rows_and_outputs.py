"""No row, box or file that silently belongs to something else: names, outputs and weights.

Each case runs a script as a user would and checks the one `error:` line, the exit status, that
every input file is unchanged and that nothing was written.
"""
import json
import os
import shutil

import pytest
import torch

from tests.helpers import assert_user_error, run_script
from tests.test_user_errors import tree_digest
from torch_utils_lib.toolkit.paths import sample_annotation, sample_images, sample_low_light

IMAGES = 2


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Inputs: 2 sample images, copies under colliding names, RAW names, finite and NaN weights."""
    from torch_utils_lib.models.detectors import build_detector
    root = tmp_path_factory.mktemp("inputs")
    with open(sample_annotation("val")) as f:
        coco = json.load(f)
    coco["images"] = coco["images"][:IMAGES]
    ids = {i["id"] for i in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    (root / "coco.json").write_text(json.dumps(coco))
    names = [i["file_name"] for i in coco["images"]]
    for folder, source in (("normal", sample_images("val")), ("low", sample_low_light("val"))):
        os.makedirs(root / folder)
        for name in names:
            shutil.copy(os.path.join(source, name), root / folder / name)
    os.makedirs(root / "same_stem")  # a.png and a.jpg: one a_pred.png
    shutil.copy(root / "low" / names[0], root / "same_stem" / "a.png")
    from torch_utils_lib.data.image_io import read_rgb, write_image
    write_image(str(root / "same_stem" / "a.jpg"), read_rgb(str(root / "low" / names[1])))
    os.makedirs(root / "same_case")  # A.png and a.png: one file on macOS and Windows
    shutil.copy(root / "low" / names[0], root / "same_case" / "A.png")
    shutil.copy(root / "low" / names[1], root / "same_case" / "a.png")
    for folder, files in (("raw_case", ["x.dng", "x.DNG"]), ("raw_overlay", ["a.dng", "a_detections.dng"])):
        os.makedirs(root / folder)
        for name in files:
            (root / folder / name).write_bytes(b"checked before it is read")
    (root / "weights.pth").write_bytes(b"checked before it is read")
    torch.manual_seed(0)
    model = build_detector("maskrcnn_resnet18_fpn", 4, "none", min_size=64, max_size=64)
    torch.save(model.state_dict(), root / "finite.pth")
    state = model.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"][0, 0] = float("nan")
    state["rpn.head.conv.0.0.weight"][0, 0, 0, 0] = float("inf")
    torch.save(state, root / "nan_state_dict.pth")
    torch.save({"model": state, "config": {"model": "maskrcnn_resnet18_fpn"}}, root / "nan_checkpoint.pth")
    torch.save({"model": {"w": torch.ones(2)}, "ema": {"shadow": {"w": torch.tensor([1.0, float("nan")])}},
                "config": {}}, root / "nan_ema.pth")
    torch.save({"model": {"w": torch.tensor([float("-inf")])}, "config": {"model": "genisp"}},
               root / "nan_genisp.pth")
    return root


EVALUATE = ["mask_rcnn/evaluate.py", "--normal_light_img_dir", "{root}/normal", "--low_light_img_dir",
            "{root}/low", "--annotation", "{root}/coco.json", "--weight_path", "{root}/weights.pth",
            "--output_dir", "{out}", "--device", "cpu"]
NAMING = "must be 1 to 100 letters, digits, '_', '.' or '-'"
NAN = "the weights hold NaN or infinite values"

# (command with {root} and {out}, fragments of the error line)
CASES = {
    "--compare named like the --weight_path row": (
        EVALUATE + ["--compare", "checkpoint={root}/finite.pth"],
        ["--compare checkpoint=", "'checkpoint' is already taken by the row of --weight_path"]),
    "--compare named twice": (
        EVALUATE + ["--compare", "a={root}/finite.pth", "a={root}/weights.pth"],
        ["--compare a={root}/weights.pth: the name 'a' is already taken by --compare a={root}/finite.pth"]),
    "--compare names differing in case": (
        EVALUATE + ["--compare", "low={root}/finite.pth", "LOW={root}/weights.pth"],
        ["the name 'LOW' is already taken by --compare low="]),
    "--compare named like the COCO row": (
        EVALUATE + ["--compare", "maskrcnn_resnet50_fpn={root}/finite.pth"],
        ["already taken by the COCO row of --pretrained maskrcnn_resnet50_fpn"]),
    "--compare without a name, its stem unsafe": (
        EVALUATE + ["--compare", "{root}/my weights.pth"], ["the name 'my weights'", NAMING]),
    "--image_set name with a separator": (
        EVALUATE + ["--image_set", "../up={root}/low"], ["--image_set ../up={root}/low", NAMING]),
    "--image_set name with a pipe": (
        EVALUATE + ["--image_set", "a|b={root}/low"], ["the name 'a|b'", NAMING]),
    "--image_set name '..'": (EVALUATE + ["--image_set", "..={root}/low"], ["the name '..'", NAMING]),
    "--image_set named twice": (
        EVALUATE + ["--image_set", "dark={root}/low", "--image_set", "Dark={root}/normal"],
        ["--image_set Dark={root}/normal: the name 'Dark' is already taken by --image_set dark="]),
    "mask_rcnn inference on a.png and a.jpg": (
        ["mask_rcnn/inference.py", "--image_dir", "{root}/same_stem", "--weight_path",
         "{root}/finite.pth", "--output_dir", "{out}", "--device", "cpu"],
        ["{root}/same_stem: a.jpg and a.png would both be written as a_pred.png", "rename one"]),
    "genisp inference on x.dng and x.DNG": (
        ["genisp/inference.py", "--raw_dir", "{root}/raw_case", "--weight_path", "{root}/weights.pth",
         "--output_dir", "{out}", "--device", "cpu"],
        ["{root}/raw_case: x.DNG and x.dng would both be written as x.png"]),
    "genisp inference whose overlay is another file's PNG": (
        ["genisp/inference.py", "--raw_dir", "{root}/raw_overlay", "--weight_path",
         "{root}/weights.pth", "--output_dir", "{out}", "--detect", "--device", "cpu"],
        ["a.dng and a_detections.dng would both be written as a_detections.png"]),
    "diffusion restore of A.png and a.png": (
        ["diffusion_model/inference.py", "--conditional_image_dir", "{root}/same_case",
         "--weight_path", "{root}/weights.pth", "--output_dir", "{out}", "--input_image_dir", "",
         "--device", "cpu"],
        ["{root}/same_case: A.png and a.png would both be written as a.png"]),
    "evaluate a plain state dict holding NaN": (
        EVALUATE[:EVALUATE.index("--weight_path")] + ["--weight_path", "{root}/nan_state_dict.pth",
                                                      "--output_dir", "{out}", "--device", "cpu",
                                                      "--pretrained", "none"],
        ["{root}/nan_state_dict.pth: " + NAN, "(in rpn.head.conv.0.0.weight and 1 more tensor)"]),
    "inference from a checkpoint holding NaN": (
        ["mask_rcnn/inference.py", "--image_dir", "{root}/low", "--weight_path",
         "{root}/nan_checkpoint.pth", "--output_dir", "{out}", "--device", "cpu"],
        ["{root}/nan_checkpoint.pth: " + NAN]),
    "fine-tuning from NaN weights": (
        ["mask_rcnn/train.py", "--image_dir", "{root}/normal", "--annotation", "{root}/coco.json",
         "--weight_path", "{root}/nan_state_dict.pth", "--checkpoint_dir", "{out}", "--epoch", "1",
         "--device", "cpu"],
        ["{root}/nan_state_dict.pth: " + NAN]),
    "training from a NaN --weights file": (
        ["mask_rcnn/train.py", "--image_dir", "{root}/normal", "--annotation", "{root}/coco.json",
         "--model", "maskrcnn_resnet18_fpn", "--weights", "{root}/nan_state_dict.pth",
         "--checkpoint_dir", "{out}", "--epoch", "1", "--device", "cpu"],
        ["{root}/nan_state_dict.pth: " + NAN]),
    "diffusion restore with NaN EMA weights": (
        ["diffusion_model/inference.py", "--conditional_image_dir", "{root}/low", "--weight_path",
         "{root}/nan_ema.pth", "--output_dir", "{out}", "--input_image_dir", "", "--device", "cpu"],
        ["{root}/nan_ema.pth: " + NAN, "(in w)"]),
    "--bootstrap of a billion resamples": (
        EVALUATE + ["--bootstrap", "1000000000"],
        ["--bootstrap 1000000000: must be between 0 and 100000"]),
    "genisp inference with NaN weights": (
        ["genisp/inference.py", "--raw_dir", "{root}/raw_overlay", "--weight_path",
         "{root}/nan_genisp.pth", "--output_dir", "{out}", "--device", "cpu"],
        ["{root}/nan_genisp.pth: " + NAN]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_before_anything_is_written(root, tmp_path, case):
    command, fragments = CASES[case]
    out = tmp_path / "out"
    before = tree_digest(root)
    result = run_script(*[a.format(root=root, out=out) for a in command])
    assert result.returncode == 2, result.stderr[-2000:]
    assert_user_error(result, *[f.format(root=root) for f in fragments])
    assert tree_digest(root) == before
    assert not out.exists()
