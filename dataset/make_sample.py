"""Build the bundled sample set: real photographs with shapes drawn on them, exact instance masks.

Deterministic: the same arguments give byte-identical images and annotations on the pinned stack.
The result is a COCO instance-segmentation set (train/val) that every script defaults to.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


import cv2
import numpy as np
from pycocotools import mask as mask_utils

from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.toolkit.cli import ArgumentParser, int_in_range
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.guards import check_outputs_apart
from torch_utils_lib.data.image_io import read_rgb, write_image
from torch_utils_lib.toolkit.paths import SAMPLE_DIR
from torch_utils_lib.toolkit.runinfo import write_run_metadata

CATEGORIES = [{"id": 1, "name": "circle", "supercategory": "shape"},
              {"id": 2, "name": "square", "supercategory": "shape"},
              {"id": 3, "name": "triangle", "supercategory": "shape"}]
# Colour photographs that scikit-image ships inside its wheel (no download).
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "brick.png", "grass.png", "gravel.png")
MIN_VISIBLE_PIXELS = 40
# images[].brightness: "dim" where the image's mean pixel value is under this, else "bright"
# (about half the set each); an image-level condition field, so the study's per-condition
# table (study/conditions.py) has one on the sample set, as ExDark's lighting types on ExDark
DIM_BELOW = 110


def photo_folder():
    """scikit-image's data folder, which holds the background photographs."""
    try:
        import skimage
    except ImportError:
        raise UserError("scikit-image is not installed: run `make demo` or "
                        "`pip install -r requirements.txt`") from None
    return os.path.join(os.path.dirname(skimage.__file__), "data")


def load_photos():
    """The background photographs as RGB uint8 arrays."""
    folder = photo_folder()
    photos = []
    for name in PHOTOS:
        photos.append(read_rgb(os.path.join(folder, name)))
    return photos


def random_background(rng, photos, size):
    """A random crop of a random photograph, resized to size x size."""
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = photo[y:y + side, x:x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_AREA)


def shape_mask(rng, category, size):
    """A filled shape of `category` at a random place, as a boolean size x size mask."""
    canvas = np.zeros((size, size), np.uint8)
    radius = rng.uniform(0.08, 0.22) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    if category == "circle":
        cv2.circle(canvas, (round(cx * 16), round(cy * 16)), round(radius * 16), 1, -1,
                   cv2.LINE_8, shift=4)
    else:
        corners = 4 if category == "square" else 3
        angle = rng.uniform(0, 2 * np.pi)
        t = angle + 2 * np.pi * np.arange(corners) / corners
        points = np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], 1)
        cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def draw_image(rng, photos, size, max_objects):
    """One image with 1..max_objects shapes; returns (rgb, [(category_id, mask), ...])."""
    image = random_background(rng, photos, size).astype(np.float32)
    owner = np.zeros((size, size), np.int32)  # which object (1-based) is visible at each pixel
    categories = []
    for index in range(1, int(rng.integers(1, max_objects + 1)) + 1):
        category = CATEGORIES[rng.integers(len(CATEGORIES))]
        mask = shape_mask(rng, category["name"], size)
        colour = rng.uniform(20, 235, 3)
        # a linear shading across the shape keeps it from being a flat patch of colour
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
        g = rng.uniform(-60, 60, 2)
        shaded = colour[None, None, :] + (g[0] * xx + g[1] * yy)[:, :, None]
        image[mask] = shaded[mask]
        owner[mask] = index
        categories.append(category["id"])
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    objects = [(cat, owner == i) for i, cat in enumerate(categories, 1)]
    return image, [(cat, m) for cat, m in objects if m.sum() >= MIN_VISIBLE_PIXELS]


def mask_annotation(mask, category_id, image_id, annotation_id):
    """A COCO annotation with the mask as compressed RLE and its tight box."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return {"id": annotation_id, "image_id": image_id, "category_id": int(category_id),
            "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")},
            "area": int(mask.sum()), "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0}


def build_split(output_dir, split, count, size, seed, max_objects, photos):
    """Write `count` images of `split` and return its COCO dictionary."""
    rng = np.random.default_rng([seed, {"train": 0, "val": 1}.get(split, 2)])
    images, annotations = [], []
    image_dir = os.path.join(output_dir, split)
    for image_id in range(1, count + 1):
        image, objects = draw_image(rng, photos, size, max_objects)
        file_name = f"{split}_{image_id:04d}.png"
        write_image(os.path.join(image_dir, file_name), image)
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size,
                       "brightness": "dim" if image.mean() < DIM_BELOW else "bright"})
        for category_id, mask in objects:
            annotations.append(mask_annotation(mask, category_id, image_id, len(annotations) + 1))
    return {"info": {"description": f"llvision sample set, {split} split",
                     "generator": "dataset/make_sample.py", "seed": seed},
            "images": images, "annotations": annotations, "categories": CATEGORIES}


def make_sample(output_dir=SAMPLE_DIR, train=64, val=32, size=128, seed=0, max_objects=4):
    """Build the sample set in `output_dir`; returns the annotation paths."""
    check_outputs_apart({"scikit-image's photographs": [os.path.join(photo_folder(), name)
                                                        for name in PHOTOS]},
                        {"--output_dir": output_dir})
    photos = load_photos()
    paths = {}
    for split, count in (("train", train), ("val", val)):
        coco = build_split(output_dir, split, count, size, seed, max_objects, photos)
        paths[split] = os.path.join(output_dir, "annotations", f"instances_{split}.json")
        atomic_write_json(paths[split], coco)
        print(f"{split}: {len(coco['images'])} images, {len(coco['annotations'])} instances "
              f"-> {os.path.join(output_dir, split)}")
    return paths


# flag ranges: 32 px holds the smallest shapes drawn and one cell of a detector's coarsest FPN
# level; 4096 px is the largest detector input (flag_choices.DETECTOR_SIZE_RANGE); a split of
# 100000 images is past COCO train's 118k / 2 and takes hours to draw; 32 shapes fill the image
IMAGE_SIZE_RANGE = (32, 4096)
SPLIT_IMAGES_RANGE = (1, 100_000)
MAX_OBJECTS_RANGE = (1, 32)


def build_parser():
    parser = ArgumentParser(
        example='python dataset/make_sample.py --output_dir runs/sample_copy',
        description=__doc__)
    parser.add_argument("--output_dir", default=SAMPLE_DIR, help="where to write the set")
    parser.add_argument("--train", type=int_in_range(*SPLIT_IMAGES_RANGE), default=64, help="number of training images")
    parser.add_argument("--val", type=int_in_range(*SPLIT_IMAGES_RANGE), default=32, help="number of validation images")
    parser.add_argument("--size", type=int_in_range(*IMAGE_SIZE_RANGE), default=128, help="image side in pixels")
    parser.add_argument("--max_objects", type=int_in_range(*MAX_OBJECTS_RANGE), default=4, help="most shapes per image")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    return parser


def main():
    args = build_parser().parse_args()
    make_sample(args.output_dir, args.train, args.val, args.size, args.seed, args.max_objects)
    write_run_metadata(args.output_dir, args)


if __name__ == "__main__":
    run_main(main)
