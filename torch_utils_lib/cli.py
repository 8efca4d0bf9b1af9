"""Command-line plumbing: user errors end in one line and a non-zero exit, never a traceback."""
import errno
import json
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


def run_main(main):
    """Run a script's `main()`; turn UserError into `error: ...` on stderr and exit code 2.

    OSErrors about the user's disk or paths (full disk, read-only folder, a file where a folder
    is needed) are user errors too.
    """
    try:
        code = main()
    except UserError as e:
        _close_progress_bars()
        print(f"error: {user_error_message(e)}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        if e.errno not in _USER_OS_ERRORS or (e.filename is None and e.errno not in _DISK_ERRORS):
            raise
        _close_progress_bars()
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


def read_json(path, what="JSON file"):
    """The parsed JSON file at `path`; a UserError naming it if it is missing or not JSON."""
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
        raise UserError(f"{write_path}: {write_flag} {relation} the input {read_path} "
                        f"({read_flag}); inputs are never written: choose another {write_flag}")
