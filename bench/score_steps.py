"""bench/bench_score.py's work: the generated set, each measured step in its own process."""
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time

from bench.bench_scale import make_coco
from torch_utils_lib.evaluation.metrics import IOU_TYPES
from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.toolkit.tables import markdown_table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hotcoco_available():
    try:
        import hotcoco  # noqa: F401  optional: the comparison's column only
        return True
    except ImportError:
        return False


def _hotcoco_eval(folder, name, iou_type):
    import hotcoco
    with contextlib.redirect_stdout(io.StringIO()):
        gt = hotcoco.COCO(os.path.join(folder, "gt.json"))
        with open(os.path.join(folder, f"{name}.json")) as f:
            results = json.load(f)
        if iou_type == "bbox":
            results = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
        evaluator = hotcoco.COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.evaluate()
    return evaluator


def step(name, folder, resamples):
    """Run one step here; returns its seconds."""
    start = time.perf_counter()
    if name == "score.py":
        out = subprocess.run([sys.executable, os.path.join(REPO, "study", "score.py"),
                              "--annotation", os.path.join(folder, "gt.json"),
                              "--detections", f"a={os.path.join(folder, 'a.json')}",
                              "--detections", f"b={os.path.join(folder, 'b.json')}",
                              "--baseline", "a", "--bootstrap", str(resamples),
                              "--output_dir", os.path.join(folder, "score")],
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
    elif name == "hotcoco compare":
        import hotcoco
        for iou_type in IOU_TYPES:
            a, b = (_hotcoco_eval(folder, s, iou_type) for s in "ab")
            hotcoco.compare(a, b, n_bootstrap=resamples, seed=0)
    elif name.startswith("hotcoco evaluate"):
        _hotcoco_eval(folder, "a", name.split()[-1]).accumulate()
    else:  # "<backend> evaluate <iou type>": one system, one IoU type
        backend, _, iou_type = name.split()
        from torch_utils_lib.evaluation.coco_bootstrap import load_detections
        from torch_utils_lib.evaluation.coco_eval import coco_stats
        gt, results = load_detections(os.path.join(folder, "gt.json"),
                                      {"a": os.path.join(folder, "a.json")})
        dets = results["a"] if iou_type == "segm" else [
            {k: v for k, v in r.items() if k != "segmentation"} for r in results["a"]]
        coco_stats(gt, dets, iou_type, backend)
    return time.perf_counter() - start


def measure(name, folder, resamples):
    out = subprocess.run([sys.executable, "-c", (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from bench.score_steps import step;"
        "from bench.bench_scale import peak_rss_mb;"
        "s = step(sys.argv[2], sys.argv[3], int(sys.argv[4]));"
        "import resource; children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024;"
        "print(json.dumps({'seconds': s, 'peak_mb': max(peak_rss_mb(), children)}))"), REPO, name, folder,
        str(resamples)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{name}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # score.py's peak: its own process


def run_bench(images, per_image, resamples, output=None):
    with tempfile.TemporaryDirectory(prefix="bench_score_") as folder:
        gt, a, b = make_coco(images, seed=0, detections=per_image)
        for name, value in (("gt", gt), ("a", a), ("b", b)):
            with open(os.path.join(folder, f"{name}.json"), "w") as f:
                json.dump(value, f)
        del gt, a, b
        steps = ["score.py"]
        hotcoco = hotcoco_available()
        if hotcoco:
            steps.append("hotcoco compare")
        for iou_type in ("bbox", "segm"):
            steps += [f"pycocotools evaluate {iou_type}", f"faster_coco_eval evaluate {iou_type}"]
            if hotcoco:
                steps.append(f"hotcoco evaluate {iou_type}")
        records = {name: measure(name, folder, resamples) for name in steps}
    reference = records.get("hotcoco compare", {}).get("seconds")
    rows = {name: {"seconds": round(r["seconds"], 2), "peak GB": round(r["peak_mb"] / 1024, 2),
                   "ratio to hotcoco compare": round(r["seconds"] / reference, 2) if reference else "n/a"}
            for name, r in records.items()}
    print(f"{images} images, {per_image} detections an image, 2 systems, bbox + segm, "
          f"{resamples} resamples" + ("" if hotcoco else "; hotcoco: not installed (no ratio)"))
    print(markdown_table(rows, first_column="step"))
    if output:
        atomic_write_json(output, {"images": images, "detections_per_image": per_image,
                                   "bootstrap": resamples, "hotcoco": hotcoco, "rows": rows})
    return rows
