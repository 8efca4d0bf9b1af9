"""Names that become folders and rows are safe and unique; outputs named from inputs never collide."""
import os

import pytest

from torch_utils_lib.toolkit.errors import UserError
from torch_utils_lib.toolkit.names import check_name, output_names, parse_named_values, printable


@pytest.mark.parametrize("name", ["a", "normal", "gamma.physics_ev4", "lis-2", "_x", "A1", "9"])
def test_safe_names_pass(name):
    assert check_name(name, "--flag x") == name


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "a|b", "a b", ".hidden",
                                  "-x", "a=b", "é", "x" * 101, "a\nb", "a,b"])
def test_unsafe_names_are_refused_with_the_rule(name):
    with pytest.raises(UserError, match="must be 1 to 100 letters, digits") as error:
        check_name(name, f"--image_set {name}=DIR")
    assert str(error.value).startswith(f"--image_set {printable(name)}=DIR: the name {name!r}")
    assert "\n" not in str(error.value)  # one line, whatever the name holds


@pytest.mark.parametrize("specs, reserved, clash", [
    (["a=x", "b=y"], {}, None),
    (["a=x", "a=y"], {}, "--compare a=x"),
    (["A=x", "a=y"], {}, "--compare A=x"),  # one folder on a case-insensitive file system
    (["checkpoint=x"], {"checkpoint": "the row of --weight_path"}, "the row of --weight_path"),
    (["Checkpoint=x"], {"checkpoint": "the row of --weight_path"}, "the row of --weight_path"),
])
def test_named_values_are_unique_also_against_reserved_names(specs, reserved, clash):
    if clash is None:
        assert parse_named_values(specs, "--compare", reserved) == {"a": "x", "b": "y"}
        return
    with pytest.raises(UserError, match="is already taken by") as error:
        parse_named_values(specs, "--compare", reserved)
    assert str(error.value).startswith(f"--compare {specs[-1]}: the name")
    assert clash in str(error.value)


def test_values_without_a_name_use_the_given_rule_or_are_refused():
    stem = lambda path: os.path.splitext(os.path.basename(path))[0]  # noqa: E731
    assert parse_named_values(["runs/low/last.pth", "b=y.pth"], "--compare", unnamed=stem) == {
        "last": "runs/low/last.pth", "b": "y.pth"}
    with pytest.raises(UserError, match="the name 'my model' must be"):
        parse_named_values(["runs/my model.pth"], "--compare", unnamed=stem)
    with pytest.raises(UserError, match="--image_set DIR: expected NAME=VALUE"):
        parse_named_values(["DIR"], "--image_set")
    assert parse_named_values(["a=DIR,x=y.json"], "--image_set") == {"a": "DIR,x=y.json"}


def _pred(name):
    return [os.path.splitext(name)[0] + "_pred.png"]


def _genisp(name):
    stem = os.path.splitext(name)[0]
    return [stem + ".png", stem + "_detections.png", os.path.join("per_image", stem + ".json")]


@pytest.mark.parametrize("names, outputs_of, clash", [
    (["a.png", "b.jpg"], _pred, None),
    (["a.png", "a.jpg"], _pred, ("a.png", "a.jpg", "a_pred.png")),  # extensions differ
    (["x.dng", "x.DNG"], _genisp, ("x.dng", "x.DNG", "x.png")),  # case differs
    (["X.png", "x.png"], lambda n: [n], ("X.png", "x.png", "x.png")),  # diffusion keeps names
    (["a.dng", "a_detections.dng"], _genisp, ("a.dng", "a_detections.dng", "a_detections.png")),
    (["a.png", "./a.png", "a.png"], lambda n: [n], None),  # one file listed twice
    (["d1/x.png", "d2/x.png"], lambda n: [n], None),  # subfolders are kept
    (["d1/x.png", "d2/x.png"], lambda n: [os.path.basename(n)], ("d1/x.png", "d2/x.png", "x.png")),
])
def test_output_names_refuse_two_inputs_writing_one_file(names, outputs_of, clash):
    if clash is None:
        written = output_names(names, outputs_of, "in")
        assert written == {n: outputs_of(n) for n in names}
        return
    first, second, output = clash
    with pytest.raises(UserError) as error:
        output_names(names, outputs_of, "in")
    assert str(error.value) == (f"in: {first} and {second} would both be written as {output} "
                                f"(outputs are named after the input; names differing only in "
                                f"extension or case give one file): rename one of them")
