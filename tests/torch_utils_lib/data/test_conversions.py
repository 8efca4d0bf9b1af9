"""One to_tensor, one to_uint8, one Markdown table writer, one detection overlay, one predict."""
import re

import numpy as np
import torch

from torch_utils_lib.models.detectors import build_detector, predict_images
from torch_utils_lib.toolkit.tables import markdown_table
from torch_utils_lib.data.transforms import to_tensor, to_uint8
from torch_utils_lib.plots.drawing import draw_detections


def test_to_tensor_and_back_are_exact():
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 3
    tensor = to_tensor(rgb)
    assert tensor.shape == (3, 4, 5) and tensor.dtype == torch.float32
    assert float(tensor[2, 3, 4]) == np.float32(rgb[3, 4, 2]) / np.float32(255)
    assert np.array_equal(to_uint8(tensor), rgb)
    assert np.array_equal(to_uint8(tensor * 2 - 1, (-1, 1)), rgb)
    clipped = to_uint8(torch.tensor([-0.5, 0.5, 2.0]).view(3, 1, 1))
    assert clipped.ravel().tolist() == [0, 128, 255]


def test_markdown_table():
    rows = {"a": {"AP": 0.51234, "n": 3}, "b": {"AP": None, "extra": "x"}}
    assert markdown_table(rows) == ("| model | AP | n | extra |\n|---|---|---|---|\n"
                                    "| a | 0.512 | 3 | - |\n| b | - | - | x |")
    assert markdown_table(rows, "set", columns=["AP"], formats={"AP": ".1f"}) == (
        "| set | AP |\n|---|---|\n| a | 0.5 |\n| b | - |")


def unescaped_cells(line):
    """The cells of a Markdown table line, split at `|` not preceded by a backslash."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_markdown_table_escapes_pipes_and_line_breaks_in_every_cell():
    rows = {"checkpoint | a": {"bbox | AP": 0.5, "note": "x|y\nz"}, "b": {"bbox | AP": 1.0}}
    table = markdown_table(rows, first_column="model | set")
    lines = table.splitlines()
    assert lines[0] == "| model \\| set | bbox \\| AP | note |"
    assert lines[2] == "| checkpoint \\| a | 0.500 | x\\|y z |"
    assert [len(unescaped_cells(line)) for line in lines if not line.startswith("|---")] == [3, 3, 3]
    assert [c.replace("\\|", "|") for c in unescaped_cells(lines[2])] == ["checkpoint | a", "0.500",
                                                                         "x|y z"]


def test_predict_and_draw_detections():
    torch.manual_seed(0)
    model = build_detector("maskrcnn_resnet18_fpn", 3, "none", min_size=64, max_size=64).eval()
    image = np.full((48, 64, 3), 100, np.uint8)
    output = predict_images(model, [image], "cpu")[0]
    assert {"boxes", "labels", "scores", "masks"} <= set(output)
    assert all(v.device.type == "cpu" for v in output.values())
    detections = {"boxes": torch.tensor([[2.0, 2.0, 30.0, 20.0], [0.0, 0.0, 5.0, 5.0]]),
                  "labels": torch.tensor([1, 2]), "scores": torch.tensor([0.9, 0.1]),
                  "masks": torch.zeros(2, 1, 48, 64)}
    drawn = draw_detections(image, detections, ["bg", "square", "disc"], score_threshold=0.5)
    only_first = draw_detections(image, {k: v[:1] for k, v in detections.items()},
                                 ["bg", "square", "disc"])
    assert drawn.shape[2] == 3 and np.array_equal(drawn, only_first)
    assert not np.array_equal(drawn, draw_detections(image, detections, ["bg", "square", "disc"]))
