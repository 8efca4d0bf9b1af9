"""Checkpoints (atomic, weights_only, exact resume) and the training loop's safety rails."""
import os
import random

import numpy as np
import pytest
import torch

from torch_utils_lib.runtime.checkpoint import load_checkpoint, resume_training, save_checkpoint
from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.engine.loop import NonFiniteLossError, fit, train_one_epoch
from torch_utils_lib.toolkit.runinfo import write_run_metadata


def regression_loader(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4, shuffle=True)


def mse(model, batch, device):
    x, y = batch
    return {"loss_mse": torch.nn.functional.mse_loss(model(x.to(device)), y.to(device))}


def test_checkpoint_round_trip_restores_rng_and_optimizer(tmp_path):
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    train_one_epoch(model, opt, regression_loader(), torch.device("cpu"), 0, loss_fn=mse)
    path = str(tmp_path / "c.pth")
    save_checkpoint(path, model, {"name": "lin"}, opt, epoch=3)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    state = load_checkpoint(path)
    other = torch.nn.Linear(3, 1)
    other_opt = torch.optim.Adam(other.parameters(), lr=0.1)
    assert resume_training(state, other, other_opt) == 4
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])
    assert torch.equal(other.weight, model.weight) and state["config"] == {"name": "lin"}
    assert other_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


class Pickled:  # a pickled object is refused by weights_only loading
    pass


def test_foreign_and_corrupt_checkpoints_are_user_errors(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pth"):
        load_checkpoint(str(tmp_path / "junk.pth"))
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="no 'model'"):
        load_checkpoint(str(tmp_path / "other.pth"))
    torch.save({"model": Pickled()}, tmp_path / "pickle.pth")
    with pytest.raises(UserError, match="pickle.pth"):
        load_checkpoint(str(tmp_path / "pickle.pth"))
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(str(tmp_path / "missing.pth"))


def test_non_finite_loss_stops_before_the_step_and_no_nan_is_saved(tmp_path):
    model = torch.nn.Linear(3, 1)
    before = model.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def exploding(model, batch, device):
        return {"loss": mse(model, batch, device)["loss_mse"] * float("inf")}

    with pytest.raises(NonFiniteLossError, match="epoch 0, iteration 0"):
        train_one_epoch(model, opt, regression_loader(), torch.device("cpu"), 0, loss_fn=exploding)
    assert torch.equal(model.weight, before)
    model.weight.data[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="not finite"):
        save_checkpoint(str(tmp_path / "nan.pth"), model, {})
    assert not os.path.exists(tmp_path / "nan.pth")


def test_warmup_ramps_the_learning_rate_linearly(tmp_path):
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    log = tmp_path / "log.jsonl"
    train_one_epoch(model, opt, regression_loader(), torch.device("cpu"), 0, loss_fn=mse,
                    warmup_iters=4, log_path=str(log))
    from torch_utils_lib.toolkit.atomic_io import read_jsonl
    lrs = [r["lr"] for r in read_jsonl(str(log))]
    assert lrs[:5] == pytest.approx([0.25075, 0.5005, 0.75025, 1.0, 1.0])


def test_fit_resumes_exactly_after_an_interruption(tmp_path):
    def run(directory, epochs, resume=False):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
        start = 0
        if resume:
            start = resume_training(load_checkpoint(str(directory / "last.pth")), model, opt, sched)
        fit(model, opt, sched, regression_loader(), torch.device("cpu"), epochs=epochs,
            checkpoint_dir=str(directory), config={}, start_epoch=start, loss_fn=mse)
        return model

    straight = run(tmp_path / "a", 3)
    run(tmp_path / "b", 1)
    resumed = run(tmp_path / "b", 3, resume=True)
    assert torch.equal(straight.weight, resumed.weight)
    assert (tmp_path / "b" / "loss_curve.png").stat().st_size > 1000


def test_run_metadata_records_args_versions_and_commit(tmp_path):
    import argparse
    info = write_run_metadata(str(tmp_path), argparse.Namespace(lr=0.1))
    assert info["args"] == {"lr": 0.1} and info["versions"]["torch"]
    assert (tmp_path / "run.json").exists() and "git_commit" in info
