"""Benchmark the low-light synthesis against the codec floor and the original project's pipeline.

Makes N 640x480 JPEG photos (random crops of scikit-image's bundled photographs) in a temporary
folder, then times, in this one process and run:
  floor        decode + re-encode every image (cv2, JPEG quality 95), files read and written
  seed         the original project's way: skimage adjust_gamma, write, re-read, random_noise, write
  gamma_noise  dataset/synthesis.py, --workers 1 (PSNR and SSIM recorded, the default)
  physics      dataset/synthesis.py, --workers 1
  ... and, for scale, physics's exact Poisson draws alone (numpy), the part no code can skip
  ... both methods with --workers 2, and with --metrics psnr (no SSIM)
and prints ratios of wall time (and of CPU time, which a shared machine disturbs less) to the floor,
each against the mean of the floors timed just before and after it (the machine's speed drifts),
median over --repeats.
The goals: gamma_noise <= 3x floor, physics <= 10x floor, --workers 2 >= 1.7x faster.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import resource
import shutil
import subprocess
import tempfile
import time

import cv2
import numpy as np

from dataset.synthesis import keep_freed_memory, run_synthesis
from dataset.synthesis_methods import SYNTHESIS_METHODS, default_settings
from torch_utils_lib.toolkit.atomic_io import atomic_write_bytes, atomic_write_json
from torch_utils_lib.toolkit.cli import ArgumentParser, int_at_least, positive_int
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.paths import REPO_ROOT, RUNS_DIR
from torch_utils_lib.toolkit.runinfo import write_run_metadata
from torch_utils_lib.toolkit.tables import markdown_table

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png")
SIZE = (640, 480)


def make_inputs(folder, count, seed=0):
    """`count` 640x480 JPEGs (quality 90) cut from scikit-image's photographs."""
    try:
        import skimage
    except ImportError:
        raise UserError("scikit-image is not installed: pip install -r requirements.txt") from None
    data_dir = os.path.join(os.path.dirname(skimage.__file__), "data")
    photos = [cv2.imread(os.path.join(data_dir, n), cv2.IMREAD_COLOR) for n in PHOTOS]
    photos = [p for p in photos if p is not None]
    if not photos:
        raise UserError(f"{data_dir}: no bundled photographs found")
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for k in range(count):
        photo = photos[k % len(photos)]
        h, w = photo.shape[:2]
        scale = rng.uniform(0.6, 1.0)
        ch, cw = int(h * scale), int(min(w, h * scale * 4 / 3))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = cv2.resize(photo[y:y + ch, x:x + cw], SIZE, interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(folder, f"{k:04d}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return sorted(os.listdir(folder))


def codec_floor(folder, names, out_dir):
    """Read, decode, encode and write every image: the least any pipeline has to do."""
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            image = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(buf.tobytes())


def seed_pipeline(folder, names, out_dir, seed=0):
    """The original project's method as it was written: darken, save, re-read, add noise, save again."""
    from PIL import Image
    from skimage import exposure, util
    rng = np.random.default_rng(seed)
    dark_dir = os.path.join(out_dir, "dark")
    os.makedirs(dark_dir, exist_ok=True)
    for name in names:
        image = np.asarray(Image.open(os.path.join(folder, name)).convert("RGB"))
        dark = exposure.adjust_gamma(image, rng.uniform(3, 8))
        Image.fromarray(dark).save(os.path.join(dark_dir, name), quality=95)
        again = np.asarray(Image.open(os.path.join(dark_dir, name)))
        noisy = util.random_noise(again, mode="gaussian", var=rng.uniform(0.001, 0.01),
                                  rng=int(rng.integers(2**31)))
        Image.fromarray(util.img_as_ubyte(noisy)).save(os.path.join(out_dir, name), quality=95)


def poisson_draw_seconds(folder, names, seed=0):
    """Seconds of `physics`'s exact Poisson shot-noise draws alone, over every image.

    Each image's Poisson rates come from physics.expected_signal and mean_electrons, as in
    physics.synthesize (untimed); only numpy's Poisson draw is timed: the part of `physics` no
    implementation can skip.
    """
    from dataset import physics
    from dataset.synthesis import draw_params
    from torch_utils_lib.data.image_io import read_rgb
    settings = default_settings("physics", seed)
    total = 0.0
    for name in names:
        params, rng = draw_params(settings, name)
        signal = physics.expected_signal(read_rgb(os.path.join(folder, name)), params)
        electrons = physics.mean_electrons(signal, params["K"])
        start = time.perf_counter()
        rng.poisson(electrons)
        total += time.perf_counter() - start
    return total


def timed(fn, *args, **kwargs):
    """(wall seconds, CPU seconds of this process and its finished children)."""
    start, start_cpu = time.perf_counter(), cpu_seconds_so_far()
    fn(*args, **kwargs)
    return time.perf_counter() - start, cpu_seconds_so_far() - start_cpu


def cpu_seconds_so_far():
    """CPU seconds used by this process and its reaped children, to the microsecond.

    os.times() counts in clock ticks (10 ms): a few images' floor can read as 0 CPU seconds."""
    return sum(usage.ru_utime + usage.ru_stime for usage in
               (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def cli_seconds(input_dir, output_dir, *extra):
    """Wall time of the real CLI, start-up included (no torch to import)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "dataset", "data_preprocessing.py"),
                             "--quiet", "--input_dir", input_dir, "--output_dir", output_dir, *extra],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"data_preprocessing.py failed: {result.stderr.strip()[-300:]}")
    return time.perf_counter() - start


def save_figure(x_floor, png_path, title):
    """Bar chart of every stage's time as a multiple of the codec floor, with the goals."""
    import io
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stages = list(x_floor)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(range(len(stages)), [x_floor[s] for s in stages], color="#4c72b0")
    for goal, label in ((3, "gamma_noise goal"), (10, "physics goal")):
        ax.axhline(goal, color="#c44e52", linestyle="--", linewidth=1)
        ax.text(len(stages) - 0.5, goal, label, ha="right", va="bottom", fontsize=8)
    ax.set_xticks(range(len(stages)))
    ax.set_xticklabels(stages, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("wall time / codec floor")
    ax.set_title(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(png_path, buffer.getvalue())
    return png_path


def build_parser():
    p = ArgumentParser(
        example='python bench/bench_synthesis.py --num_images 50',
        description=__doc__.split("\n")[0])
    p.add_argument("--num_images", type=int_at_least(2), default=300)
    p.add_argument("--output", default=os.path.join(RUNS_DIR, "bench", "bench_synthesis.json"))
    p.add_argument("--skip_seed", action="store_true", help="do not time the original project's pipeline")
    p.add_argument("--repeats", type=positive_int, default=1,
                   help="time every stage this many times: the fastest time, the median ratio")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    load_before = os.getloadavg()
    keep_freed_memory()  # as run_synthesis does: the floor gets the same allocator settings
    tmp = tempfile.mkdtemp(prefix="bench_synthesis_")
    try:
        inputs = os.path.join(tmp, "inputs")
        names = make_inputs(inputs, args.num_images)
        stages = {"floor": lambda out: codec_floor(inputs, names, out)}
        if not args.skip_seed:
            stages["seed"] = lambda out: seed_pipeline(inputs, names, out)
        for method in SYNTHESIS_METHODS:
            for workers in (1, 2):
                stages[f"{method} w{workers}"] = (
                    lambda out, s=default_settings(method), w=workers: run_synthesis(
                        inputs, out, s, workers=w, progress=False))
        for method in SYNTHESIS_METHODS:
            stages[f"{method} w1 psnr"] = lambda out, s=default_settings(method): run_synthesis(
                inputs, out, s, progress=False, metrics="psnr")
        # The machine's speed drifts within seconds: every stage is divided by the mean of the
        # floors timed just before and just after it, and the ratio kept is the median over the
        # repeats. The floor after one stage is the floor before the next.
        floor_out = os.path.join(tmp, "out_floor")

        def adjacent_floor():
            wall, cpu = timed(stages["floor"], floor_out)
            shutil.rmtree(floor_out)
            return wall, cpu

        def mean_floor(before, after):
            return (before[0] + after[0]) / 2, (before[1] + after[1]) / 2

        seconds, cpu_seconds, ratios, cpu_ratios = {}, {}, {}, {}
        before = adjacent_floor()
        for repeat in range(args.repeats):
            for stage, fn in stages.items():
                if stage == "floor":
                    wall, cpu = before
                    ratio, cpu_ratio = 1.0, 1.0
                else:
                    out = os.path.join(tmp, f"out_{stage.replace(' ', '_')}_{repeat}")
                    wall, cpu = timed(fn, out)
                    shutil.rmtree(out, ignore_errors=True)
                    after = adjacent_floor()
                    floor_wall, floor_cpu = mean_floor(before, after)
                    ratio = wall / floor_wall
                    cpu_ratio = cpu / floor_cpu if floor_cpu > 0 else float("nan")
                    before = after
                seconds[stage] = min(seconds.get(stage, float("inf")), wall)
                cpu_seconds[stage] = min(cpu_seconds.get(stage, float("inf")), cpu)
                ratios.setdefault(stage, []).append(ratio)
                cpu_ratios.setdefault(stage, []).append(cpu_ratio)
        for stage, fn in (("gamma_noise CLI w1", lambda: cli_seconds(inputs, os.path.join(tmp, "cli"))),
                          ("Poisson draws alone", lambda: poisson_draw_seconds(inputs, names))):
            seconds[stage] = fn()
            after = adjacent_floor()
            ratios[stage] = [seconds[stage] / mean_floor(before, after)[0]]
            before = after
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    x_floor = {stage: float(np.median(r)) for stage, r in ratios.items()}
    rows = [(stage, s, 1000 * s / args.num_images, x_floor[stage],
             float(np.median(cpu_ratios[stage])) if stage in cpu_ratios else float("nan"))
            for stage, s in seconds.items()]
    speedups = {m: seconds[f"{m} w1"] / seconds[f"{m} w2"] for m in SYNTHESIS_METHODS}
    print(f"{args.num_images} JPEG photos 640x480, load average before {load_before[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(markdown_table({stage: {"seconds": s, "ms/img": ms, "x floor": ratio,
                                  "CPU x floor": cpu_ratio} for stage, s, ms, ratio, cpu_ratio in rows},
                         first_column="stage",
                         formats=dict.fromkeys(("seconds", "ms/img", "x floor", "CPU x floor"), ".2f")))
    for method, speedup in speedups.items():
        print(f"{method}: --workers 2 is {speedup:.2f}x faster than --workers 1")
    if "seed" in seconds:
        print(f"gamma_noise is {seconds['seed'] / seconds['gamma_noise w1']:.1f}x faster than the original project's pipeline")
    goals = {"gamma_noise <= 3x floor": x_floor["gamma_noise w1"] <= 3,
             "gamma_noise --metrics psnr <= 3x floor": x_floor["gamma_noise w1 psnr"] <= 3,
             "physics <= 10x floor": x_floor["physics w1"] <= 10,
             "gamma_noise workers 2 >= 1.7x": speedups["gamma_noise"] >= 1.7,
             "physics workers 2 >= 1.7x": speedups["physics"] >= 1.7}
    for goal, met in goals.items():
        print(f"  {'met' if met else 'NOT met'}: {goal}")
    result = {"num_images": args.num_images, "size": list(SIZE), "seconds": seconds,
              "cpu_seconds": cpu_seconds,
              "x_floor": x_floor, "x_floor_per_repeat": ratios,
              "workers_speedup": speedups, "goals": goals,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpus": os.cpu_count(), "torch_imported": "torch" in sys.modules}
    atomic_write_json(args.output, result)
    figure = save_figure(result["x_floor"], os.path.splitext(args.output)[0] + ".png",
                         f"{args.num_images} photos 640x480, load average {load_before[0]:.1f} "
                         f"on {os.cpu_count()} CPUs")
    print(f"saved {args.output} and {figure}")
    write_run_metadata(os.path.dirname(args.output), args, filename="bench_synthesis_run.json")
    return 0


if __name__ == "__main__":
    run_main(main)
