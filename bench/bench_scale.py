"""Benchmark every step's cost as the image count grows: seconds per image and peak memory per size.

A COCO-like set is made on the fly (640x480 images, ~7 instances per image with polygons of
10-60 vertices, 1% crowd regions as RLE, COCO's 80 category ids up to 90) with two seeded
detection sets of ~100 detections per image (boxes, scores, RLE masks; the second is the first
shifted, for the paired differences). Each (step, size) runs in its own process, so its peak
RSS (VmHWM) is its own; the table gives seconds per image, peak MB and the growth ratio of
seconds per image from the middle to the largest size (goal: at most 1.2). Steps that read or
write pixels run on fewer images (their sizes are in the table); the RAW cache is one DNG at
RAW-NOD's 5472x3648 resized to 1333x800.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import json
import pickle
import resource
import shutil
import subprocess
import tempfile
import time

import numpy as np

from torch_utils_lib.evaluation.coco_eval import detections_file
from torch_utils_lib.evaluation.metrics import IOU_TYPES
from torch_utils_lib.toolkit.cli import ArgumentParser, positive_int
from torch_utils_lib.toolkit.errors import run_main

WIDTH, HEIGHT = 640, 480
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
INSTANCES, DETECTIONS = 7, 100
RESAMPLES = 1000
RAW_SIZE, RAW_RESIZE = (3648, 5472), (1333, 800)


# ---------------------------------------------------------------- the synthetic set

def _polygon(rng, x, y, w, h):
    """A closed blob of 10-60 vertices inside the box (COCO's polygons have ~20-30)."""
    k = int(rng.integers(10, 61))
    angle = np.sort(rng.uniform(0, 2 * np.pi, k))
    radius = rng.uniform(0.6, 1.0, k)
    px = x + w / 2 + np.cos(angle) * radius * w / 2
    py = y + h / 2 + np.sin(angle) * radius * h / 2
    return [float(v) for xy in zip(px.round(2), py.round(2)) for v in xy]


def make_coco(n_images, seed=0, detections=DETECTIONS):
    """(ground truth dict, detections A, detections B): COCO results lists with bbox and RLE,
    `detections` an image."""
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(seed)
    images = [{"id": 100000 + i, "width": WIDTH, "height": HEIGHT, "file_name": f"{i:06d}.jpg"}
              for i in range(n_images)]
    categories = [{"id": c, "name": f"class{c}", "supercategory": "thing"} for c in COCO_IDS]
    annotations, results_a, results_b = [], [], []
    for image in images:
        boxes, polygons, labels = [], [], []
        for _ in range(rng.poisson(INSTANCES)):
            w, h = np.clip(np.exp(rng.normal(np.log(45), 0.9, 2)), 4, [WIDTH - 1, HEIGHT - 1])
            x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
            c = int(rng.choice(COCO_IDS))
            ann = {"id": len(annotations) + 1, "image_id": image["id"], "category_id": c,
                   "bbox": [float(x), float(y), float(w), float(h)], "iscrowd": 0}
            if rng.random() < 0.01:  # a crowd region, as COCO stores them: RLE
                rle = mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]], HEIGHT, WIDTH)[0]
                ann.update(iscrowd=1, segmentation={"size": rle["size"], "counts": rle["counts"].decode()},
                           area=float(mask_utils.area(rle)))
            else:
                ann["segmentation"] = [_polygon(rng, x, y, w, h)]
                ann["area"] = float(w * h * 0.7)
                if rng.random() < 0.8:  # found: a jittered copy
                    j = rng.normal(0, 0.06, 4) * [w, h, w, h]
                    boxes.append([x + j[0], y + j[1], w + j[2], h + j[3]])
                    polygons.append([v + rng.normal(0, 0.04 * max(w, h)) for v in ann["segmentation"][0]])
                    labels.append(c)
            annotations.append(ann)
        for _ in range(detections - len(boxes)):  # false positives: random boxes, random classes
            w, h = np.clip(np.exp(rng.normal(np.log(40), 0.9, 2)), 4, [WIDTH - 1, HEIGHT - 1])
            x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
            boxes.append([x, y, w, h])
            polygons.append([x, y, x + w, y, x + w, y + h, x, y + h])
            labels.append(int(rng.choice(COCO_IDS)))
        rles = mask_utils.frPyObjects([[float(v) for v in p] for p in polygons], HEIGHT, WIDTH)
        scores = rng.uniform(0.0, 1.0, len(boxes)) ** 3  # most false positives score low
        for b, rle, c, s in zip(boxes, rles, labels, scores):
            segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
            box = [round(float(v), 2) for v in b]
            results_a.append({"image_id": image["id"], "category_id": c, "bbox": box,
                              "segmentation": segmentation, "score": round(float(s), 5)})
            results_b.append({"image_id": image["id"], "category_id": c,
                              "bbox": [box[0] + 3, box[1] + 2, box[2], box[3]],
                              "segmentation": segmentation,
                              "score": round(float(np.clip(s + rng.normal(0, 0.1), 0, 1)), 5)})
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, results_a, results_b


def write_images(folder, count, seed=0):
    """`count` 640x480 JPEGs (smooth colour fields with noise) named as make_coco's images."""
    from torch_utils_lib.data.image_io import write_image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] / max(WIDTH, HEIGHT)
    for i in range(count):
        a = rng.uniform(0, 1, (3, 3))
        rgb = np.stack([a[c, 0] * xx + a[c, 1] * yy + a[c, 2] for c in range(3)], -1) * 120
        rgb = np.clip(rgb + rng.normal(60, 25, rgb.shape), 0, 255).astype(np.uint8)
        write_image(os.path.join(folder, f"{i:06d}.jpg"), rgb)


def subset(gt, count):
    from torch_utils_lib.data.coco_json import subset_coco
    return subset_coco(gt, [image["id"] for image in gt["images"][:count]])


def _dump(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


def prepare(data, sizes, image_sizes, study_sizes):
    """Every input the steps read, written once under `data`."""
    os.makedirs(data, exist_ok=True)
    largest = max(sizes)
    gt, results_a, results_b = make_coco(largest)
    for n in sorted(set(sizes) | set(image_sizes) | set(study_sizes)):
        folder = os.path.join(data, str(n))
        os.makedirs(folder, exist_ok=True)
        part = subset(gt, n)
        ids = {image["id"] for image in part["images"]}
        _dump(os.path.join(folder, "instances.json"), part)
        for name, results in (("a", results_a), ("b", results_b)):
            kept = [r for r in results if r["image_id"] in ids]
            for iou_type, drop in (("bbox", "segmentation"), ("segm", "bbox")):
                _dump(detections_file(folder, name, iou_type),
                      [{k: v for k, v in r.items() if k != drop} for r in kept])
    write_images(os.path.join(data, "images"), max(image_sizes))
    make_exdark_tree(os.path.join(data, "exdark"), gt, max(image_sizes), os.path.join(data, "images"))
    for n in image_sizes:  # ExDark lists of the first n images
        with open(os.path.join(data, "exdark", "imageclasslist.txt")) as f:
            lines = f.read().splitlines()
        with open(os.path.join(data, "exdark", f"imageclasslist_{n}.txt"), "w") as f:
            f.write("\n".join(lines[:n + 1]) + "\n")


EXDARK_CLASSES = ("Bicycle", "Boat", "Bottle", "Bus", "Car", "Cat", "Chair", "Cup", "Dog",
                  "Motorbike", "People", "Table")


def make_exdark_tree(out, gt, count, image_dir):
    """ExDark's layout: images/<Class>/<name>, annotations/<Class>/<name>.txt, imageclasslist.txt;
    a third of the files are named .JPG where the list says .jpg, as in ExDark."""
    lines = ["Name Class Light In/Out Train/Val/Test"]
    for n, image in enumerate(gt["images"][:count]):
        cls = EXDARK_CLASSES[n % len(EXDARK_CLASSES)]
        name = image["file_name"]
        on_disk = name[:-4] + ".JPG" if n % 3 == 0 else name
        for sub in ("images", "annotations"):
            os.makedirs(os.path.join(out, sub, cls), exist_ok=True)
        os.link(os.path.join(image_dir, name), os.path.join(out, "images", cls, on_disk))
        anns = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        rows = ["% bbGt version=3"] + [f"{cls} " + " ".join(str(max(1, int(v))) for v in a["bbox"])
                                       + " 0 0 0 0 0 0 0" for a in anns]
        with open(os.path.join(out, "annotations", cls, on_disk + ".txt"), "w") as f:
            f.write("\n".join(rows) + "\n")
        lines.append(f"{name} {EXDARK_CLASSES.index(cls) + 1} 1 1 {n % 3 + 1}")
    with open(os.path.join(out, "imageclasslist.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- the steps (one process each)

def _image_set(data, n):
    """(image folder holding exactly the first n images, their annotation)."""
    folder = os.path.join(data, f"images_{n}")
    if not os.path.isdir(folder):
        os.makedirs(folder + ".tmp", exist_ok=True)
        for i in range(n):
            name = f"{i:06d}.jpg"
            os.link(os.path.join(data, "images", name), os.path.join(folder + ".tmp", name))
        os.rename(folder + ".tmp", folder)
    return folder, os.path.join(data, str(n), "instances.json")


def step_synthesis(data, n, work, method):
    from dataset.data_preprocessing import build_parser
    from dataset.synthesis import run_synthesis, settings_from_args
    from dataset.synthesis_methods import SYNTHESIS_METHODS
    image_dir, annotation = _image_set(data, n)
    extra = ["--save_raw"] if SYNTHESIS_METHODS[method].writes_raw else []
    args = build_parser().parse_args(["--method", method, *extra])
    start = time.perf_counter()
    summary = run_synthesis(image_dir, os.path.join(work, "out"), settings_from_args(args), annotation,
                            workers=1, progress=False)
    assert not summary.get("failed"), summary.get("failed")
    return time.perf_counter() - start, {}


def step_enhancement(data, n, work):
    from dataset.enhancement import enhance_folder
    image_dir, _ = _image_set(data, n)
    names = sorted(os.listdir(image_dir))
    start = time.perf_counter()
    for method, target in (("gamma", 100.0), ("clahe", None), ("histeq", None)):
        enhance_folder(image_dir, os.path.join(work, method), names, method, target)
    return time.perf_counter() - start, {"note": "gamma + clahe + histeq"}


def step_exdark(data, n, work):
    from dataset.exdark import convert
    root = os.path.join(data, "exdark")
    start = time.perf_counter()
    sets = convert(os.path.join(root, "images"), os.path.join(root, "annotations"),
                   os.path.join(root, f"imageclasslist_{n}.txt"))
    assert sum(len(s["images"]) for s in sets.values()) == n
    return time.perf_counter() - start, {}


def step_parse(data, n, work):
    from torch_utils_lib.data.coco_json import load_coco_json
    start = time.perf_counter()
    coco = load_coco_json(os.path.join(data, str(n), "instances.json"))
    assert len(coco["images"]) == n
    return time.perf_counter() - start, {}


def step_dataset(data, n, work):
    from torch_utils_lib.data.coco_utils import CocoDetection
    start = time.perf_counter()
    dataset = CocoDetection(os.path.join(data, "images"), os.path.join(data, str(n), "instances.json"))
    for image_id in dataset.image_ids:  # every target once, masks decoded (no pixels read)
        dataset.build_target(image_id, HEIGHT, WIDTH)
    return time.perf_counter() - start, {}


def step_dataloader(data, n, work):
    from torch_utils_lib.data.coco_utils import CocoDetection
    from torch_utils_lib.data.loaders import detection_loader
    image_dir, annotation = _image_set(data, n)
    start = time.perf_counter()
    loader = detection_loader(CocoDetection(image_dir, annotation), 4, train=False, workers=2)
    count = sum(len(images) for images, _ in loader)
    assert count == n
    return time.perf_counter() - start, {}


def step_cocoeval(data, n, work, iou_type):
    """Both detection sets matched and summarised (seconds per image per set); the matching is
    kept for the bootstrap step, as evaluate.py keeps it."""
    from torch_utils_lib.evaluation.matching import ImageMatches
    from torch_utils_lib.evaluation.coco_bootstrap import load_detections
    from torch_utils_lib.evaluation.matching import evaluate_images
    from torch_utils_lib.evaluation.coco_eval import summarized_stats
    folder = os.path.join(data, str(n))
    start = time.perf_counter()
    gt, results = load_detections(os.path.join(folder, "instances.json"),
                                  {s: detections_file(folder, s, iou_type) for s in "ab"})
    matches, ap = {}, {}
    for name, dets in results.items():
        evaluator = evaluate_images(gt, {iou_type: dets})[iou_type]
        ap[name] = summarized_stats(evaluator)["AP"]
        matches[name] = ImageMatches(evaluator)
        del evaluator
    seconds = (time.perf_counter() - start) / 2
    with open(os.path.join(folder, f"matches_{iou_type}.pkl"), "wb") as f:
        pickle.dump(matches, f)
    return seconds, {"AP": ap, "detections_per_image": len(results["a"]) / n,
                     "note": "per set (matching + summarize + ImageMatches)"}


def step_bootstrap(data, n, work):
    import tracemalloc
    from torch_utils_lib.evaluation.coco_bootstrap import difference_summary, resampled_stats_of_matches
    folder = os.path.join(data, str(n))
    matches = {}
    for iou_type in IOU_TYPES:
        with open(os.path.join(folder, f"matches_{iou_type}.pkl"), "rb") as f:
            matches[iou_type] = pickle.load(f)
    tracemalloc.start()
    start = time.perf_counter()
    for iou_type, by_set in matches.items():
        full, draws = resampled_stats_of_matches(by_set, RESAMPLES, seed=0)
        difference_summary(full["a"], full["b"], draws["a"], draws["b"])
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, {"resampling_peak_mb": peak / 2**20, "seconds_total": seconds,
                     "note": f"{RESAMPLES} resamples, bbox + segm, 2 sets + paired differences"}


def study_bookkeeping(data, n, work):
    """The study's work between steps on a study folder of `n` images: intervals and paired
    differences of every cell (statistics.add_intervals), darkness curves, the table, the figure.
    Two rows (none, gamma) on the normal set and two physics levels."""
    from study.statistics import add_intervals, darkness_curves
    from study.sets import LEVEL, TestSet
    from torch_utils_lib.evaluation.coco_bootstrap import fold_intervals
    from torch_utils_lib.plots.charts import plot_darkness_curves
    from torch_utils_lib.toolkit.tables import markdown_table
    folder = os.path.join(data, str(n))
    annotation = os.path.join(folder, "instances.json")
    test_sets = [TestSet("normal", folder, annotation, low_light=False),
                 TestSet("physics_ev2", folder, annotation, method="physics", role=LEVEL, severity=2.0),
                 TestSet("physics_ev5", folder, annotation, method="physics", role=LEVEL, severity=5.0)]
    rows = {}
    for row, det in (("none", "a"), ("gamma", "b")):
        rows[row] = {t.name: {"detections": {i: detections_file(folder, det, i)
                                             for i in IOU_TYPES},
                              "bbox": {"AP": 0.3, "AP50": 0.5, "AP75": 0.3},
                              "segm": {"AP": 0.3, "AP50": 0.5, "AP75": 0.3}} for t in test_sets}
    start = time.perf_counter()
    draws = add_intervals(test_sets, rows, n=RESAMPLES, seed=0)
    curves = darkness_curves(test_sets, rows, draws)
    table = {row: {f"{t} {i} {s}": cells[t][i][s] for t in cells for i in IOU_TYPES
                   if i in cells[t] for s in ("AP", "AP50")} for row, cells in rows.items()}
    table = {row: {**values, **{f"{c}_ci": rows[row][c.split()[0]][c.split()[1]][f"{c.split()[2]}_ci"]
                                for c in values if f"{c.split()[2]}_ci" in rows[row][c.split()[0]][c.split()[1]]}}
             for row, values in table.items()}
    markdown_table(fold_intervals(table))
    plot_darkness_curves(curves["physics"], os.path.join(work, "darkness.png"))
    return time.perf_counter() - start, {"note": "8 cells matched + 1000 resamples each"}


def step_raw_cache(data, n, work):
    """One RAW-NOD-sized DNG: decode + resize + cache write, then a cached read."""
    from dataset.dng import write_dng
    from genisp.raw import RawLoader
    rng = np.random.default_rng(0)
    bayer = (600 + rng.gamma(2.0, 60.0, RAW_SIZE)).clip(0, 15520).astype(np.uint16)
    path = os.path.join(work, "raw.dng")
    write_dng(path, bayer, "RGGB", 600, 15520, np.array([[0.902, -0.289, -0.0715],
                                                        [-0.4535, 1.2436, 0.2348],
                                                        [-0.0934, 0.1919, 0.7086]]), [0.5, 1.0, 0.7])
    del bayer
    loader = RawLoader(os.path.join(work, "cache"), RAW_RESIZE)
    start = time.perf_counter()
    image = loader(path)
    first = time.perf_counter() - start
    start = time.perf_counter()
    again = RawLoader(os.path.join(work, "cache"), RAW_RESIZE)(path)
    cached = time.perf_counter() - start
    entry = os.path.getsize(loader.cache_path(path))
    assert np.array_equal(np.asarray(image), np.asarray(again))
    return first, {"cached_read_s": cached, "entry_mb": entry / 2**20, "dng_mb": os.path.getsize(path) / 2**20,
                   "image_shape": list(np.asarray(image).shape),
                   "note": "decode + resize to 1333x800 + cache write; cached read in extra"}


STEPS = {  # name: (function, extra args, which sizes)
    "synthesis gamma_noise": (step_synthesis, ("gamma_noise",), "images"),
    "synthesis physics --save_raw": (step_synthesis, ("physics",), "images"),
    "enhancement (3 methods)": (step_enhancement, (), "images"),
    "ExDark converter": (step_exdark, (), "images"),
    "annotation parse": (step_parse, (), "sizes"),
    "dataset first pass": (step_dataset, (), "sizes"),
    "DataLoader epoch --workers 2": (step_dataloader, (), "images"),
    "COCOeval bbox": (step_cocoeval, ("bbox",), "sizes"),
    "COCOeval segm": (step_cocoeval, ("segm",), "sizes"),
    "bootstrap 1000 bbox+segm": (step_bootstrap, (), "sizes"),
    "study bookkeeping": (study_bookkeeping, (), "study"),
    "GenISP RAW cache 5472x3648": (step_raw_cache, (), "raw"),
}


def run_step(name, data, n):
    """Run one (step, size) in this process; prints its JSON record."""
    function, extra, _ = STEPS[name]
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as work:
        seconds, info = function(data, n, work, *extra)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_rss_mb(), **info}))


def peak_rss_mb():
    """This process's peak resident memory. ru_maxrss would carry the forking parent's peak
    across exec on Linux; VmHWM belongs to this process's own address space."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(name, data, n, resamples):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--step", name, "--data", data,
                          "--size", str(n), "--bootstrap", str(resamples)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} at {n}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the table

def build_parser():
    p = ArgumentParser(
        example='python bench/bench_scale.py --sizes 10 40 160 --image_sizes 4 8 16 --study_sizes 10 20 40',
        description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=positive_int, nargs=3, default=[50, 500, 2500],
                   help="images of the annotation-only steps (parse, dataset, COCOeval, bootstrap)")
    p.add_argument("--image_sizes", type=positive_int, nargs=3, default=[10, 40, 160],
                   help="images of the steps that read or write pixels")
    p.add_argument("--study_sizes", type=positive_int, nargs=3, default=[50, 200, 500],
                   help="images of the study's bookkeeping (it matches 8 cells)")
    p.add_argument("--bootstrap", type=positive_int, default=RESAMPLES, metavar="N",
                   help="resamples of the bootstrap and study steps")
    p.add_argument("--only", nargs="*", choices=list(STEPS), help="run just these steps")
    p.add_argument("--output", default=None, help="JSON of the table (default: runs/bench/bench_scale.json)")
    p.add_argument("--step", choices=list(STEPS), help=argparse_suppress())
    p.add_argument("--data", help=argparse_suppress())
    p.add_argument("--size", type=positive_int, help=argparse_suppress())
    return p


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS


def main():
    global RESAMPLES
    args = build_parser().parse_args()
    RESAMPLES = args.bootstrap
    if args.step:
        return run_step(args.step, args.data, args.size)
    from torch_utils_lib.toolkit.atomic_io import atomic_write_json
    from torch_utils_lib.toolkit.paths import RUNS_DIR
    from torch_utils_lib.toolkit.tables import markdown_table
    output = args.output or os.path.join(RUNS_DIR, "bench", "bench_scale.json")
    sizes_of = {"sizes": args.sizes, "images": args.image_sizes, "study": args.study_sizes, "raw": [1]}
    data = tempfile.mkdtemp(prefix="bench_scale_data_")
    load = os.getloadavg()[0]
    try:
        start = time.perf_counter()
        prepare(data, args.sizes + args.study_sizes, args.image_sizes, args.study_sizes)
        print(f"inputs made in {time.perf_counter() - start:.0f} s", flush=True)
        records = {}
        for name in args.only or STEPS:
            sizes = sizes_of[STEPS[name][2]]
            records[name] = {}
            for n in sizes:
                r = measure(name, data, n, args.bootstrap)
                r["seconds_per_image"] = r["seconds"] / n
                records[name][n] = r
                print(f"{name} @ {n}: {r['seconds_per_image']:.4g} s/image, {r['peak_mb']:.0f} MB",
                      flush=True)
            if len(sizes) == 3:
                middle, largest = records[name][sizes[1]], records[name][sizes[2]]
                growth = largest["seconds_per_image"] / middle["seconds_per_image"]
                exponent = 1 + np.log(growth) / np.log(sizes[2] / sizes[1])
                records[name]["growth"] = {"ratio": growth, "exponent": exponent,
                                           "memory_ratio": largest["peak_mb"] / middle["peak_mb"]}
    finally:
        shutil.rmtree(data, ignore_errors=True)
    rows = {}
    for name, by_size in records.items():
        row = {}
        sizes = [n for n in by_size if n != "growth"]
        for label, n in zip(("small", "middle", "largest"), sizes if len(sizes) == 3 else [None, None] + sizes):
            if n is None:
                continue
            row[f"{label} n"] = n
            row[f"{label} s/image"] = by_size[n]["seconds_per_image"]
            row[f"{label} MB"] = by_size[n]["peak_mb"]
        if "growth" in by_size:
            row["growth"] = by_size["growth"]["ratio"]
            row["exponent"] = by_size["growth"]["exponent"]
        rows[name] = row
    formats = {c: ".3g" for row in rows.values() for c in row}
    formats.update({c: ".0f" for row in rows.values() for c in row if c.endswith("MB") or c.endswith(" n")})
    formats.update({"growth": ".2f", "exponent": ".2f"})
    print(f"\nload average at the start {load:.2f}, at the end {os.getloadavg()[0]:.2f}")
    print(markdown_table(rows, first_column="step", formats=formats))
    raw = records.get("GenISP RAW cache 5472x3648", {}).get(1)
    if raw:
        print(f"RAW cache: {raw['seconds']:.2f} s decode+resize+write, {raw['cached_read_s']:.3f} s cached "
              f"read, entry {raw['entry_mb']:.1f} MB (DNG {raw['dng_mb']:.1f} MB), image {raw['image_shape']}")
    boot = records.get("bootstrap 1000 bbox+segm", {})
    for n, r in boot.items():
        if n != "growth":
            print(f"bootstrap @ {n}: {r['seconds_total']:.2f} s for {RESAMPLES} resamples of bbox and segm "
                  f"(2 sets), resampling peak {r['resampling_peak_mb']:.0f} MB, process {r['peak_mb']:.0f} MB")
    atomic_write_json(output, {"records": {k: {str(n): v for n, v in by.items()} for k, by in records.items()},
                               "rows": rows, "load_average_start": load,
                               "load_average_end": os.getloadavg()[0]})
    return 0


if __name__ == "__main__":
    run_main(main)
