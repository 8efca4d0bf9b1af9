"""RAW detection datasets: COCO annotations over camera RAW files, boxes in the loaded image's frame.

The minimal pipeline halves the resolution (Bayer packing) and the training recipe resizes to fit
1333x800, so each target is scaled from the annotation's pixel frame to the loaded image's, and
`target["scale"]` keeps (sx, sy) to map detections back for COCO evaluation and result files.
"""
import os

import numpy as np
import torch

from genisp.raw import RawLoader, fit_size, open_raw, resize_image
from torch_utils_lib.toolkit.guards import require_file
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.coco_utils import CocoDetection
from torch_utils_lib.data.transforms import ToTensor

PIPELINES = ("minimal", "rawpy")


def rawpy_default(path, resize=None):
    """rawpy's default processing (camera-independent sRGB, 8-bit) as float32 in [0, 1]."""
    import rawpy  # as in genisp.raw: imported where a RAW is read
    raw = open_raw(path)
    with raw:
        try:
            rgb = raw.postprocess()
        except (rawpy.LibRawError, rawpy.NotSupportedError) as e:
            raise UserError(f"{path}: cannot decode RAW ({type(e).__name__}: {e})") from None
    image = rgb.astype(np.float32) / 255.0
    raw_size = image.shape[:2]
    return resize_image(image, fit_size(*raw_size, resize)), {"raw_size": tuple(raw_size)}


class RawpyLoader(RawLoader):
    """Like RawLoader, but through rawpy's default post-processing (the usual baseline)."""

    def settings(self):
        return {**super().settings(), "pipeline": "rawpy"}

    def process(self, path):
        return rawpy_default(path, self.resize)


def make_loader(pipeline, cache_dir=None, resize=None):
    """The loader of `pipeline`: 'minimal' (GenISP's input) or 'rawpy' (rawpy's default ISP)."""
    if pipeline == "minimal":
        return RawLoader(cache_dir, resize)
    if pipeline == "rawpy":
        return RawpyLoader(cache_dir, resize)
    raise ValueError(f"pipeline must be one of {PIPELINES}")


class RawCocoDetection(CocoDetection):
    """CocoDetection over RAW files (boxes only); targets scaled to the loaded image.

    The annotation's width/height are the frame its boxes are in (the sensor's visible area for
    RAW-NOD and the sample set); when absent, the RAW's own size is used.
    """

    def __init__(self, raw_dir, annotation_file, loader, transforms=None, train=False,
                 label_map=None):
        super().__init__(raw_dir, annotation_file, transforms=transforms, train=train,
                         with_masks=False, loader=loader, label_map=label_map)

    def __getitem__(self, index):
        image_id = self.image_ids[index]
        info = self.images_by_id[image_id]
        path = self.image_path(index)
        require_file(path, f"RAW file listed in {self.annotation_file}")
        image, raw_info = self.loader.load(path)
        height, width = image.shape[:2]
        frame_h, frame_w = info.get("height"), info.get("width")
        if not frame_h or not frame_w:
            frame_h, frame_w = raw_info["raw_size"]
        sx, sy = width / frame_w, height / frame_h
        if abs(sx - sy) > 0.02 * max(sx, sy):
            raise UserError(f"{path}: RAW is {raw_info['raw_size'][1]}x{raw_info['raw_size'][0]} "
                            f"but {self.annotation_file} says {frame_w}x{frame_h} "
                            f"(a different aspect ratio)")
        target = self.build_target(image_id, frame_h, frame_w)
        target["boxes"] = target["boxes"] * torch.tensor([sx, sy, sx, sy])
        target["area"] = target["area"] * (sx * sy)
        target["scale"] = torch.tensor([sx, sy], dtype=torch.float32)
        if self.transforms is not None:
            return self.transforms(image, target)
        return ToTensor()(image, target)

    def camera_of(self, index):
        """The camera an image comes from: its file extension (RAW-NOD: .ARW Sony, .NEF Nikon)."""
        name = self.images_by_id[self.image_ids[index]]["file_name"]
        return os.path.splitext(name)[1].lstrip(".").upper() or "RAW"


def unscale_outputs(targets, outputs):
    """Detections from the loaded image's frame back to the annotation's (for COCO scoring)."""
    rescaled = []
    for target, output in zip(targets, outputs):
        sx, sy = (float(v) for v in target["scale"])
        output = dict(output)
        output["boxes"] = output["boxes"] / torch.tensor([sx, sy, sx, sy])
        rescaled.append(output)
    return rescaled
