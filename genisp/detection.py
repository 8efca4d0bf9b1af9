"""The frozen detector's side of GenISP: loading it, mapping labels by name, scoring COCO AP on RAW."""
from genisp.data import RawCocoDetection, make_loader, unscale_outputs
from genisp.model import GenISP
from torch_utils_lib.data.categories import match_categories, present_categories
from torch_utils_lib.runtime.checkpoint import load_checkpoint
from torch_utils_lib.data.coco_json import load_coco_json
from torch_utils_lib.models.detectors import check_detector_input, keep_labels
from torch_utils_lib.engine.loop import predict
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import safe_join

GENISP_CONFIG_NAME = "genisp"


def label_map_for(annotation_file, detector_categories, category_map=None):
    """Dataset category id -> detector label, by class name (torch_utils_lib.data.categories), for the
    categories in use."""
    categories = present_categories(load_coco_json(annotation_file))
    return match_categories(categories, detector_categories, category_map, annotation_file)


def raw_dataset(raw_dir, annotation_file, detector_categories, pipeline="minimal", cache_dir=None,
                resize=None, train=False, category_map=None):
    """A RawCocoDetection whose labels are the detector's (matched by class name)."""
    label_map = label_map_for(annotation_file, detector_categories, category_map)
    used_ids = set(label_map)
    dataset = RawCocoDetection(raw_dir, annotation_file, make_loader(pipeline, cache_dir, resize),
                               train=train, label_map=label_map)
    # Categories listed but never used (RAW-NOD's 77 spare COCO classes) do not take part.
    dataset.coco_dict = {**dataset.coco_dict,
                         "categories": [c for c in dataset.coco_dict["categories"]
                                        if c["id"] in used_ids]}
    return dataset


def check_raw_inputs(detector, raw_dir, annotation_file):
    """Refuse, before the first step, a RAW file the detector cannot take (too elongated for its
    resize: models.detectors.check_detector_input), from the annotation's image sizes (the
    sensor's or the packed ones: the aspect ratio decides); files it gives no size are decoded
    as they come."""
    for image in load_coco_json(annotation_file)["images"]:
        if image.get("width") and image.get("height"):
            check_detector_input(detector, safe_join(raw_dir, image["file_name"], annotation_file),
                                 image["height"], image["width"])


def load_genisp(path, device="cpu"):
    """(GenISP in eval mode, config) from a train.py checkpoint."""
    state = load_checkpoint(path)
    config = state.get("config") or {}
    if config.get("model") != GENISP_CONFIG_NAME:
        raise UserError(f"{path}: not a GenISP checkpoint (config model is {config.get('model')!r})")
    genisp = GenISP(config.get("parameter_size", 256))
    genisp.load_state_dict(state["model"])
    return genisp.to(device).eval(), config


def predict_raw(model, data_loader, device, amp=False, desc="detecting"):
    """Yield (targets, detections in the annotation's pixel frame) per batch, in eval mode."""
    dataset = getattr(data_loader.dataset, "dataset", data_loader.dataset)
    labels = set(dataset.label_map.values())
    for targets, outputs in predict(model, data_loader, device, amp, desc):
        yield targets, keep_labels(unscale_outputs(targets, outputs), labels)
