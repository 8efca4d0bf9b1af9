"""Command-line plumbing: user errors end in one line and a non-zero exit, never a traceback."""
import json
import os
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
