"""Argument parsing: argparse whose errors are one-line UserErrors, the number types every flag
uses, and the flags every script or trainer shares."""
import argparse
import math
import sys

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.flag_choices import WORKERS_RANGE


class RawDescriptionDefaultsFormatter(argparse.RawDescriptionHelpFormatter,
                                      argparse.ArgumentDefaultsHelpFormatter):
    """The description as written (its example's lines kept) and each flag's default shown."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are UserErrors: `run_main` prints one line `error: --flag ...`.

    A bad value reads `--batch_size 0: must be positive`; other argparse errors (unknown flag,
    invalid choice, missing value) keep argparse's wording behind the flag's name.
    """

    def __init__(self, *args, example=None, **kwargs):
        """`example`: a working command line, shown right after the description's first
        paragraph (one sentence of what the script does) as `Example:`; the rest follows."""
        kwargs.setdefault("exit_on_error", False)
        if example:
            summary, _, rest = (kwargs.get("description") or "").strip().partition("\n\n")
            kwargs["description"] = "\n\n".join(
                part for part in (summary, "Example:\n  " + example.replace("\n", "\n  "), rest) if part)
            # the example keeps its lines; ArgumentDefaults' default column is kept too
            kwargs["formatter_class"] = (RawDescriptionDefaultsFormatter if kwargs.get(
                "formatter_class") is argparse.ArgumentDefaultsHelpFormatter
                else argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        try:
            parsed, rest = super().parse_known_args(args, namespace)
        except argparse.ArgumentError as e:
            names = (e.argument_name or "").split("/")
            given = sys.argv[1:] if args is None else [str(a) for a in args]
            # the spelling the user typed (an alias too), else the flag's first name
            flag = next((n for n in names if any(a == n or a.startswith(n + "=") for a in given)),
                        names[0])
            bad_value = isinstance(e.__context__, argparse.ArgumentTypeError)
            self.error(f"{flag}{' ' if bad_value else ': '}{e.message}" if flag else e.message)
        if getattr(parsed, "device", "") is None:  # add_common_args' default, resolved after --help
            from torch_utils_lib.runtime.devices import default_device  # torch: seconds to import
            parsed.device = default_device()
        return parsed, rest

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


def _checked(name, kind, accept, problem, doc):
    """An argparse type: `text` parsed as `kind` (finite), refused with `problem` unless `accept`."""
    def convert(text):
        value = _number(kind, text)
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text}: {problem}")
        return value
    convert.__name__, convert.__doc__ = name, f"argparse type: {doc}."
    return convert


positive_int = _checked("positive_int", int, lambda v: v >= 1, "must be positive", "an integer >= 1")
non_negative_int = _checked("non_negative_int", int, lambda v: v >= 0, "must not be negative",
                            "an integer >= 0")
positive_float = _checked("positive_float", float, lambda v: v > 0, "must be positive",
                          "a finite number > 0")
non_negative_float = _checked("non_negative_float", float, lambda v: v >= 0, "must not be negative",
                              "a finite number >= 0")
probability = _checked("probability", float, lambda v: 0 <= v <= 1, "must be between 0 and 1",
                       "a number in [0, 1]")
decay_rate = _checked("decay_rate", float, lambda v: 0 <= v < 1, "must be in [0, 1)",
                      "a number in [0, 1) (an averaging or decay factor)")


MAX_BOOTSTRAP = 100_000  # each set keeps (N, 12) float64 draws: 9.6 MB per set at this bound
bootstrap_resamples = _checked(
    "bootstrap_resamples", int, lambda v: 0 <= v <= MAX_BOOTSTRAP,
    f"must be between 0 and {MAX_BOOTSTRAP} (the draws are held per set; a 95% interval's "
    f"percentiles are steady to 0.001 AP long before)", f"a resample count in [0, {MAX_BOOTSTRAP}]")


def int_at_least(low):
    """argparse type: an integer >= `low`."""
    return _checked(f"int_at_least_{low}", int, lambda v: v >= low, f"must be at least {low}",
                    f"an integer >= {low}")


def int_in_range(low, high, *, off=None):
    """argparse type: an integer in [low, high] (a size that can run), or `off` (e.g. 0: none)."""
    also = f"{off} or " if off is not None else ""
    return _checked(f"int_in_range_{low}_{high}", int,
                    lambda v: v == off or low <= v <= high,
                    f"must be {also}between {low} and {high}", f"an integer, {also}in [{low}, {high}]")


def add_common_args(parser, *, seed=True, workers=True, amp=True, default_seed=0):
    """--device, and where the script uses them --seed, --workers (DataLoader processes), --amp.

    A script passes False for a flag it would ignore: every flag accepted does something.
    """
    # default None: parse_known_args resolves it (importing torch), so --help never waits for torch
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda when available)")
    if seed:
        parser.add_argument("--seed", type=int, default=default_seed, help="random seed")
    if workers:
        parser.add_argument("--workers", type=int_in_range(*WORKERS_RANGE), default=0,
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
