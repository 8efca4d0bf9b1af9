"""Turn a normal-light image set into a synthetic low-light one, in parallel and resumable.

The methods are the entries of dataset/synthesis_methods.py (`gamma_noise`: random gamma and
Gaussian noise; `physics`: unprocess, sensor noise, process). Every image gets its own random stream derived from the
seed and its file name, so outputs are byte-identical whatever the number of workers or the
order. Outputs keep the input's file name and format; finished images are skipped on a re-run;
every file is written atomically. No torch import anywhere on this path.
"""
import ctypes
import ctypes.util
import hashlib
import json
import math
import multiprocessing
import os
import sys

import cv2
import numpy as np

from dataset.synthesis_methods import SYNTHESIS_METHODS
from genisp.sizes import MIN_RAW_SIZE
from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes, atomic_write_json
from torch_utils_lib.data.coco_json import load_coco_json, subset_coco
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import check_outputs_apart
from torch_utils_lib.data.image_io import encode_image, list_images, read_rgb, write_image
from torch_utils_lib.evaluation.image_metrics import gt_mean_align, luma, psnr, ssim, summarize

METRICS = ("psnr_ssim", "psnr", "none")
RECORDS_FILE = ".synthesis_records.jsonl"  # progress of an unfinished run (removed when done)
SUMMARY_FILE = "synthesis.json"
SSIM_DOWNSAMPLE = "auto"  # Wang et al.'s rule: full resolution up to 383 px, 2x2 blocks above

def image_rng(seed, file_name):
    """The numpy Generator of one image: a function of the seed and the file name only."""
    digest = hashlib.sha256(file_name.encode("utf-8")).digest()
    words = np.frombuffer(digest[:16], dtype="<u4").tolist()
    return np.random.default_rng(np.random.SeedSequence(entropy=[int(seed) % 2**64, *words]))


def draw_params(settings, file_name):
    """(params, rng) of one image; params hold everything needed to redo it.

    rng is the Generator to go on drawing from, or None where the method needs no more of it
    (gamma_noise: OpenCV draws the noise from a seed in params).
    """
    return SYNTHESIS_METHODS[settings["method"]].draw(image_rng(settings["seed"], file_name), settings)


def synthesize_array(rgb, settings, file_name, drawn=None):
    """(low-light uint8 RGB, raw mosaic or None, params) for one decoded image.

    drawn: the image's draw_params(settings, file_name), if already made.
    """
    params, rng = drawn or draw_params(settings, file_name)
    out, raw = SYNTHESIS_METHODS[settings["method"]].synthesize(rgb, params, rng)
    return out, raw, params


def raw_name(file_name):
    return os.path.splitext(file_name)[0] + ".dng"



def _metrics(low, reference, metrics):
    """PSNR (RGB) and SSIM of the low-light image against its input, as chosen by `metrics`.

    SSIM is computed as Wang et al.'s reference code does (ssim.m): on the grey (BT.601 luma)
    images, averaged over f x f blocks first; a sixth of the cost of the three-channel average.
    """
    out = {}
    if metrics in ("psnr_ssim", "psnr"):
        out["psnr"] = round(psnr(low, reference), 6)
    if metrics == "psnr_ssim":  # None for images smaller than SSIM's 11x11 window
        out["ssim"] = (round(ssim(luma(low), luma(reference), downsample=SSIM_DOWNSAMPLE), 6)
                       if min(low.shape[:2]) >= 11 else None)
    return out


def process_image(task):
    """Synthesize one file; returns its record (or a record with "error"). Runs in workers."""
    name, input_dir, output_dir, settings, expected_size, metrics, drawn = task
    path = os.path.join(input_dir, name)
    try:
        rgb = read_rgb(path)
    except UserError as e:
        return {"file_name": name, "error": str(e)}
    height, width = rgb.shape[:2]
    if expected_size is not None and tuple(expected_size) != (width, height):
        return {"file_name": name, "error": f"{path}: image is {width}x{height} but the "
                f"annotation says {expected_size[0]}x{expected_size[1]}"}
    if settings.get("save_raw") and min(height, width) < MIN_RAW_SIZE:
        return {"file_name": name, "error": f"{path}: {width}x{height} is too small for a DNG "
                f"(LibRaw needs {MIN_RAW_SIZE} pixels a side)"}
    low, raw, params = synthesize_array(rgb, settings, name, drawn)
    scores = _metrics(low, rgb, metrics)  # while both images are still in the CPU cache
    if raw is not None and settings.get("save_raw"):
        SYNTHESIS_METHODS[settings["method"]].write_raw(
            os.path.join(output_dir, "raw", raw_name(name)), raw, params)
    # the image is written last: its presence marks the file as finished
    atomic_write_bytes(os.path.join(output_dir, name), encode_image(low, os.path.splitext(name)[1]))
    return {"file_name": name, "width": width, "height": height, **scores, "params": params}


def is_finished(name, output_dir, settings):
    done = os.path.isfile(os.path.join(output_dir, name))
    if done and settings.get("save_raw"):
        done = os.path.isfile(os.path.join(output_dir, "raw", raw_name(name)))
    return done


def rebuild_record(task):
    """Record of an image finished by an earlier run that died before logging it.

    Its metrics come from the file as written: for JPEG outputs they can differ slightly from
    those an uninterrupted run computes on the image before encoding.
    """
    name, input_dir, output_dir, settings, _, metrics = task
    rgb = read_rgb(os.path.join(input_dir, name))
    low = read_rgb(os.path.join(output_dir, name))
    params, _ = draw_params(settings, name)
    return {"file_name": name, "width": rgb.shape[1], "height": rgb.shape[0],
            **_metrics(low, rgb, metrics), "params": params}


# ---------------------------------------------------------------- annotations

def annotation_sizes(dataset):
    """file name -> (width, height) as the annotation states them (None where absent)."""
    sizes = {}
    for image in dataset["images"]:
        size = (image.get("width"), image.get("height"))
        sizes[os.path.basename(image["file_name"])] = size if None not in size else None
    return sizes


def check_annotated_images(annotation, sizes, names, input_dir):
    """Refuse an annotation none of whose images is in `input_dir`; say how many are absent."""
    present = set(names)
    missing = [n for n in sizes if n not in present]
    if len(missing) == len(sizes):
        raise UserError(f"{annotation}: " + (f"none of its {len(sizes)} images is in {input_dir} "
                                             f"(first: {missing[0]})" if sizes else "lists no images"))
    if missing:
        print(f"{annotation}: {len(missing)} listed image(s) not in {input_dir} (first: "
              f"{missing[0]}); left out of annotations.json")


def subset_annotation(dataset, kept_names, rename=None):
    """`dataset` restricted to the images named in `kept_names`; file names lose their folders
    (outputs lie directly in the output folder) and are optionally renamed."""
    def name_here(file_name):
        name = os.path.basename(file_name)
        return rename(name) if rename else name

    ids = [i["id"] for i in dataset["images"] if os.path.basename(i["file_name"]) in kept_names]
    return subset_coco(dataset, ids, rename=name_here)


# ---------------------------------------------------------------- the run

def level_range(method):
    """(lowest, highest) darkness level in stops that `method` synthesizes: 0 (no darkening)
    to its entry's max_level, past which the image is noise only (and 2**EV overflows far later)."""
    return 0.0, SYNTHESIS_METHODS[method].max_level


def check_level(method, ev, flag="--level"):
    """UserError unless `ev` stops is a level `method` can synthesize (level_range)."""
    low, high = level_range(method)
    if not (math.isfinite(ev) and low <= ev <= high):
        raise UserError(f"{flag} {ev:g}: {method} takes levels from {low:g} to {high:.2f} stops "
                        f"({SYNTHESIS_METHODS[method].max_level_reason})")
    return ev


def level_ranges(method, ev):
    """The settings ranges that fix a darkness level of `ev` stops (exposure 2**ev times darker),
    as the method's entry defines them (physics: a ratio of 2**ev; gamma_noise: its level_params)."""
    check_level(method, ev)
    return SYNTHESIS_METHODS[method].level_settings(ev)


def settings_from_args(args):
    """The synthesis settings of parsed flags: the method, the seed, its range flags, --save_raw
    where the method writes RAW, and a fixed --level's ranges."""
    method = SYNTHESIS_METHODS[args.method]
    settings = {"method": method.name, "seed": int(args.seed)}
    settings.update({f.name: list(map(float, getattr(args, f.name))) for f in method.range_flags})
    if method.writes_raw:
        settings["save_raw"] = bool(args.save_raw)
    if getattr(args, "level", None) is not None:
        settings.update(level_ranges(args.method, float(args.level)), level_ev=float(args.level))
    return settings


def check_ranges(settings):
    for key in (f.name for f in SYNTHESIS_METHODS[settings["method"]].range_flags):
        if key in settings:
            low, high = settings[key]
            if not (0 < low <= high and np.isfinite(high)):
                raise UserError(f"--{key} {low:g} {high:g}: need 0 < LOW <= HIGH")


def check_output_dir(input_dir, output_dir, annotation=None):
    check_outputs_apart({"--input_dir": input_dir, "--annotation": annotation},
                        {"--output_dir": output_dir})


def _parse_line(line):
    try:  # the last line of a killed run may be cut short
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _load_previous(output_dir, settings, overwrite):
    """Records of finished images from an earlier run with the same settings."""
    summary_path = os.path.join(output_dir, SUMMARY_FILE)
    records_path = os.path.join(output_dir, RECORDS_FILE)
    previous, records = None, {}
    if os.path.isfile(records_path):
        with open(records_path) as f:
            lines = [record for record in map(_parse_line, f) if record is not None]
        if lines:
            previous = lines[0].get("settings")
            records = {r["file_name"]: r for r in lines[1:] if "file_name" in r}
    elif os.path.isfile(summary_path):
        try:
            with open(summary_path) as f:
                summary = json.load(f)
            previous = summary.get("settings")
            records = {r["file_name"]: r for r in summary.get("images", [])}
        except (OSError, ValueError):
            previous = None
    if overwrite:
        return {}
    if previous is not None and previous != settings:
        raise UserError(f"{output_dir}: holds a synthesis made with other settings "
                        f"({json.dumps(previous)}); pass --overwrite or another --output_dir")
    return records


def keep_freed_memory():
    """Ask glibc to keep freed memory for the next image rather than hand it back to the kernel.

    Every image allocates the same large temporaries. By default glibc maps arrays above 128 KB
    afresh and trims the heap after frees, so each image page-faults on memory the kernel has
    to zero again: measured here, 14.3 -> 11.2 ms per 640x480 `gamma_noise` image. Lasts for
    the process; nothing happens off glibc.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    # M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD (32 MB: glibc's largest)
    for option, value in ((-1, 1 << 30), (-2, 16 << 20), (-3, 32 << 20)):
        mallopt(ctypes.c_int(option), ctypes.c_int(value))


def _worker_setup():
    # parallelism comes from worker processes: OpenCV's own threads would only compete with
    # them (and make --workers 1 look faster than one core), and a fork must not copy a pool
    cv2.setNumThreads(1)
    keep_freed_memory()


def _pool(workers):
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers, initializer=_worker_setup)


def run_synthesis(input_dir, output_dir, settings, annotation=None, workers=1, overwrite=False,
                  progress=True, metrics="psnr_ssim"):
    """Synthesize every image of `input_dir` into `output_dir`; returns the summary dict.

    metrics: "psnr_ssim" (default), "psnr" or "none".
    Failed images are reported in summary["failed"]; the caller decides the exit code.
    """
    if metrics not in METRICS:
        raise UserError(f"--metrics {metrics}: choose one of {', '.join(METRICS)}")
    wanted = {"psnr_ssim": ("psnr", "ssim"), "psnr": ("psnr",), "none": ()}[metrics]
    check_ranges(settings)
    names = list_images(input_dir)
    if not names:
        raise UserError(f"{input_dir}: no images found")
    check_output_dir(input_dir, output_dir, annotation)
    dataset = load_coco_json(annotation, finite_boxes=True) if annotation else None
    sizes = annotation_sizes(dataset) if dataset else {}
    if dataset is not None:
        check_annotated_images(annotation, sizes, names, input_dir)
    if settings.get("save_raw"):
        stems = [os.path.splitext(n)[0] for n in names]
        duplicates = sorted({s for s in stems if stems.count(s) > 1})
        if duplicates:
            raise UserError(f"{input_dir}: several images share the stem {duplicates[0]!r}; "
                            "their DNGs would collide")
    os.makedirs(output_dir, exist_ok=True)
    records = _load_previous(output_dir, settings, overwrite)
    opencv_threads = cv2.getNumThreads()
    _worker_setup()
    try:
        return _run(names, input_dir, output_dir, settings, dataset, sizes, records, workers,
                    overwrite, progress, metrics, wanted)
    finally:
        cv2.setNumThreads(opencv_threads)


def _run(names, input_dir, output_dir, settings, dataset, sizes, records, workers, overwrite,
         progress, metrics, wanted):
    from torch_utils_lib.toolkit.progress import progress as progress_bar  # tqdm: 70 ms of start-up
    records_path = os.path.join(output_dir, RECORDS_FILE)
    tasks, done = [], {}
    for name in names:
        task = (name, input_dir, output_dir, settings, sizes.get(name), metrics)
        if not overwrite and is_finished(name, output_dir, settings):
            record = records.get(name)
            if record is None or any(key not in record for key in wanted):
                record = rebuild_record(task)
            done[name] = record
        else:
            # drawn here, image after image: between two images' pixel work the caches are
            # cold and the same draws took 10x longer (0.25 ms per image)
            tasks.append((*task, draw_params(settings, name)))
    with open(records_path, "w") as log:  # rewritten: the finished records, then new ones
        for line in [{"settings": settings}, *done.values()]:
            log.write(json.dumps(line) + "\n")
    failed = []
    bar = progress_bar(total=len(names), initial=len(done), desc=f"{settings['method']}",
                       unit="img", disable=not progress)
    try:
        if workers > 1 and len(tasks) > 1:
            with _pool(min(workers, len(tasks))) as pool:
                chunk = max(1, min(16, len(tasks) // (4 * workers)))
                results = pool.imap_unordered(process_image, tasks, chunksize=chunk)
                failed = _collect(results, done, records_path, bar)
        else:
            failed = _collect(map(process_image, tasks), done, records_path, bar)
    finally:
        bar.close()

    images = [done[n] for n in names if n in done]
    if "level_ev" in settings:  # a fixed darkness level, stated in stops
        images = [{**record, "ev": settings["level_ev"]} for record in images]
    summary = {
        "method": settings["method"],
        "seed": settings["seed"],
        "settings": settings,
        "model": SYNTHESIS_METHODS[settings["method"]].model(),
        **({"level": {"ev": settings["level_ev"],
                      **{k: settings[k][0] for k in ("ratio", "gamma", "noise_var") if k in settings}}}
           if "level_ev" in settings else {}),
        "count": len(images),
        "failed": sorted(failed, key=lambda r: r["file_name"]),
        "metrics": {key: summarize(r[key] for r in images) for key in wanted},
        "metrics_info": {"against": "the input image", "psnr": "RGB, peak 255",
                         "ssim": "BT.601 luma, Gaussian 11x11 window (sigma 1.5), after f x f "
                                 "block averaging, f = max(1, round(min(H, W) / 256)) "
                                 "(Wang et al.'s ssim.m)"},
        "images": images,
    }
    if dataset is not None:
        kept, present = {r["file_name"] for r in images}, set(names)
        summary["annotation"] = {
            "images_without_file": len([n for n in sizes if n not in present]),
            "files_without_annotation": len([n for n in names if n not in sizes])}
        atomic_write_json(os.path.join(output_dir, "annotations.json"),
                          subset_annotation(dataset, kept))
        if settings.get("save_raw"):
            atomic_write_json(os.path.join(output_dir, "raw", "annotations.json"),
                              subset_annotation(dataset, kept, rename=raw_name))
    atomic_write_json(os.path.join(output_dir, SUMMARY_FILE), summary)
    os.unlink(records_path)
    return summary


def _collect(results, done, records_path, bar):
    failed = []
    with open(records_path, "a") as log:
        for record in results:
            if "error" in record:
                failed.append(record)
                bar.write(f"error: {record['error']}", file=sys.stderr)
            else:
                done[record["file_name"]] = record
                log.write(json.dumps(record) + "\n")
                log.flush()
            bar.update(1)
    return failed


def write_preview(path, input_dir, output_dir, names, count=6, tile=160):
    """A PNG montage: per row the input, the low-light image, and the latter brightened.

    Brightening scales the low-light image to the input's mean (the GT-mean alignment of
    image_metrics), which shows the noise and colour the darkness hides.
    """
    rows = []
    for name in names[:count]:
        source, low = read_rgb(os.path.join(input_dir, name)), read_rgb(os.path.join(output_dir, name))
        bright = np.rint(gt_mean_align(low, source)).astype(np.uint8)
        scale = tile / max(source.shape[:2])
        size = (max(1, round(source.shape[1] * scale)), max(1, round(source.shape[0] * scale)))
        cells = [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in (source, low, bright)]
        cells = [cv2.copyMakeBorder(c, 2, tile + 2 - c.shape[0], 2, tile + 2 - c.shape[1],
                                    cv2.BORDER_CONSTANT, value=(255, 255, 255)) for c in cells]
        rows.append(np.concatenate(cells, axis=1))
    if rows:
        write_image(path, np.concatenate(rows, axis=0))
    return path


def print_summary(summary):
    """The PSNR/SSIM table of a run."""
    rows = [("metric", "mean", "min", "max", "std", "count")]
    for key, s in summary["metrics"].items():
        if s["count"]:
            rows.append((key.upper(), *(f"{s[k]:.4f}" for k in ("mean", "min", "max", "std")),
                         str(s["count"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
