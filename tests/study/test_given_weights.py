"""--zero_dce_weights: the zero_dce row scores the given weights (the Zero-DCE++ release's state
dict as it is) instead of training, and the report names the file and its sha256."""
import hashlib

import pytest
import torch

from enhancer.zero_dce import ZeroDCE
from tests.enhancer.test_release_weights import release_layout
from tests.study.test_needs import plan, small_set, with_image  # noqa: F401 (fixture)
from study.report import remedy_record
from torch_utils_lib.toolkit.errors import UserError


def test_given_release_weights_replace_training(small_set, tmp_path):
    data, train, val = small_set
    release = tmp_path / "Epoch99.pth"
    torch.save(release_layout(ZeroDCE()), release)
    digest = hashlib.sha256(release.read_bytes()).hexdigest()
    tiny = with_image(train, data, tmp_path / "tiny.json", 8)  # too small to train Zero-DCE++ on
    study = plan(data, tiny, val, tmp_path / "s1", "none", "zero_dce", "--zero_dce_weights", release)
    zero_dce = next(r for r in study.remedies if r.name == "zero_dce")
    assert not zero_dce.trains(study)  # its training step is skipped, so is its train-set need
    assert zero_dce.trained_weights(study) == str(release)
    record = remedy_record(study, zero_dce)
    assert record["weights"] == str(release)
    assert f"given weights {release} (sha256 {digest}), no training" in record["settings"]
    assert record["flags"]["--zero_dce_weights"] == str(release)
    trained = plan(data, train, val, tmp_path / "s2", "none", "zero_dce")
    assert next(r for r in trained.remedies if r.name == "zero_dce").trains(trained)
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s2").exists()


def test_bad_given_weights_are_refused_before_the_first_step(small_set, tmp_path):
    data, train, val = small_set
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(UserError, match=r"other.pth: a state dict that is neither"):
        plan(data, train, val, tmp_path / "s1", "none", "zero_dce", "--zero_dce_weights", other)
    with pytest.raises(UserError, match=r"missing.pth"):
        plan(data, train, val, tmp_path / "s2", "none", "zero_dce", "--zero_dce_weights",
             tmp_path / "missing.pth")
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s2").exists()
