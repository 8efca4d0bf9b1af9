"""The trainer skeleton (training.Trainer) and fit's hooks on a tiny regression model."""
import argparse
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import REPO
from torch.utils.data import default_collate

from torch_utils_lib.toolkit.atomic_io import read_jsonl
from torch_utils_lib.toolkit.cli import RESUME_LAST
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.data.loaders import detection_loader
from torch_utils_lib.engine.hooks import Hook
from torch_utils_lib.engine.training import Trainer


class Recorder(Hook):
    """Logs every call, carries a counter in checkpoints, adds a metric to each epoch."""

    def __init__(self, calls):
        self.calls = calls
        self.steps = Counter()

    def before_train(self, start_epoch):
        self.calls.append(("before_train", start_epoch))

    def after_step(self):
        self.steps.count += 1

    def after_epoch(self, epoch, record):
        self.calls.append(("after_epoch", epoch, sorted(record)))
        return {"steps": self.steps.count}

    def after_checkpoint(self, epoch, path):
        self.calls.append(("after_checkpoint", epoch, os.path.basename(path)))

    def after_train(self, history):
        self.calls.append(("after_train", [h["epoch"] for h in history]))

    def checkpoint_state(self):
        return {"ema": self.steps}  # any object with a state dict rides in the checkpoint


class Counter:
    count = 0

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


class LinearTrainer(Trainer):
    """The whole trainer of a model whose loss is an MSE to a fixed linear map."""

    resume_keys = ("model", "width")

    def build(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(32, 3, generator=g)
        data = torch.utils.data.TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]]))
        self.loader = detection_loader(data, 8, train=True, seed=self.args.seed,
                                       collate=default_collate)  # sharded under torchrun
        self.model = torch.nn.Linear(3, 1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.05)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 1, 0.5)
        self.config = {"model": "linear", "width": self.args.width}

    def loss(self, model, batch, device):
        x, y = batch
        return {"mse": torch.nn.functional.mse_loss(model(x.to(device)), y.to(device))}

    def hooks(self):
        self.recorder = Recorder(self.calls)
        return [self.recorder]


def run(checkpoint_dir, epochs, resume=None, width=1, checkpoint_epoch=0):
    args = argparse.Namespace(device="cpu", seed=0, amp=None, resume=resume, epochs=epochs,
                              checkpoint_dir=str(checkpoint_dir), max_grad_norm=0.0,
                              checkpoint_epoch=checkpoint_epoch, width=width)
    trainer = LinearTrainer(args)
    trainer.calls = []
    return trainer, trainer.run()


def test_hooks_run_in_order_and_their_metrics_and_state_are_kept(tmp_path):
    trainer, history = run(tmp_path / "run", 2, checkpoint_epoch=2)
    assert trainer.calls == [
        ("before_train", 0),
        ("after_epoch", 0, ["epoch", "lr", "train_loss", "train_mse"]),
        ("after_checkpoint", 0, "last.pth"),
        ("after_epoch", 1, ["epoch", "lr", "train_loss", "train_mse"]),
        ("after_checkpoint", 1, "last.pth"),
        ("after_train", [0, 1]),
    ]
    assert [h["steps"] for h in history] == [4, 8] and history[1]["lr"] == pytest.approx(0.025)
    last = torch.load(tmp_path / "run" / "last.pth", weights_only=True)
    assert last["ema"] == {"count": 8} and last["epoch"] == 1 and last["scaler"] == {}
    kept = torch.load(tmp_path / "run" / "epoch_2.pth", weights_only=True)
    assert torch.equal(kept["model"]["weight"], last["model"]["weight"])
    assert not (tmp_path / "run" / "epoch_1.pth").exists()
    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_json["world_size"] == 1 and run_json["amp"] is False


def test_resume_after_epoch_one_equals_an_uninterrupted_run_bit_for_bit(tmp_path):
    _, straight = run(tmp_path / "a", 3)
    run(tmp_path / "b", 1)
    with pytest.raises(UserError, match="pass --resume"):
        run(tmp_path / "b", 3)
    with pytest.raises(UserError, match="width 1 there, 2 here"):  # one of resume_keys
        run(tmp_path / "b", 3, resume=RESUME_LAST, width=2)
    trainer, resumed = run(tmp_path / "b", 3, resume=RESUME_LAST)
    assert trainer.calls[0] == ("before_train", 1)
    a, b = (torch.load(tmp_path / d / "last.pth", weights_only=True) for d in ("a", "b"))
    assert torch.equal(a["model"]["weight"], b["model"]["weight"])
    assert torch.equal(a["model"]["bias"], b["model"]["bias"])
    assert a["ema"] == b["ema"] == {"count": 12}
    assert straight == json.loads((tmp_path / "b" / "history.json").read_text())
    assert [r["loss"] for r in read_jsonl(tmp_path / "a" / "train_log.jsonl")] == [
        r["loss"] for r in read_jsonl(tmp_path / "b" / "train_log.jsonl")]


def test_a_failing_hook_keeps_the_epoch_and_the_process_group_is_cleaned_up(tmp_path):
    class Broken(LinearTrainer):
        def hooks(self):
            class Fails(Hook):
                def after_epoch(self, epoch, record):
                    raise UserError("preview.png: cannot write (No space left on device)")
            return [Fails()]

    args = argparse.Namespace(device="cpu", seed=0, amp=None, resume=None, epochs=2,
                              checkpoint_dir=str(tmp_path / "run"), max_grad_norm=0.0, width=1)
    with pytest.raises(UserError, match="No space left"):
        Broken(args).run()
    assert torch.load(tmp_path / "run" / "last.pth", weights_only=True)["epoch"] == 0
    assert not torch.distributed.is_initialized()


DDP_SCRIPT = """
import argparse, sys
import torch
sys.path.insert(0, {repo!r})
from tests.torch_utils_lib.engine.test_training import LinearTrainer
args = argparse.Namespace(device="cpu", seed=0, amp=None, resume=None, epochs=2,
                          checkpoint_dir={out!r}, max_grad_norm=0.0, width=1)
trainer = LinearTrainer(args)
trainer.calls = []
trainer.run()
print("rank", trainer.dist.rank, "world", trainer.dist.world_size,
      "initialized", torch.distributed.is_initialized())
"""


def test_two_processes_under_torchrun_with_gloo(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(repo=REPO, out=str(tmp_path / "run")))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node", "2", str(script)], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(l for l in result.stdout.splitlines() if l.startswith("rank")) == [
        "rank 0 world 2 initialized False", "rank 1 world 2 initialized False"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["world_size"] == 2
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1] and history[1]["steps"] == 4  # 2 steps/epoch/rank
