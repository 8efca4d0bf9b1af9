"""The choices of flags whose implementations need torch, kept torch-free so that a script's
--help starts without it. The implementing modules take their names from here."""
from torch_utils_lib.toolkit.errors import UserError

# detection_models builds each; torchvision's names with COCO weights, then our light model
TORCHVISION_DETECTOR_NAMES = ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2",
                              "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2",
                              "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2")
LIGHT_DETECTORS = ("maskrcnn_resnet18_fpn",)
DETECTOR_NAMES = LIGHT_DETECTORS + TORCHVISION_DETECTOR_NAMES

DIFFUSION_SCHEDULES = ("linear", "cosine")  # diffusion_model.model.diffusion's noise schedules
DIFFUSION_OBJECTIVES = ("eps", "v")  # what its network predicts

COCO_BACKENDS = ("pycocotools", "faster_coco_eval")  # coco_eval.CocoEvaluator's

AUGMENTATIONS = {"hflip": "random horizontal flip (torchvision's detection recipe)",
                 "dihedral": "random flip and quarter turn (data with no up, e.g. the sample shapes)",
                 "none": "no augmentation"}  # transforms.training_augmentation's


# --min_size / --max_size of a detector's input: 32 px is one cell of the FPN's coarsest (stride
# 32) level; a 4096 px short side is 5x torchvision's 800 and about what one 80 GB GPU trains
DETECTOR_SIZE_RANGE = (32, 4096)
# the smallest input a detector trains on, where it is above DETECTOR_SIZE_RANGE's 32: the light
# model's BatchNorm trains (torchvision's are frozen) and needs more than one value per channel
# at its stride-32 level, which a lone 32 px input (one 1x1 cell) does not give
DETECTOR_MIN_TRAINING_SIZE = {"maskrcnn_resnet18_fpn": 64}


def check_detector_training_sizes(model, min_size=None, max_size=None):
    """Refuse --min_size/--max_size under what detector `model` trains on (checked before
    training; the light model's own sizes, 128/512, pass)."""
    need = DETECTOR_MIN_TRAINING_SIZE.get(model)
    for flag, value in (("--min_size", min_size), ("--max_size", max_size)):
        if need and value is not None and value < need:
            raise UserError(f"{flag} {value}: {model} trains on inputs of at least {need} px (its "
                            f"trainable BatchNorm needs more than one value per channel at "
                            f"stride 32)")

# --batch_size of every script: 1024 images a step is 64x torchvision's detection recipe (16)
# and past what one GPU holds at the smallest detector input; more runs across processes
BATCH_SIZE_RANGE = (1, 1024)
# --count: rows (images) of a comparison figure; 64 rows of 512 px panels make a 32k px tall PNG
FIGURE_COUNT_RANGE = (0, 64)
# --workers: DataLoader processes (0: load in the main process); 64 is past one node's useful count
WORKERS_RANGE = (0, 64)
# --nproc_per_node: torchrun processes, one GPU each; 64 is past the GPUs of one node
PROCESSES_RANGE = (1, 64)
# --trainable_backbone_layers: torchvision's ResNet backbones have 5 stages
BACKBONE_STAGES = 5
