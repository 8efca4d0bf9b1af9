"""genisp/raw.py: CFA patterns, black/white levels, colour matrices, the cache, real RAW files."""
import hashlib
import json
import os
import warnings

import numpy as np
import pytest

from dataset.dng import write_dng
from genisp.raw import (RawLoader, RawWarning, average_greens, cfa_pattern_name, fit_size,
                        normalise_camera_to_xyz, pack_bayer, preprocess_raw, read_bayer)
from torch_utils_lib.toolkit.errors import UserError

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
# Nikon D750's Adobe matrix (XYZ -> camera), as in ../shared/data/README.md
XYZ_TO_CAM = np.array([[9020, -2890, -715], [-4535, 12436, 2348], [-934, 1919, 7086]]) / 10000
WHITE = 15520
BLACKS = (600, 610, 620, 630)  # one per 2x2 position, row-major


def synthetic_mosaic(pattern, height=32, width=48):
    """A mosaic whose R, G-on-red-row, G-on-blue-row and B sites hold distinct ramps."""
    rng = np.random.default_rng(PATTERNS.index(pattern))
    values = {"R": 1000, "G1": 4000, "G2": 5000, "B": 9000}
    bayer = np.zeros((height, width), np.uint16)
    red_row = pattern.index("R") // 2
    expected = {}
    for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        letter = pattern[k]
        if letter == "G":
            letter = "G1" if i == red_row else "G2"
        plane = values[letter] + rng.integers(0, 500, (height // 2, width // 2))
        bayer[i::2, j::2] = plane + BLACKS[k]
        expected[letter] = plane / (WHITE - BLACKS[k])
    return bayer, expected


@pytest.mark.parametrize("pattern", PATTERNS)
def test_dng_packs_to_the_right_channels(tmp_path, pattern):
    bayer, expected = synthetic_mosaic(pattern)
    path = str(tmp_path / f"{pattern}.dng")
    write_dng(path, bayer, pattern, BLACKS, WHITE, XYZ_TO_CAM, [0.5, 1.0, 0.7])
    info = read_bayer(path)
    assert info["pattern"] == pattern
    assert info["black"].ravel().tolist() == list(BLACKS)
    assert info["white"] == WHITE
    packed = pack_bayer(info["mosaic"], info["pattern"])
    assert packed.shape == (16, 24, 4)
    for channel, name in enumerate(("R", "G1", "G2", "B")):
        np.testing.assert_allclose(packed[..., channel], expected[name], rtol=1e-6)
    rgb = average_greens(packed)
    np.testing.assert_allclose(rgb[..., 1], (expected["G1"] + expected["G2"]) / 2, rtol=1e-6)
    # LibRaw does not know our camera: rgb_xyz_matrix stays zero, ColorMatrix1 must be read.
    assert info["matrix_source"] == "DNG ColorMatrix1"
    cam_to_xyz = normalise_camera_to_xyz(np.linalg.inv(XYZ_TO_CAM))
    np.testing.assert_allclose(info["camera_to_xyz"], cam_to_xyz, atol=1e-5)
    np.testing.assert_allclose(info["camera_to_xyz"].sum(axis=1), 1.0, atol=1e-9)
    xyz, meta = preprocess_raw(path)
    assert xyz.dtype == np.float32 and xyz.shape == (16, 24, 3)
    want = np.clip(np.einsum("ij,hwj->hwi", cam_to_xyz,
                             np.stack([expected["R"], (expected["G1"] + expected["G2"]) / 2,
                                       expected["B"]], -1)), 0, 1)
    np.testing.assert_allclose(xyz, want, atol=2e-5)
    assert meta == {"raw_size": (32, 48), "pattern": pattern, "matrix_source": "DNG ColorMatrix1"}


def test_the_student_mistakes_would_be_caught(tmp_path):
    """Packing BGGR as if it were RGGB swaps red and blue; the XYZ->camera matrix is not its inverse."""
    bayer, expected = synthetic_mosaic("BGGR")
    path = str(tmp_path / "bggr.dng")
    write_dng(path, bayer, "BGGR", BLACKS, WHITE, XYZ_TO_CAM, [0.5, 1.0, 0.7])
    mosaic = read_bayer(path)["mosaic"]
    assert not np.allclose(pack_bayer(mosaic, "RGGB")[..., 0], expected["R"])
    assert not np.allclose(read_bayer(path)["camera_to_xyz"], normalise_camera_to_xyz(XYZ_TO_CAM),
                           atol=0.05)


def test_cfa_pattern_errors():
    assert cfa_pattern_name(np.array([[1, 0], [2, 3]]), b"RGBG") == "GRBG"
    with pytest.raises(UserError, match="X-Trans"):
        cfa_pattern_name(np.zeros((6, 6), int), b"RGBG", "x.raf")
    with pytest.raises(UserError, match="unsupported colour filter array"):
        cfa_pattern_name(np.array([[0, 1], [2, 3]]), b"CMYG", "x.crw")


def test_unreadable_and_missing_files(tmp_path):
    junk = tmp_path / "junk.nef"
    junk.write_bytes(b"not a raw file at all" * 100)
    with pytest.raises(UserError, match="junk.nef: cannot read as camera RAW"):
        read_bayer(str(junk))
    with pytest.raises(UserError, match="RAW file not found"):
        read_bayer(str(tmp_path / "missing.arw"))


def test_fit_size_keeps_aspect():
    assert fit_size(1824, 2736, (1333, 800)) == (800, 1200)  # RX100 VII packed
    assert fit_size(1312, 1968, (1333, 800)) == (800, 1200)  # D750 packed
    assert fit_size(64, 64, (1333, 800)) == (800, 800)
    assert fit_size(64, 96, None) == (64, 96)


def test_cache_hits_and_keys(tmp_path):
    bayer, _ = synthetic_mosaic("GRBG", 64, 96)
    path = str(tmp_path / "raw" / "a.dng")
    os.makedirs(os.path.dirname(path))
    write_dng(path, bayer, "GRBG", BLACKS, WHITE, XYZ_TO_CAM, [0.5, 1.0, 0.7])
    before = hashlib.sha256(open(path, "rb").read()).hexdigest()
    cache = str(tmp_path / "cache")
    first = RawLoader(cache, resize=(40, 20))
    image = first(path)
    assert image.shape == (20, 30, 3) and (first.hits, first.misses) == (0, 1)
    second = RawLoader(cache, resize=(40, 20))
    again, info = second.load(path)
    assert (second.hits, second.misses) == (1, 0)
    assert again.tobytes() == image.tobytes()  # the cached epoch sees exactly the same input
    assert info["raw_size"] == (64, 96)
    # uncached loading gives the same bytes too (float16 rounding either way)
    assert RawLoader(None, resize=(40, 20))(path).tobytes() == image.tobytes()
    other = RawLoader(cache, resize=None)
    assert other(path).shape == (32, 48, 3) and other.misses == 1
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before  # input untouched
    # new content at the same path is a new key, never a stale entry
    bayer[0, 0] += 1
    write_dng(path, bayer, "GRBG", BLACKS, WHITE, XYZ_TO_CAM, [0.5, 1.0, 0.7])
    third = RawLoader(cache, resize=(40, 20))
    third(path)
    assert third.misses == 1
    assert len([f for _, _, fs in os.walk(cache) for f in fs if f.endswith(".bin")]) == 3
    # a damaged entry is rebuilt instead of crashing
    entry = third.cache_path(path)
    with open(entry, "wb") as f:
        f.write(b"garbage")
    assert third(path).tobytes() == RawLoader(None, resize=(40, 20))(path).tobytes()


def test_sample_physics_raw(repo):
    """The DNGs that dataset/data_preprocessing.py --method physics --save_raw writes."""
    from torch_utils_lib.toolkit.paths import sample_raw
    raw_dir = sample_raw("val")
    if not os.path.isdir(raw_dir):
        pytest.skip("sample physics RAW not generated")
    image, info = preprocess_raw(os.path.join(raw_dir, "val_0001.dng"))
    assert image.shape == (64, 64, 3)
    assert info["matrix_source"] == "DNG ColorMatrix1" and info["pattern"] == "RGGB"
    assert 0 < image.mean() < 0.05  # dark: the physics synthesis divides exposure by 10-100


def test_real_camera_raw_without_colour_matrix(shared_data):
    path = os.path.join(shared_data, "raw", "RAW_KODAK_DC50.KDC")
    before = hashlib.sha256(open(path, "rb").read()).hexdigest()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image, info = preprocess_raw(path)
    assert any(issubclass(w.category, RawWarning) and "identity" in str(w.message) for w in caught)
    assert info == {"raw_size": (512, 768), "pattern": "GRBG", "matrix_source": "identity"}
    assert image.shape == (256, 384, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    import rawpy
    with rawpy.imread(path) as raw:
        mosaic = raw.raw_image_visible.astype(np.float64) / 16383  # black 0
    np.testing.assert_allclose(image[..., 0], mosaic[0::2, 1::2], atol=1e-6)  # GRBG: red top-right
    np.testing.assert_allclose(image[..., 2], mosaic[1::2, 0::2], atol=1e-6)
    np.testing.assert_allclose(image[..., 1], (mosaic[0::2, 0::2] + mosaic[1::2, 1::2]) / 2,
                               atol=1e-6)
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before


def test_rawnod_annotations_load(shared_data, tmp_path):
    """RAW-NOD as it is: string ids, extra box flags, 80 listed categories of which 3 are used."""
    from genisp.data import RawCocoDetection, make_loader
    from genisp.detection import label_map_for
    from torch_utils_lib.data.categories import present_categories
    from torch_utils_lib.models.detectors import COCO_CATEGORY_NAMES
    expected = {"Nikon/raw_new_Nikon750_test.json": (400, 80),
                "Sony/raw_str_labeled_new_Sony_RX100m7_test.json": (321, 3),
                "Sony/raw_new_Sony_RX100m7_val.json": (321, 3)}
    for name, (num_images, num_categories) in expected.items():
        path = os.path.join(shared_data, "rawnod", name)
        label_map = label_map_for(path, COCO_CATEGORY_NAMES)
        assert label_map == {1: 1, 2: 2, 3: 3}  # person, bicycle, car in COCO's label space
        dataset = RawCocoDetection(str(tmp_path), path, make_loader("minimal"), label_map=label_map)
        assert len(dataset) == num_images
        assert len(dataset.coco_dict["categories"]) == num_categories
        assert [c["name"] for c in present_categories(dataset.coco_dict)] == ["person", "bicycle", "car"]
        first = dataset.coco_dict["images"][0]
        assert dataset.camera_of(0) == ("NEF" if "Nikon" in name else "ARW")
        with open(path) as f:
            assert dataset.original_id(first["id"]) == json.load(f)["images"][0]["id"]
        target = dataset.build_target(first["id"], first["height"], first["width"])
        assert target["labels"].tolist() and set(target["labels"].tolist()) <= {1, 2, 3}
        with pytest.raises(UserError, match="not found"):
            dataset[0]  # the images themselves are not distributed with the annotations


def test_cache_never_serves_a_changed_file(tmp_path):
    """Same path and size but a new modification time: decoded again, in the same loader too."""
    bayer, _ = synthetic_mosaic("RGGB", 64, 96)
    path = str(tmp_path / "a.dng")
    write_dng(path, bayer, "RGGB", BLACKS, WHITE, XYZ_TO_CAM, [0.5, 1.0, 0.7])
    loader = RawLoader(str(tmp_path / "cache"), resize=None)
    first = loader(path)
    assert loader(path).tobytes() == first.tobytes() and (loader.hits, loader.misses) == (1, 1)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched
    loader(path)
    assert (loader.hits, loader.misses) == (1, 2)
    # rewritten with the same size: the new pixels are read, not the cached ones
    brighter = np.minimum(bayer.astype(np.int64) + 2000, WHITE).astype(np.uint16)
    write_dng(path, brighter, "RGGB", BLACKS, WHITE, XYZ_TO_CAM, [0.5, 1.0, 0.7])
    assert os.path.getsize(path) == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000))
    changed = loader(path)
    assert (loader.hits, loader.misses) == (1, 3)
    assert changed.mean() > first.mean() + 0.05
    assert changed.tobytes() == RawLoader(None)(path).tobytes()
    # the key is the real path: a symlink to the file finds the same entry
    link = str(tmp_path / "link.dng")
    os.symlink(path, link)
    assert loader.cache_path(link) == loader.cache_path(path)
