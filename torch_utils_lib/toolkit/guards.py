"""Input and output guards: a file or folder must exist, a listed name stays in its folder, and
nothing is written where an input is."""
import os

from torch_utils_lib.toolkit.errors import UserError


def require_file(path, what="file", hint=""):
    """Raise a UserError naming `path` unless it is an existing file; `hint` says how to get one."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: {what} not found" + (f" ({hint})" if hint else ""))
    return path


def require_dir(path, what="directory", hint=""):
    """Raise a UserError naming `path` unless it is an existing directory; `hint` as require_file."""
    if not os.path.isdir(path):
        raise UserError(f"{path}: {what} not found" + (f" ({hint})" if hint else ""))
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
