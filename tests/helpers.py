"""Helpers for tests: repo paths and running scripts as a user would."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


def run_script(script, *args, cwd=REPO, timeout=900, env=None):
    """Run a repo script with the test interpreter; returns the CompletedProcess."""
    path = script if os.path.isabs(script) else os.path.join(cwd, script)
    return subprocess.run([sys.executable, path, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def make_sample_set(out, train, val, size):
    """A small dataset/make_sample.py set in `out` (asserting it was made); returns `out`."""
    made = run_script("dataset/make_sample.py", "--output_dir", out, "--train", train, "--val", val,
                      "--size", size)
    assert made.returncode == 0, made.stderr[-2000:]
    return out


def assert_user_error(result, *fragments):
    """A user error: non-zero exit, one `error:` line naming the problem, no traceback."""
    assert result.returncode != 0
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])


# Real low-light test sets in their own formats, built from a tiny make_sample.py set: LIS numbers
# VOC-named classes from 0 (ids that collide with COCO's under other names), ExDark writes
# per-image bbGt text files and imageclasslist.txt.
LIS_NAMES = {1: "chair", 2: "car", 3: "motorbike"}  # sample class id -> LIS-style name
EXDARK_NAMES = {1: "Cup", 2: "Table", 3: "People"}  # sample class id -> ExDark class


def darken(image, factor=0.25):
    import numpy as np
    return (image.astype(np.float32) * factor).round().astype(np.uint8)


def make_lis_style_set(sample_dir, split, out):
    """Dark images + their normal-light pairs + a COCO json with ids 0..2 and masks."""
    import json
    from torch_utils_lib.data.image_io import read_rgb, write_image
    with open(os.path.join(sample_dir, "annotations", f"instances_{split}.json")) as f:
        coco = json.load(f)
    for image in coco["images"]:
        rgb = read_rgb(os.path.join(sample_dir, split, image["file_name"]))
        write_image(os.path.join(out, "normal", image["file_name"]), rgb)
        write_image(os.path.join(out, "dark", image["file_name"]), darken(rgb))
    coco["categories"] = [{"id": cid - 1, "name": name} for cid, name in LIS_NAMES.items()]
    for ann in coco["annotations"]:
        ann["category_id"] -= 1
    with open(os.path.join(out, "lis.json"), "w") as f:
        json.dump(coco, f)
    return os.path.join(out, "dark"), os.path.join(out, "lis.json"), os.path.join(out, "normal")


def make_exdark_style_set(sample_dir, split, out):
    """ExDark's native layout: (images, annotations, imageclasslist.txt) folders/file."""
    import json
    from torch_utils_lib.data.image_io import read_rgb, write_image
    with open(os.path.join(sample_dir, "annotations", f"instances_{split}.json")) as f:
        coco = json.load(f)
    order = ("Bicycle", "Boat", "Bottle", "Bus", "Car", "Cat", "Chair", "Cup", "Dog", "Motorbike",
             "People", "Table")
    lines = ["Name Class Light In/Out Train/Val/Test"]
    for n, image in enumerate(coco["images"]):
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        folder = EXDARK_NAMES[anns[0]["category_id"]] if anns else "Cup"
        name = image["file_name"]
        rgb = read_rgb(os.path.join(sample_dir, split, name))
        write_image(os.path.join(out, "images", folder, name), darken(rgb))
        rows = ["% bbGt version=3"] + [
            f"{EXDARK_NAMES[a['category_id']]} {' '.join(str(int(round(v))) for v in a['bbox'])} "
            f"0 0 0 0 0 0 0" for a in anns]
        os.makedirs(os.path.join(out, "annotations", folder), exist_ok=True)
        with open(os.path.join(out, "annotations", folder, name + ".txt"), "w") as f:
            f.write("\n".join(rows) + "\n")
        lines.append(f"{name} {order.index(folder) + 1} 1 {n % 2 + 1} {3 if n else 1}")
    with open(os.path.join(out, "imageclasslist.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return os.path.join(out, "images"), os.path.join(out, "annotations"), os.path.join(out, "imageclasslist.txt")
