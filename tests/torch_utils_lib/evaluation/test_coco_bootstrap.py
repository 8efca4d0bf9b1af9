"""Weighted COCO stats equal pycocotools on duplicated image sets; bootstrap intervals behave."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from torch_utils_lib.evaluation.matching import ImageMatches

from torch_utils_lib.evaluation.coco_bootstrap import bootstrap_weights, format_interval, resampled_stats, with_intervals
from torch_utils_lib.evaluation.metrics import STAT_NAMES
from torch_utils_lib.evaluation.coco_eval import coco_stats

SIZE = 128


def box_polygon(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def box_rle(x, y, w, h):
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[int(y):int(y + h), int(x):int(x + w)] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def synthetic_set(n_images, seed, n_categories=3, empty_images=2, score_offset=0.0):
    """Ground truth with crowd regions and sizes across all area ranges, and jittered detections
    with distinct scores; the last `empty_images` images get no detections at all."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": SIZE, "height": SIZE, "file_name": f"{i}.png"} for i in range(n_images)]
    categories = [{"id": c + 1, "name": f"c{c}"} for c in range(n_categories)]
    annotations, results = [], []
    scores = iter(rng.permutation(100_000)[:100_000] / 100_000 + score_offset)
    for image in images:
        for _ in range(rng.integers(1, 6)):
            w, h = rng.choice([4, 14, 40, 100]) + rng.integers(0, 8, 2)
            x, y = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
            crowd = int(rng.random() < 0.15)
            c = int(rng.integers(1, n_categories + 1))
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": c,
                                "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h),
                                "iscrowd": crowd,
                                "segmentation": box_rle(x, y, w, h) if crowd else box_polygon(x, y, w, h)})
            if image["id"] > n_images - empty_images or rng.random() < 0.2:
                continue
            for _ in range(rng.integers(1, 3)):  # duplicates become false positives
                jx, jy = rng.normal(0, 1.5, 2)
                bx, by = float(np.clip(x + jx, 0, SIZE - w)), float(np.clip(y + jy, 0, SIZE - h))
                label = c if rng.random() > 0.1 else int(rng.integers(1, n_categories + 1))
                results.append({"image_id": image["id"], "category_id": label, "bbox": [bx, by, float(w), float(h)],
                                "segmentation": box_rle(bx, by, w, h), "score": float(next(scores))})
        if image["id"] <= n_images - empty_images:
            x, y = rng.integers(0, SIZE - 10, 2)
            results.append({"image_id": image["id"], "category_id": int(rng.integers(1, n_categories + 1)),
                            "bbox": [float(x), float(y), 9.0, 9.0], "segmentation": box_rle(x, y, 9, 9),
                            "score": float(next(scores))})
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, results


def as_type(results, iou_type):
    drop = "segmentation" if iou_type == "bbox" else "bbox"
    return [{k: v for k, v in r.items() if k != drop} for r in results]


def duplicated(gt, results, weights):
    """The set in which image i appears weights[i] times (copies get new ids)."""
    images, annotations, out = [], [], []
    for image, w in zip(gt["images"], weights):
        for copy in range(w):
            new_id = len(images) + 1
            images.append({**image, "id": new_id})
            annotations += [{**a, "id": len(annotations) + j + 1, "image_id": new_id}
                            for j, a in enumerate(a for a in gt["annotations"] if a["image_id"] == image["id"])]
            out += [{**r, "image_id": new_id} for r in results if r["image_id"] == image["id"]]
    return {**gt, "images": images, "annotations": annotations}, out


@pytest.fixture(scope="module")
def sample():
    return synthetic_set(12, seed=0)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_weighted_stats_equal_pycocotools(sample, iou_type):
    gt, results = sample
    results = as_type(results, iou_type)
    matches = ImageMatches.from_coco(gt, results, iou_type)
    reference = coco_stats(gt, results, iou_type)
    ones = matches.stats(np.ones(len(gt["images"]), dtype=int))[0]
    assert 0.2 < reference["AP"] < 0.9 and reference["APs"] > -1 and reference["APl"] > -1
    for j, name in enumerate(STAT_NAMES):
        assert ones[j] == pytest.approx(reference[name], abs=1e-9), name
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 4, (3, len(gt["images"])))
    weights[0, -1] = 3  # an image without detections counted three times
    weighted = matches.stats(weights)
    for row, w in zip(weighted, weights):
        expected = coco_stats(*duplicated(gt, results, w), iou_type)
        for j, name in enumerate(STAT_NAMES):
            assert row[j] == pytest.approx(expected[name], abs=1e-9), (name, w)


def test_input_dicts_are_not_modified(sample):
    gt, results = sample
    before = repr(gt), repr(results)
    ImageMatches.from_coco(gt, as_type(results, "segm"), "segm")
    coco_stats(gt, results, "bbox")
    assert (repr(gt), repr(results)) == before


def paired_difference(gt, results_a, results_b, n, seed):
    """with_intervals' `vs_b` of detections `results_a` against `results_b` (bbox)."""
    full, draws = resampled_stats(gt, {"a": results_a, "b": results_b}, "bbox", n, seed)
    stats = {row: {"AP": float(full[row][0])} for row in full}
    out = with_intervals(stats, full, draws, {"a": {"b": "b"}})
    assert "vs_b" not in out["b"] and out["a"]["AP"] == stats["a"]["AP"]
    return out["a"]["vs_b"]


def test_identical_detections_give_a_paired_difference_of_exactly_zero(sample):
    gt, results = sample
    diff = paired_difference(gt, as_type(results, "bbox"), as_type(results, "bbox"), n=200, seed=3)
    for name in ("AP", "AP50", "AP75"):
        assert diff[name] == {"delta": 0.0, "ci": [0.0, 0.0], "share_le_0": 1.0}


def test_paired_difference_of_a_worse_detector(sample):
    gt, results = sample
    worse = [{**r, "bbox": [r["bbox"][0] + 3, *r["bbox"][1:]]} for r in as_type(results, "bbox")]
    diff = paired_difference(gt, as_type(results, "bbox"), worse, n=300, seed=0)
    full = coco_stats(gt, as_type(results, "bbox"), "bbox")["AP"] - coco_stats(gt, worse, "bbox")["AP"]
    assert diff["AP"]["delta"] == pytest.approx(full, abs=1e-12) and full > 0.05
    assert 0 < diff["AP"]["ci"][0] < full < diff["AP"]["ci"][1]
    assert diff["AP"]["share_le_0"] == 0.0


def test_interval_narrows_as_the_test_set_grows():
    widths = []
    for n_images in (10, 80):
        gt, results = synthetic_set(n_images, seed=5, empty_images=0)
        full, draws = resampled_stats(gt, {"set": as_type(results, "bbox")}, "bbox", n=300, seed=0)
        out = with_intervals({"set": {"AP": float(full["set"][0])}}, full, draws)["set"]
        low, high = out["AP_ci"]
        assert low < out["AP"] < high
        assert out["AP"] == pytest.approx(coco_stats(gt, as_type(results, "bbox"), "bbox")["AP"], abs=1e-12)
        widths.append(high - low)
    assert widths[1] < 0.6 * widths[0]


def test_bootstrap_is_seeded_and_counts_every_image_once_on_average():
    w = bootstrap_weights(7, n=2000, seed=4)
    assert w.shape == (2000, 7) and (w.sum(1) == 7).all()
    assert np.array_equal(w, bootstrap_weights(7, n=2000, seed=4))
    assert abs(w.mean() - 1) < 0.02
    assert format_interval(0.4123, [0.38789, 0.4371]) == "0.412 [0.388, 0.437]"


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_streamed_resamples_equal_one_chunk_of_all(sample, iou_type):
    gt, results = sample
    worse = [{**r, "bbox": [r["bbox"][0] + 2, *r["bbox"][1:]]} for r in results]
    sets = {"a": as_type(results, iou_type), "b": as_type(worse, iou_type)}
    full, draws = resampled_stats(gt, sets, iou_type, n=60, seed=2, chunk=60)
    matches = ImageMatches.from_coco(gt, sets["a"], iou_type)
    weights = bootstrap_weights(len(gt["images"]), 60, seed=2)
    assert np.array_equal(draws["a"], matches.stats(weights))  # one call with every resample
    assert np.array_equal(weights[25:40], bootstrap_weights(len(gt["images"]), 15, seed=2, start=25))
    for chunk in (1, 7, 59, 1000):
        full_c, draws_c = resampled_stats(gt, sets, iou_type, n=60, seed=2, chunk=chunk)
        for name in sets:
            assert np.abs(draws_c[name] - draws[name]).max() <= 1e-12, (chunk, name)
            assert np.array_equal(full_c[name], full[name])
    assert draws["a"].shape == (60, len(STAT_NAMES)) and np.std(draws["a"][:, 0]) > 0
