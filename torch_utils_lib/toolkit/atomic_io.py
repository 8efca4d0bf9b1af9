"""Atomic file writes (a temporary file beside the target, then a rename) and JSON files.

Readers never see half a file, and an interrupted write leaves the old file in place. JSON and
JSON-lines files are read and written here only. No torch import.
"""
import itertools
import json
import os
import re
import shutil
import tempfile

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.guards import require_file


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once: os.umask is process-wide and not thread-safe
_TEMP_NUMBERS = itertools.count()
_TEMP_NAME = re.compile(r"\..+\.(\d+)\.\d+\.tmp")


def _open_temp(directory, base):
    """(fd, path) of a new hidden temporary file beside the target, mode 0666 less the umask.

    Named by process id and a counter, which is cheaper than mkstemp's random name plus a
    chmod; mkstemp is the fallback where the name exists (another host on a shared disk).
    """
    path = os.path.join(directory, f".{base[:100]}.{os.getpid()}.{next(_TEMP_NUMBERS)}.tmp")
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
    except FileExistsError:
        fd, path = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
        os.chmod(path, 0o666 & ~_UMASK)
        return fd, path


def atomic_write_bytes(path, data):
    """Write `data` to `path` through a temporary file and a rename: readers never see half.

    A disk that is full or read-only, or a path blocked by a file, raises a UserError naming
    `path`; what was at `path` before stays as it was.
    """
    directory, base = os.path.split(os.path.abspath(path))
    tmp = None
    try:
        try:
            fd, tmp = _open_temp(directory, base)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = _open_temp(directory, base)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise UserError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def remove_stale_temporaries(directory):
    """Delete the temporary files atomic_write_bytes leaves when a process is killed mid-write.

    Only hidden `.NAME.PID.N.tmp` files of processes that no longer run are removed; call it
    when a run starts, before this process writes there (its own pid may be a reused one).
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        match = _TEMP_NAME.fullmatch(name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        try:
            os.unlink(os.path.join(directory, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def _process_alive(pid):
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_json(path, obj):
    """Write `obj` as indented JSON atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def atomic_write_json_lines(path, records):
    """Write `records` as a JSON-lines file (one JSON object per line) atomically."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def atomic_write_text(path, text):
    """Write a text file atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_link_or_copy(source, path):
    """Put `source`'s content at `path` as a hard link (a copy across file systems), atomically:
    through a temporary name of the same kind atomic_write_bytes uses, so what a killed run leaves
    is removed by remove_stale_temporaries (call it once per folder before), and never a half-made `path`."""
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = _open_temp(directory, base)
    os.close(fd)
    try:
        os.unlink(tmp)  # os.link needs a free name; the number stays this process's own
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise UserError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


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


def read_jsonl(path):
    """Records of a JSON-lines log."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
