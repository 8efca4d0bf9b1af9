"""Put torchvision's pretrained detector weights into the torch hub cache (needs internet once).

Copy the cache folder (printed at the end) to offline machines; every script then finds them.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_utils_lib.toolkit.cli import ArgumentParser
from torch_utils_lib.toolkit.errors import UserError, run_main
from torch_utils_lib.toolkit.flag_choices import TORCHVISION_DETECTOR_NAMES


def build_parser():
    parser = ArgumentParser(
        example='python mask_rcnn/download_weights.py maskrcnn_resnet50_fpn retinanet_resnet50_fpn_v2 --backbone',
        description=__doc__)
    parser.add_argument("names", nargs="+", help=f"detectors: {', '.join(TORCHVISION_DETECTOR_NAMES)}")
    parser.add_argument("--backbone", action="store_true", help="also the ImageNet backbone weights")
    return parser


def main():
    args = build_parser().parse_args()  # before torchvision is imported: --help is instant
    from torch_utils_lib.models.detectors import TORCHVISION_DETECTORS, cached_weights_path
    for name in args.names:
        if name not in TORCHVISION_DETECTORS:
            raise UserError(f"{name}: unknown detector ({', '.join(TORCHVISION_DETECTORS)})")
        detector = TORCHVISION_DETECTORS[name]
        for weights in ((detector.coco_weights, detector.backbone_weights) if args.backbone
                        else (detector.coco_weights,)):
            try:
                weights.get_state_dict(progress=True)
            except OSError as e:
                raise UserError(f"{weights.url}: download failed ({e})") from None
            print(f"{name}: {cached_weights_path(weights)}")


if __name__ == "__main__":
    run_main(main)
