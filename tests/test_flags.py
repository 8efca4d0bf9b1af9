"""One flag vocabulary: bad flags end in one line, the original names still parse, and --resume
means the same in every trainer (docs/flags.md, generated from the parsers, is checked in
tests/docs/test_docs.py)."""
import importlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import REPO, run_script
from tests.test_scripts import scripts
from torch_utils_lib.runtime.checkpoint import checkpoint_to_resume
from torch_utils_lib.toolkit.cli import RESUME_LAST, ArgumentParser
from torch_utils_lib.toolkit.errors import UserError, run_main

BAD_VALUES = [("--batch_size", "0"), ("--workers", "-1"), ("--lr", "nan"), ("--epochs", "0"),
              ("--count", "-1"), ("--steps", "0"), ("--parameter_size", "0"),
              ("--num_images", "0"), ("--score_threshold", "2"), ("--max_grad_norm", "inf"),
              ("--eta", "1.5"), ("--resize", "-1")]


def build_parser(path):
    module = importlib.import_module(os.path.relpath(path, REPO)[:-3].replace(os.sep, "."))
    return module.build_parser()


def long_flags(action):
    return [o for o in action.option_strings if o.startswith("--") and o != "--help"]


def bad_flag_cases(path):
    """(argv, how the error line starts) for an unknown flag and each generic bad value."""
    parser = build_parser(path)
    assert isinstance(parser, ArgumentParser), path
    flags = {flag for action in parser._actions for flag in long_flags(action)}
    cases = [(("--no_such_flag",), "error: ")]
    for flag, value in BAD_VALUES:
        if flag in flags:
            extra = ("1",) if flag == "--resize" else ()
            cases.append(((flag, value, *extra), f"error: {flag} {value}: "))
    return cases


def assert_one_error_line(where, code, stdout, stderr, start):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, (where, stderr[-500:])
    assert "Traceback" not in stderr, where
    assert len(lines) == 1 and lines[0].startswith(start), (where, lines)
    assert stdout == "", where


def test_every_script_reports_every_bad_flag_in_one_line(monkeypatch, capsys):
    """Each script as a process (one bad flag), then every bad flag through its main()."""
    cases = {path: bad_flag_cases(path) for path in scripts()}
    assert sum(map(len, cases.values())) > 40
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda path: run_script(path, *cases[path][-1][0], timeout=120),
                                cases))
    for (path, path_cases), result in zip(cases.items(), results):
        args, start = path_cases[-1]
        assert_one_error_line(f"{path} {args}", result.returncode, result.stdout, result.stderr,
                              start)
    for path, path_cases in cases.items():
        module = importlib.import_module(os.path.relpath(path, REPO)[:-3].replace(os.sep, "."))
        for args, start in path_cases:
            monkeypatch.setattr(sys, "argv", [path, *args])
            with pytest.raises(SystemExit) as exit_info:
                run_main(module.main)
            out = capsys.readouterr()
            assert_one_error_line(f"{path} {args}", exit_info.value.code, out.out, out.err, start)


def parse(script, *argv):
    return build_parser(os.path.join(REPO, script)).parse_args([str(a) for a in argv])


# The original project's README commands and hyperparameter flags, with the names they now set.
ORIGINAL_COMMANDS = [
    ("dataset/data_preprocessing.py", ["--input_dir", "in"], {"input_dir": "in"}),
    ("mask_rcnn/train.py",
     ["--image_dir", "img", "--annotation", "a.json", "--checkpoint_dir", "ck", "--weight_path", "w.pth",
      "--batch_size", 2, "--epoch", 3, "--weight_decay", 0.001, "--learning_rate", 0.02,
      "--lr_step_size", 4, "--lr_gamma", 0.5, "--trainable_backbone_layers", 2,
      "--clip_grad_norm", 5],
     {"image_dir": "img", "annotation": "a.json", "checkpoint_dir": "ck", "weight_path": "w.pth",
      "batch_size": 2, "epochs": 3, "weight_decay": 0.001, "lr": 0.02, "lr_step_size": 4,
      "lr_gamma": 0.5, "trainable_backbone_layers": 2, "max_grad_norm": 5.0}),
    ("diffusion_model/train.py",
     ["--input_image_dir", "x0", "--conditional_image_dir", "c", "--annotation", "a.json",
      "--checkpoint_dir", "ck", "--weight_path", "w.pth", "--batch_size", 2, "--epoch", 3,
      "--weight_decay", 0.1, "--learning_rate", 0.01, "--lr_step_size", 5, "--lr_gamma", 0.5,
      "--sample_every", 2, "--checkpoint_epoch", 3],
     {"input_image_dir": "x0", "conditional_image_dir": "c", "annotation": "a.json",
      "checkpoint_dir": "ck", "weight_path": "w.pth", "batch_size": 2, "epochs": 3,
      "weight_decay": 0.1, "lr": 0.01, "lr_step_size": 5, "lr_gamma": 0.5, "sample_every": 2,
      "checkpoint_epoch": 3}),
    ("diffusion_model/train.py", ["--conditional_img_dir", "c"], {"conditional_image_dir": "c"}),
    ("diffusion_model/inference.py",
     ["--input_image_dir", "n", "--conditional_image_dir", "c", "--output_image_dir", "o",
      "--annotation", "a.json", "--weight_path", "w.pth", "--batch_size", 4, "--figure_images", 2],
     {"input_image_dir": "n", "conditional_image_dir": "c", "output_dir": "o",
      "annotation": "a.json", "weight_path": "w.pth", "batch_size": 4, "count": 2}),
    ("diffusion_model/evaluate.py", ["--conditional_img_dir", "c"], {"conditional_image_dir": "c"}),
    ("mask_rcnn/evaluate.py",
     ["--normal_light_img_dir", "n", "--low_light_img_dir", "l", "--save_image_dir", "s",
      "--weight_path", "w.pth", "--annotation", "a.json", "--batch_size", 4, "--figure_images", 3],
     {"normal_light_image_dir": "n", "low_light_image_dir": "l", "output_dir": "s",
      "weight_path": "w.pth", "annotation": "a.json", "batch_size": 4, "count": 3}),
    ("genisp/train.py", ["--epoch", 3, "--lr_steps", 1, 2, "--learning_rate", 0.1],
     {"epochs": 3, "lr_milestones": [1, 2], "lr": 0.1}),
]


@pytest.mark.parametrize("script,argv,expected", ORIGINAL_COMMANDS,
                         ids=[f"{c[0]}:{c[1][0]}" for c in ORIGINAL_COMMANDS])
def test_original_flag_names_still_parse(script, argv, expected):
    args = vars(parse(script, *argv))
    assert {k: args[k] for k in expected} == expected


@pytest.mark.parametrize("script", ["mask_rcnn/train.py", "diffusion_model/train.py", "genisp/train.py",
                                    "enhancer/train.py"])
def test_trainers_share_schedule_and_resume_flags(script):
    assert parse(script, "--resume").resume == RESUME_LAST
    assert parse(script, "--resume", "run/epoch_4.pth").resume == "run/epoch_4.pth"
    assert parse(script).resume is None
    by_steps = parse(script, "--lr_step_size", 3)
    assert (by_steps.lr_step_size, by_steps.lr_milestones) == (3, None)
    by_milestones = parse(script, "--lr_milestones", 4, 2)
    assert (by_milestones.lr_step_size, by_milestones.lr_milestones) == (0, [4, 2])
    with pytest.raises(UserError, match="--lr_milestones: not allowed with argument --lr_step_size"):
        parse(script, "--lr_step_size", 3, "--lr_milestones", 4)


def test_one_lr_scheduler_builder():
    import torch

    from torch_utils_lib.engine.loop import build_lr_scheduler
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    assert build_lr_scheduler(optimizer, 0, None) is None
    lrs = []
    scheduler = build_lr_scheduler(optimizer, 0, [3, 1], gamma=0.5)
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == [1.0, 0.5, 0.5, 0.25]
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    scheduler = build_lr_scheduler(optimizer, 2, None, gamma=0.1)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_resume_has_one_meaning(tmp_path, capsys):
    run = tmp_path / "run"
    assert checkpoint_to_resume(None, str(run)) is None
    assert checkpoint_to_resume(RESUME_LAST, str(run)) is None
    assert "starting a new run" in capsys.readouterr().out
    run.mkdir()
    (run / "last.pth").write_bytes(b"x")
    assert checkpoint_to_resume(RESUME_LAST, str(run)) == str(run / "last.pth")
    other = tmp_path / "other.pth"
    other.write_bytes(b"x")
    assert checkpoint_to_resume(str(other), str(run)) == str(other)
    with pytest.raises(UserError, match="pass --resume"):
        checkpoint_to_resume(None, str(run))  # a new run never replaces the one there
    with pytest.raises(UserError, match="missing.pth: no such file"):
        checkpoint_to_resume(str(tmp_path / "missing.pth"), str(run))
