"""coco_match.match (vectorised) equals pycocotools' matching array for array, and its weighted
stats equal pycocotools' ImageMatches: boxes and masks (RLE and polygon ground truth, crowd),
score ties, crowded groups with ignored and crowd ground truth, more than 100 detections of one
class in an image, detections outside every area range, results carrying both bbox and mask."""
import numpy as np
import pytest

from bench.bench_scale import make_coco
from torch_utils_lib.data.coco_json import normalize_coco
from torch_utils_lib.evaluation.coco_match import match
from torch_utils_lib.evaluation.matching import ImageMatches


def crowded(seed):
    """Few images, two classes, many overlapping objects a class (some crowd, some tiny or huge),
    up to 130 detections of one class in an image, scores with ties."""
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 300, "height": 200, "file_name": f"{i}.jpg"} for i in range(4)]
    anns, results = [], []
    for image in images:
        for c in (1, 2):
            for _ in range(rng.integers(0, 25)):
                w, h = rng.uniform(2, 150), rng.uniform(2, 120)
                x, y = rng.uniform(0, 300 - w), rng.uniform(0, 200 - h)
                crowd = int(rng.random() < 0.1)
                poly = [x, y, x + w, y, x + w, y + h, x, y + h]
                ann = {"id": len(anns) + 1, "image_id": image["id"], "category_id": c,
                       "bbox": [x, y, w, h], "iscrowd": crowd, "area": float(w * h)}
                if crowd:
                    rle = mask_utils.frPyObjects([poly], 200, 300)[0]
                    ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
                else:
                    ann["segmentation"] = [poly]
                anns.append(ann)
            for _ in range(rng.integers(0, 130)):
                w, h = rng.uniform(2, 150), rng.uniform(2, 120)
                x, y = rng.uniform(0, 300 - w), rng.uniform(0, 200 - h)
                rle = mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]], 200, 300)[0]
                results.append({"image_id": image["id"], "category_id": c, "bbox": [x, y, w, h],
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                                "score": float(rng.choice([0.5, 0.25, round(rng.random(), 2)]))})
    categories = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "unused"}]
    return {"images": images, "annotations": anns, "categories": categories}, results


def sets():
    gt, a, _ = make_coco(15, seed=4, detections=25)
    for r in a:
        r["score"] = round(r["score"], 1)  # ties
    yield "make_coco", normalize_coco(gt)[0], a
    gt, results = crowded(0)
    yield "crowded", normalize_coco(gt)[0], results


@pytest.mark.parametrize("name, gt, results", list(sets()))
@pytest.mark.parametrize("iou_type, keep_box", [("bbox", True), ("segm", False), ("segm", True)])
def test_vectorised_matching_equals_pycocotools(name, gt, results, iou_type, keep_box):
    dropped = "segmentation" if iou_type == "bbox" else ("" if keep_box else "bbox")
    results = [{k: v for k, v in r.items() if k != dropped} for r in results]
    reference = ImageMatches.from_coco(gt, results, iou_type)
    fast = match(gt, results, iou_type)
    assert fast.image_ids == reference.image_ids and fast.category_ids == reference.category_ids
    assert np.array_equal(fast.gt_counts, reference.gt_counts)
    assert np.array_equal(fast.tp_top, reference.tp_top)
    assert set(fast.curves) <= set(reference.curves)
    for key, curve in fast.curves.items():
        ref = reference.curves[key]
        assert np.array_equal(curve.images, ref.images) and np.array_equal(curve.positions, ref.positions)
        assert np.array_equal(curve.missing, ref.missing)
    n = len(reference.image_ids)
    weights = np.vstack([np.ones(n, dtype=np.int64),
                         np.random.default_rng(1).multinomial(n, np.full(n, 1 / n), size=6)])
    assert np.array_equal(fast.stats(weights), reference.stats(weights))


def test_no_detections():
    gt, _ = crowded(1)
    gt = normalize_coco(gt)[0]
    assert np.array_equal(match(gt, [], "bbox").stats(np.ones((1, 4), dtype=np.int64)),
                          ImageMatches.from_coco(gt, [], "bbox").stats(np.ones((1, 4), dtype=np.int64)))
