"""User errors end in one line and a non-zero exit, never a traceback: `UserError`, `run_main`."""
import errno
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
