"""Every script has --help and runs from the repo root and from inside its folder."""
import glob
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import REPO, run_script

FOLDERS = ("dataset", "mask_rcnn", "diffusion_model", "genisp", "enhancer", "study", "torch_utils_lib", "bench")


def scripts():
    found = []
    for folder in FOLDERS:
        for path in sorted(glob.glob(os.path.join(REPO, folder, "*.py"))):
            with open(path) as f:
                if 'if __name__ == "__main__"' in f.read():
                    found.append(path)
    return found


def test_model_folders_have_the_three_scripts():
    for folder in ("mask_rcnn", "diffusion_model", "genisp", "enhancer"):
        for name in ("train.py", "evaluate.py", "inference.py"):
            assert os.path.isfile(os.path.join(REPO, folder, name)), f"{folder}/{name}"


def test_every_script_has_help_from_root_and_from_its_folder():
    paths = scripts()
    assert len(paths) >= 12
    jobs = [(p, REPO) for p in paths] + [(os.path.basename(p), os.path.dirname(p)) for p in paths]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: (job, run_script(job[0], "--help", cwd=job[1], env={"PYTHONPATH": ""})), jobs))
    for (script, cwd), result in results:
        assert result.returncode == 0, f"{script} in {cwd}: {result.stderr[-800:]}"
        assert "usage:" in result.stdout, script


def test_help_of_every_script_starts_without_torch():
    """--help is instant: no script (the benches too) imports torch (seconds) before parsing its
    flags."""
    paths = scripts()
    probe = ("import runpy, sys; sys.argv = [sys.argv[1], '--help']\n"
             "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO TORCH', file=sys.stderr)")
    slow = []
    for path in paths:
        result = subprocess.run([sys.executable, "-c", probe, path], capture_output=True, text=True,
                                cwd=REPO)
        assert "usage:" in result.stdout, (path, result.stderr[-800:])
        if result.stderr.strip().splitlines()[-1] != "NO TORCH":
            slow.append(os.path.relpath(path, REPO))
    assert slow == []


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(REPO, ".ci", "run")) as f:
        assert "make test" in f.read()
    with open(os.path.join(REPO, "README.md")) as f:
        head = f.read(3000)
    assert "make demo" in head and "make test" in head
