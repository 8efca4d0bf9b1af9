"""Run metadata (arguments, versions, git commit) beside every output.

No torch import here: versions are read from package metadata.
"""
import datetime
import hashlib
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata

from torch_utils_lib.toolkit.atomic_io import atomic_write_json
from torch_utils_lib.toolkit.paths import REPO_ROOT

_PACKAGES = ("torch", "torchvision", "numpy", "pillow", "opencv-python-headless", "pycocotools",
             "faster-coco-eval", "rawpy", "tifffile")


def file_digest(path, chunk=1 << 20):
    """SHA-256 of a file's bytes (identifies a checkpoint a result depends on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit():
    """The repository's commit, with '-dirty' when the tree has uncommitted changes; None outside git."""
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=REPO_ROOT, capture_output=True,
                                        text=True, timeout=10)
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions():
    """Installed versions of the packages results depend on."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_run_metadata(output_dir, args, filename="run.json", **extra):
    """Record the command, arguments, versions and git commit in `output_dir/filename`."""
    info = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "args": vars(args) if hasattr(args, "__dict__") else dict(args),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    atomic_write_json(os.path.join(output_dir, filename), info)
    return info
