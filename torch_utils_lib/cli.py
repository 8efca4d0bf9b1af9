"""Command-line plumbing: user errors end in one line and a non-zero exit, never a traceback."""
import argparse
import errno
import math
import os
import sys


class UserError(Exception):
    """A problem with what the user gave (a path, a file, a flag): reported as one line."""


# OSErrors that describe the user's disk or paths (full, read-only, a file where a folder is
# expected, no permission), not a bug: reported as one line naming the path.
_USER_OS_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT,
                   errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EFBIG)


def user_error_message(error):
    """The one line of a UserError, also when a DataLoader worker raised it.

    torch re-raises a worker's exception as the same type with the message "Caught X in
    DataLoader worker process N.\nOriginal Traceback ...": the original message is the
    traceback's last line, after "module.UserError: ".
    """
    text = str(error)
    if "\nOriginal Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def os_error_message(error):
    """`<path>: <problem>` for an OSError about a path (the disk, when it names none)."""
    path = error.filename if error.filename is not None else "output disk"
    return f"{path}: cannot write or create ({error.strerror or error})"


def _close_progress_bars():
    """Close open tqdm bars so that the error starts its own line."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        try:
            bar.leave = False
            bar.close()
        except Exception:  # a half-built bar: nothing to clear
            pass


_END_OF_RUN = []  # callbacks run_main calls when main() ends (summaries such as warning counts)


def at_end_of_run(callback):
    """Have run_main call `callback()` once when main() ends, before an error line if any, so
    that a script's summary warnings never follow its `error:` line."""
    if callback not in _END_OF_RUN:
        _END_OF_RUN.append(callback)


def _end_of_run():
    while _END_OF_RUN:
        _END_OF_RUN.pop(0)()


def run_main(main):
    """Run a script's `main()`; turn UserError into `error: ...` on stderr and exit code 2.

    OSErrors about the user's disk or paths (full disk, read-only folder, a file where a folder
    is needed) are user errors too.
    """
    _END_OF_RUN.clear()  # callbacks left by library use earlier in this process are not this run's
    try:
        code = main()
        _end_of_run()
    except UserError as e:
        _close_progress_bars()
        _end_of_run()
        print(f"error: {user_error_message(e)}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        if e.errno not in _USER_OS_ERRORS or (e.filename is None and e.errno not in _DISK_ERRORS):
            raise
        _close_progress_bars()
        _end_of_run()
        print(f"error: {os_error_message(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command (with --resume where offered) to continue",
              file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def require_file(path, what="file"):
    """Raise a UserError naming `path` unless it is an existing file."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: {what} not found")
    return path


def require_dir(path, what="directory"):
    """Raise a UserError naming `path` unless it is an existing directory."""
    if not os.path.isdir(path):
        raise UserError(f"{path}: {what} not found")
    return path


def _self_and_parents(path):
    while True:
        yield path
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def safe_join(folder, name, list_file=""):
    """`folder/name` for a file name read from a list (`list_file`: a COCO json, a name list).

    Listed names are relative to their folder, as COCO's are: an absolute name, or one whose
    `..` leads outside `folder` (after resolving symlinks), is refused, so that a list can
    neither make a script read outside the folder nor write outside its output folder.
    """
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, name))
    leaves = os.path.normpath(name).split(os.sep)[0] == os.pardir  # also out of an output folder
    if os.path.isabs(name) or leaves or os.path.commonpath([root, path]) != root:
        raise UserError(f"{list_file}: file_name {name!r} points outside {folder} (listed names "
                        f"must be relative to it, without '..'): fix the list")
    return path


def check_outputs_apart(reads, writes):
    """Refuse, before anything is written, to write where an input is.

    `reads` and `writes` map a flag (or a description such as "--annotation entry") to a path
    or a list of paths (None entries are ignored). Paths compare after resolving symlinks, `..`
    and relative names. A written path may not equal a read path, lie inside a read folder, or
    (for a written folder) contain a read file or folder. Read paths that do not exist (detector
    names, files reported missing later) are skipped. Raises a UserError naming both paths and
    the flag to change.
    """
    def entries(mapping):
        for flag, paths in mapping.items():
            for path in ([paths] if isinstance(paths, (str, os.PathLike)) else paths or ()):
                if path:
                    yield os.path.realpath(path), (flag, path)

    read = {real: given for real, given in entries(reads) if os.path.exists(real)}
    written = dict(entries(writes))
    clashes = [(w, r, "is" if w == r else "lies inside")
               for w in written for r in _self_and_parents(w) if r in read]
    clashes += [(w, r, "contains") for r in read for w in _self_and_parents(r)
                if w in written and w != r]
    if clashes:
        w, r, relation = clashes[0]
        (write_flag, write_path), (read_flag, read_path) = written[w], read[r]
        kind = "folder" if os.path.isdir(r) else "file"
        raise UserError(f"{write_path}: {write_flag} {relation} the input {kind} {read_path} "
                        f"({read_flag}); inputs are never written: choose another {write_flag}")


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
            from torch_utils_lib.devices import default_device  # torch: seconds to import
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
