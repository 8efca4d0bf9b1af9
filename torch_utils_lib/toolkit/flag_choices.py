"""The choices of flags whose implementations need torch, kept torch-free so that a script's
--help starts without it. The implementing modules take their names from here."""

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
