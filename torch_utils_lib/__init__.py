"""llvision's shared library, in layers; a layer imports only the layers above it in this list
(tests/test_layers.py checks it, and that no module imports itself back through others).

- `toolkit`: the torch-free plumbing every script uses (errors, guards, flags, names, paths,
  atomic JSON, run records, progress bars, tables). Never imports torch, so `--help` is fast;
  `cli` reaches `runtime.devices` only after parsing, to resolve the default `--device`.
- `runtime`: seeds, devices and AMP, torchrun processes, state-dict checkpoints.
- `data`: COCO json, the detection dataset, image reading, paired transforms, loaders, camera.
- `evaluation`: the metric vocabulary (`metrics`), COCO matching and AP, bootstrap intervals,
  robustness against darkness, PSNR/SSIM.
- `models`: the detector families, building and loading detectors, the frozen detector.
- `engine`: the training loop and its hooks, the Trainer, the metric logger.
- `plots` (beside the rest, imports `toolkit` only): charts and drawings of detections.
"""
