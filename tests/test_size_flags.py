"""Every size-like flag of every script is bounded to what can run (issue 32): a value past its
range stops at parse time with exit 2 and one `error:` line naming the flag, before torch loads
or any file is read; the range's own ends parse."""
import importlib

import pytest

from tests.helpers import assert_user_error, run_script

# (script, flag values past the range, the range's ends that parse)
CASES = [
    ("mask_rcnn/train.py", ["--batch_size", "1025"], ["--batch_size", "1024"]),
    ("mask_rcnn/train.py", ["--trainable_backbone_layers", "6"], ["--trainable_backbone_layers", "5"]),
    ("mask_rcnn/train.py", ["--workers", "65"], ["--workers", "64"]),
    ("mask_rcnn/inference.py", ["--batch_size", "0"], ["--batch_size", "1"]),
    ("mask_rcnn/evaluate.py", ["--count", "65"], ["--count", "64"]),
    ("mask_rcnn/evaluate.py", ["--batch_size", "1025"], ["--batch_size", "1024"]),
    ("diffusion_model/train.py", ["--image_size", "4"], ["--image_size", "8"]),
    ("diffusion_model/train.py", ["--image_size", "2049"], ["--image_size", "2048"]),
    ("diffusion_model/train.py", ["--dim", "1026"], ["--dim", "1024"]),
    ("diffusion_model/train.py", ["--dim_mults", "1,1,1,1,1,1,1,1,1"], ["--dim_mults", "1,1,1,1,1,1,1,1"]),
    ("diffusion_model/train.py", ["--num_blocks", "17"], ["--num_blocks", "16"]),
    ("diffusion_model/train.py", ["--timesteps", "10001"], ["--timesteps", "10000"]),
    ("diffusion_model/train.py", ["--sample_steps", "10001"], ["--sample_steps", "1"]),
    ("diffusion_model/train.py", ["--batch_size", "1025"], ["--batch_size", "1024"]),
    ("diffusion_model/inference.py", ["--steps", "10001"], ["--steps", "10000"]),
    ("diffusion_model/inference.py", ["--count", "65"], ["--count", "0"]),
    ("diffusion_model/inference.py", ["--batch_size", "1025"], ["--batch_size", "1024"]),
    ("diffusion_model/evaluate.py", ["--batch_size", "0"], ["--batch_size", "1"]),
    ("genisp/train.py", ["--resize", "16", "16"], ["--resize", "32", "32"]),
    ("genisp/train.py", ["--resize", "4097", "800"], ["--resize", "0", "0"]),
    ("genisp/train.py", ["--parameter_size", "4"], ["--parameter_size", "8"]),
    ("genisp/train.py", ["--batch_size", "1025"], ["--batch_size", "1024"]),
    ("genisp/inference.py", ["--resize", "1333", "8"], ["--resize", "4096", "4096"]),
    ("genisp/inference.py", ["--batch_size", "1025"], ["--batch_size", "1024"]),
    ("genisp/evaluate.py", ["--resize", "10", "10"], ["--resize", "1333", "800"]),
    ("genisp/evaluate.py", ["--batch_size", "0"], ["--batch_size", "1"]),
    ("study/run.py", ["--batch_size", "1025"], ["--batch_size", "1024"]),
    ("study/run.py", ["--nproc_per_node", "65"], ["--nproc_per_node", "64"]),
    ("study/run.py", ["--count", "65"], ["--count", "64"]),
    ("study/run.py", ["--workers", "0"], ["--workers", "1"]),
    ("study/run.py", ["--min_size", "31"], ["--min_size", "32"]),
    ("study/run.py", ["--diffusion_image_size", "4"], ["--diffusion_image_size", "0"]),
    ("study/run.py", ["--diffusion_steps", "0"], ["--diffusion_steps", "10000"]),
    ("study/run.py", ["--diffusion_dim", "1026"], ["--diffusion_dim", "2"]),
    ("study/run.py", ["--genisp_resize", "0", "5000"], ["--genisp_resize", "1333", "800"]),
    ("study/run.py", ["--genisp_parameter_size", "1025"], ["--genisp_parameter_size", "1024"]),
    ("study/run.py", ["--enhancer_parameter_size", "16"], ["--enhancer_parameter_size", "32"]),
    ("dataset/make_sample.py", ["--size", "4097"], ["--size", "4096"]),
    ("dataset/make_sample.py", ["--train", "0"], ["--train", "100000"]),
    ("dataset/make_sample.py", ["--max_objects", "33"], ["--max_objects", "32"]),
    ("dataset/data_preprocessing.py", ["--workers", "65"], ["--workers", "64"]),
    ("enhancer/train.py", ["--batch_size", "1025"], ["--batch_size", "1024"]),
    ("enhancer/evaluate.py", ["--batch_size", "0"], ["--batch_size", "1"]),
]


@pytest.mark.parametrize("script,bad,edge", CASES, ids=[f"{s} {b[0]} {b[-1]}" for s, b, _ in CASES])
def test_a_size_past_its_range_is_one_line_at_parse_time(script, bad, edge):
    result = run_script(script, *bad)
    assert result.returncode == 2, result.stderr
    assert_user_error(result, f"{bad[0]} ", "must be")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    parser = importlib.import_module(script[:-3].replace("/", ".")).build_parser()
    args = parser.parse_args(edge)
    value = getattr(args, edge[0][2:])
    if edge[0] == "--dim_mults":
        assert value == (1,) * 8
    else:
        assert (list(value) if isinstance(value, list) else [value]) == [int(v) for v in edge[1:]]
