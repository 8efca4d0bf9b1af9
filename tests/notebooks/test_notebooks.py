"""Every notebook runs headless from top to bottom as a newcomer runs it (no environment variable),
finds what the study wrote where the study writes it, and shows a figure."""
import glob
import json
import os
import types

import nbclient
import nbformat
import pytest

from study.remedies import normal_detector
from study.run import build_parser as study_parser
from tests.helpers import REPO, run_script

NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))


def parameters_cell(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    return cells[0] if cells else None


def fake_report(study_dir):
    """A small report.json of the study's shape: rows, remedies with families, sets, darkness."""
    def cell(ap, delta=None):
        out = {"AP": ap, "AP50": ap + 0.1, "AP_ci": [ap - 0.05, ap + 0.05]}
        if delta is not None:
            out["vs_none"] = {"AP": {"delta": delta, "ci": [delta - 0.04, delta + 0.04],
                                     "share_le_0": 0.2}}
        return out
    rows = {"none": {"normal": {"bbox": cell(0.4)}, "gamma_noise": {"bbox": cell(0.15, 0.0)}},
            "finetune": {"normal": {"bbox": cell(0.3, -0.1)}, "gamma_noise": {"bbox": cell(0.33, 0.18)}},
            "gamma": {"gamma_noise": {"bbox": cell(0.14, -0.01)}}}
    curve = {"P": 0.4, "levels": {"2.0": 0.2, "5.0": 0.05}, "mPC": 0.125, "rPC": 0.3125, "EV50": 2.0}
    report = {"rows": rows,
              "remedies": [{"name": "none", "family": "baseline"},
                           {"name": "finetune", "family": "fine-tuning"},
                           {"name": "gamma", "family": "classical enhancement"}],
              "test_sets": [{"name": "normal", "role": "column"}, {"name": "gamma_noise", "role": "column"},
                            {"name": "physics_ev2", "role": "level"}],
              "darkness": {"physics": {"none": curve, "finetune": dict(curve, P=0.3)}}}
    with open(os.path.join(study_dir, "report.json"), "w") as f:
        json.dump(report, f)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """What a study leaves where notebooks look: its detector (a toy one, one epoch, trained by
    the script the study runs, into the study's folder for it) and its report.json."""
    out = tmp_path_factory.mktemp("study")
    trained = run_script("mask_rcnn/train.py", "--checkpoint_dir", out / "mask_rcnn" / "normal",
                         "--epochs", 1, "--eval_every", 0, "--device", "cpu", "--seed", 0)
    assert trained.returncode == 0, trained.stderr[-2000:]
    fake_report(out)
    return out


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5


def test_notebooks_look_where_the_study_writes():
    """The parameters cell's STUDY_DIR is make demo's folder, and notebook 02's detector is the
    file the study's `none` remedy trains (the path that once differed)."""
    default = study_parser().parse_args([]).output_dir
    for path in (p for p in NOTEBOOKS if os.path.basename(p)[:2] in ("02", "03", "04", "05")):
        cell = parameters_cell(nbformat.read(path, as_version=4))
        assert cell is not None, path
        scope = {}
        exec(cell.source, scope)  # noqa: S102 - the notebook's own three lines
        assert os.path.abspath(scope["STUDY_DIR"]) == os.path.abspath(default), path
    notebook = nbformat.read(os.path.join(REPO, "notebooks", "02_mask_predictions.ipynb"), 4)
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    study = types.SimpleNamespace(path=lambda *parts: os.path.join("STUDY", *parts))
    assert normal_detector(study) == os.path.join("STUDY", "mask_rcnn", "normal", "last.pth")
    assert 'os.path.join(STUDY_DIR, "mask_rcnn", "normal", "last.pth")' in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, study_dir, monkeypatch):
    for name in ("LLVISION_DETECTOR", "LLVISION_DIFFUSION", "LLVISION_GENISP"):
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(path, as_version=4)
    cell = parameters_cell(notebook)
    if cell is not None:  # as papermill does: the study to read is this test's
        cell.source += f"\nSTUDY_DIR = {str(study_dir)!r}"
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "each notebook shows at least one figure"
    text = "".join(o.get("text", "") for o in outputs)
    if os.path.basename(path).startswith("02"):
        assert f"detector: {os.path.relpath(study_dir, REPO)}/mask_rcnn/normal/last.pth" in text
    if os.path.basename(path).startswith("05"):
        assert "remedies: none, finetune, gamma" in text
        assert "test sets: normal, gamma_noise\n" in text
        assert "finetune  AP 0.330 [0.28, 0.38]  vs none +0.180 [0.14, 0.22]" in text
        assert len(images) == 2  # the comparison and the darkness curves
