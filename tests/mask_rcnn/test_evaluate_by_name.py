"""A COCO-label-space detector on a dataset whose ids collide with COCO's: classes match by name."""
import json

import torch

from tests.helpers import LIS_NAMES, make_lis_style_set, run_script

COCO_BIASED = ("chair", "car", "motorcycle", "giraffe")  # giraffe: a class the set does not have


def coco_label_space_checkpoint(path):
    """A light Mask R-CNN in COCO's 91-label space, config as load_detector gives the torchvision
    COCO models, whose classifier favours COCO_BIASED so that it detects those classes."""
    from torch_utils_lib.runtime.checkpoint import save_checkpoint
    from torch_utils_lib.models.detectors import COCO_CATEGORY_NAMES, build_detector, detector_config
    torch.manual_seed(0)
    model = build_detector("maskrcnn_resnet18_fpn", len(COCO_CATEGORY_NAMES), min_size=64)
    with torch.no_grad():
        predictor = model.roi_heads.box_predictor
        for layer in (predictor.cls_score, predictor.bbox_pred):  # scores from the bias alone;
            layer.weight.zero_()                                 # boxes are the proposals
        predictor.bbox_pred.bias.zero_()
        bias = predictor.cls_score.bias
        bias.fill_(-10.0)
        for n, name in enumerate(COCO_BIASED):  # distinct scores: chair first, giraffe last
            bias[COCO_CATEGORY_NAMES.index(name)] = 10.0 - 0.1 * n
    config = detector_config("maskrcnn_resnet18_fpn", COCO_CATEGORY_NAMES, 64, 512,
                             range(len(COCO_CATEGORY_NAMES)))
    save_checkpoint(str(path), model, config)
    return path


def test_coco_label_model_scores_voc_named_ids_from_zero_and_dumps_dataset_ids(tmp_path):
    made = run_script("dataset/make_sample.py", "--output_dir", tmp_path / "sample", "--train", 1,
                      "--val", 5, "--size", 64)  # 5: every class appears
    assert made.returncode == 0, made.stderr[-2000:]
    dark, annotation, normal = make_lis_style_set(str(tmp_path / "sample"), "val", str(tmp_path / "lis"))
    weights = coco_label_space_checkpoint(tmp_path / "coco_space.pth")
    out = tmp_path / "eval"
    result = run_script("mask_rcnn/evaluate.py", "--weight_path", weights, "--annotation", annotation,
                        "--normal_light_img_dir", normal, "--low_light_img_dir", dark,
                        "--output_dir", out, "--count", 0, "--pretrained", "none", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads((out / "ap_table.json").read_text())
    for set_name in ("normal", "low_light"):
        stats = table["stats"]["checkpoint"][set_name]
        assert set(stats) == {"bbox", "segm"} and 0 <= stats["bbox"]["AP"] <= 1
        detections = json.loads((out / "checkpoint" / f"detections_{set_name}_bbox.json").read_text())
        # chair/car/motorbike are LIS ids 0/1/2 (COCO's 62/3/4); giraffe has no id in the set.
        ids = {d["category_id"] for d in detections}
        assert ids == {cid - 1 for cid in LIS_NAMES}, ids


def test_finetuning_a_coco_label_model_on_voc_names_keeps_the_coco_head(tmp_path):
    made = run_script("dataset/make_sample.py", "--output_dir", tmp_path / "sample", "--train", 1,
                      "--val", 5, "--size", 64)
    assert made.returncode == 0, made.stderr[-2000:]
    dark, annotation, normal = make_lis_style_set(str(tmp_path / "sample"), "val", str(tmp_path / "lis"))
    weights = coco_label_space_checkpoint(tmp_path / "coco_space.pth")
    result = run_script("mask_rcnn/train.py", "--weight_path", weights, "--image_dir", dark,
                        "--annotation", annotation, "--checkpoint_dir", tmp_path / "ft", "--epoch", 1,
                        "--batch_size", 5, "--eval_every", 0, "--min_size", 64, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    from torch_utils_lib.runtime.checkpoint import load_checkpoint
    from torch_utils_lib.models.detectors import COCO_CATEGORY_NAMES
    config = load_checkpoint(str(tmp_path / "ft" / "last.pth"))["config"]
    assert config["categories"] == COCO_CATEGORY_NAMES and config["num_classes"] == 91


def test_image_sets_per_category_ap_and_a_file_without_annotations(tmp_path):
    import contextlib
    import io
    import re

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    made = run_script("dataset/make_sample.py", "--output_dir", tmp_path / "sample", "--train", 1,
                      "--val", 5, "--size", 64)
    assert made.returncode == 0, made.stderr[-2000:]
    dark, annotation, normal = make_lis_style_set(str(tmp_path / "sample"), "val", str(tmp_path / "lis"))
    weights = coco_label_space_checkpoint(tmp_path / "coco_space.pth")
    out = tmp_path / "eval"
    result = run_script("mask_rcnn/evaluate.py", "--weight_path", weights, "--annotation", annotation,
                        "--image_set", f"dark={dark}", "--image_set", f"normal={normal},{annotation}",
                        "--output_dir", out, "--pretrained", "none", "--bootstrap", 0,
                        "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    # ap_table.md: the "model | set" rows keep the header's cell count
    lines = (out / "ap_table.md").read_text().splitlines()
    cells = [len(re.split(r"(?<!\\)\|", line)) for line in lines]
    assert len(set(cells)) == 1 and lines[0].startswith("| model \\| set |"), lines
    assert lines[2].startswith("| checkpoint \\| dark |")
    # per-category AP: the dataset's class names, equal to pycocotools restricted to one class
    table = json.loads((out / "ap_table.json").read_text())
    per_category = table["per_category"]["checkpoint"]
    assert set(per_category) == {"dark", "normal"}
    names = {cid - 1: name for cid, name in LIS_NAMES.items()}
    for set_name in ("dark", "normal"):
        for iou_type in ("bbox", "segm"):
            by_name = per_category[set_name][iou_type]
            assert list(by_name) == [names[i] for i in sorted(names)]
            for category_id, name in names.items():
                with contextlib.redirect_stdout(io.StringIO()):
                    gt = COCO(annotation)
                    e = COCOeval(gt, gt.loadRes(str(out / "checkpoint" /
                                                    f"detections_{set_name}_{iou_type}.json")), iou_type)
                    e.params.catIds = [category_id]
                    e.evaluate(), e.accumulate(), e.summarize()
                assert by_name[name] == {"AP": e.stats[0], "AP50": e.stats[1], "AP75": e.stats[2]}
    assert "per-category AP of checkpoint:\n| category | bbox AP dark | segm AP dark |" in result.stdout
    assert f"| chair | {per_category['dark']['bbox']['chair']['AP']:.3f} |" in result.stdout

    # the same images listed without annotations: detections still carry the ids of the names
    coco = json.loads(open(annotation).read())
    coco["annotations"] = []
    empty = tmp_path / "lis_no_annotations.json"
    empty.write_text(json.dumps(coco))
    result = run_script("mask_rcnn/evaluate.py", "--weight_path", weights, "--annotation", empty,
                        "--image_set", f"dark={dark}", "--output_dir", tmp_path / "empty",
                        "--pretrained", "none", "--bootstrap", 0, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    detections = json.loads((tmp_path / "empty" / "checkpoint" / "detections_dark_bbox.json").read_text())
    with_annotations = json.loads((out / "checkpoint" / "detections_dark_bbox.json").read_text())
    assert {d["category_id"] for d in detections} == set(names)  # not COCO's labels 1..3 by position
    assert detections == with_annotations
