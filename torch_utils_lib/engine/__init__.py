"""Engine: the training loop (`loop`: train_one_epoch, fit, predict, evaluate), its hooks, the
Trainer every trainer builds on, and the metric logger.

May import `toolkit`, `runtime`, `data`, `evaluation`, `models` and `plots`.
"""
