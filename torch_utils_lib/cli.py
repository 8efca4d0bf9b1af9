"""Command-line plumbing: user errors end in one line and a non-zero exit, never a traceback."""
import argparse
import math
import sys


class UserError(Exception):
    """A problem with what the user gave (a path, a file, a flag): reported as one line."""


def run_main(main):
    """Run a script's `main()`; turn UserError into `error: ...` on stderr and exit code 2."""
    try:
        code = main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command (with --resume where offered) to continue",
              file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def require_file(path, what="file"):
    """Raise a UserError naming `path` unless it is an existing file."""
    import os
    if not os.path.isfile(path):
        raise UserError(f"{path}: {what} not found")
    return path


def read_json(path, what="JSON file"):
    """The parsed JSON file at `path`; a UserError naming it if it is missing or not JSON."""
    import json
    require_file(path, what)
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read {what} ({e})") from None


def require_dir(path, what="directory"):
    """Raise a UserError naming `path` unless it is an existing directory."""
    import os
    if not os.path.isdir(path):
        raise UserError(f"{path}: {what} not found")
    return path


# ---------------------------------------------------------------- argument parsing

class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are UserErrors: `run_main` prints one line `error: --flag ...`.

    A bad value reads `--batch_size 0: must be positive`; other argparse errors (unknown flag,
    invalid choice, missing value) keep argparse's wording behind the flag's name.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        try:
            return super().parse_known_args(args, namespace)
        except argparse.ArgumentError as e:
            flag = (e.argument_name or "").split("/")[0]
            bad_value = isinstance(e.__context__, argparse.ArgumentTypeError)
            self.error(f"{flag}{' ' if bad_value else ': '}{e.message}" if flag else e.message)

    def error(self, message):
        raise UserError(message)


def _number(kind, text):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text}: not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: not a finite number")
    return value


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be positive")
    return value


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must not be negative")
    return value


def int_at_least(low):
    """argparse type: an integer >= `low`."""
    def convert(text):
        value = _number(int, text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text}: must be at least {low}")
        return value
    convert.__name__ = f"int_at_least_{low}"
    return convert


def finite_float(text):
    """argparse type: any finite number (not nan or inf)."""
    return _number(float, text)


def positive_float(text):
    """argparse type: a finite number > 0."""
    value = _number(float, text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be positive")
    return value


def non_negative_float(text):
    """argparse type: a finite number >= 0."""
    value = _number(float, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must not be negative")
    return value


def probability(text):
    """argparse type: a number in [0, 1]."""
    value = _number(float, text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1")
    return value


def decay_rate(text):
    """argparse type: a number in [0, 1) (an averaging or decay factor)."""
    value = _number(float, text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be in [0, 1)")
    return value


def add_common_args(parser, *, seed=True, workers=True, amp=True, default_seed=0):
    """--device, and where the script uses them --seed, --workers (DataLoader processes), --amp.

    A script passes False for a flag it would ignore: every flag accepted does something.
    """
    from torch_utils_lib.utils import default_device
    parser.add_argument("--device", default=default_device(),
                        help="cpu, cuda or cuda:N (default: cuda when available)")
    if seed:
        parser.add_argument("--seed", type=int, default=default_seed, help="random seed")
    if workers:
        parser.add_argument("--workers", type=non_negative_int, default=0,
                            help="data-loading worker processes")
    if amp:
        parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                            help="mixed precision (default: on for CUDA, off on CPU; --no-amp "
                                 "turns it off)")
    return parser


RESUME_LAST = "CHECKPOINT_DIR/last.pth"  # --resume without a value


def add_training_args(parser, *, epochs, max_grad_norm, lr_step_size=0, lr_milestones=None,
                      lr_gamma=0.1):
    """The flags every trainer shares, with the script's defaults.

    --epochs (--epoch), --max_grad_norm (--clip_grad_norm; 0: no clipping), --lr_step_size or
    --lr_milestones (giving one clears the other's default), --lr_gamma and --resume [PATH].
    """
    parser.add_argument("--epochs", "--epoch", dest="epochs", type=positive_int, default=epochs,
                        help="number of epochs (default: %(default)s)")
    parser.add_argument("--max_grad_norm", "--clip_grad_norm", dest="max_grad_norm",
                        type=non_negative_float, default=max_grad_norm,
                        help="clip the gradient norm to this (0: no clipping; default: "
                             "%(default)s)")
    schedule = parser.add_mutually_exclusive_group()
    schedule.add_argument("--lr_step_size", type=non_negative_int, default=lr_step_size,
                          action=_ClearOther, other="lr_milestones", cleared=None,
                          help="multiply the lr by --lr_gamma every this many epochs (0: never; "
                               "default: %(default)s)")
    schedule.add_argument("--lr_milestones", "--lr_steps", dest="lr_milestones", nargs="*",
                          type=positive_int, default=lr_milestones, action=_ClearOther,
                          metavar="EPOCH",
                          other="lr_step_size", cleared=0,
                          help="epochs at which the lr is multiplied by --lr_gamma (none: a "
                               "constant lr; default: %(default)s)")
    parser.add_argument("--lr_gamma", type=positive_float, default=lr_gamma,
                        help="lr decay factor (default: %(default)s)")
    parser.add_argument("--resume", nargs="?", const=RESUME_LAST, default=None, metavar="PATH",
                        help="continue from CHECKPOINT_DIR/last.pth, or from PATH; a missing "
                             "file starts a new run and says so")
    return parser


class _ClearOther(argparse.Action):
    """Store the value and reset the other lr-schedule flag, so the one given decides."""

    def __init__(self, *args, other, cleared, **kwargs):
        self.other, self.cleared = other, cleared
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, self.other, self.cleared)
