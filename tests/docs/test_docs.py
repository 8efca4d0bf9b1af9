"""The documentation tells the truth about the scripts: docs/flags.md is what the parsers say, and
every command in README.md and docs/*.md names a script that exists and only flags it has."""
import glob
import importlib.util
import os
import re

import pytest

from tests.helpers import REPO

# study/score.py is documented in the README ahead of its branch's merge: its commands are checked
# once the script is in the tree.
def load_make_flags():
    spec = importlib.util.spec_from_file_location("make_flags", os.path.join(REPO, "docs",
                                                                            "make_flags.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documents():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


def commands(text):
    """(script, [--flags]) of every `python SCRIPT.py ...` or `torchrun ... SCRIPT.py ...` line of
    the text's code blocks, continuation lines joined (`python -m ...` runs a module: not a script)."""
    found = []
    blocks = text.split("```")[1::2]  # the fenced blocks: every other piece between fences
    for block in (b.split("\n", 1)[1] for b in blocks if b.startswith(("bash\n", "sh\n", "\n"))):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0]
            for match in re.finditer(r"(?:python3?\s+|torchrun\s[^;&|]*?)([\w/]+\.py)([^;&|]*)", line):
                script, rest = match.groups()
                found.append((script, re.findall(r"(?<![\w-])(--[\w-]+)", rest)))
    return found


def test_the_command_parser_finds_scripts_and_flags():
    text = ("```bash\n# a comment --not_a_flag\npython a/b.py --x 1 \\\n    --y_z 2  # --c\n"
            "torchrun --nproc_per_node 4 c/d.py --e\npython -m pytest -q tests/x.py\n```\n")
    assert commands(text) == [("a/b.py", ["--x", "--y_z"]), ("c/d.py", ["--e"])]


def test_flags_page_equals_the_parsers():
    make_flags = load_make_flags()
    with open(make_flags.PAGE) as f:
        page = f.read()
    assert page == make_flags.render(), "docs/flags.md is stale: run python docs/make_flags.py"
    # it holds a real row of a real script, default included
    assert "| `--bootstrap` | 1000 |" in page
    assert "## `mask_rcnn/train.py`" in page
    assert REPO not in page  # the same page on every checkout


@pytest.mark.parametrize("document", documents(), ids=lambda p: os.path.relpath(p, REPO))
def test_every_documented_command_names_flags_its_script_has(document):
    make_flags = load_make_flags()
    with open(document) as f:
        found = commands(f.read())
    problems = []
    for script, flags in found:
        path = os.path.join(REPO, script)
        if not os.path.isfile(path):
            problems.append(f"{script}: no such script")
            continue
        if script.startswith("docs/"):
            continue
        parser = make_flags.build_parser(script)
        known = {o for action in parser._actions for o in action.option_strings}
        problems += [f"{script} {flag}: no such flag" for flag in flags if flag not in known]
    assert problems == []
    if os.path.basename(document) == "README.md":
        assert len(found) >= 3


def test_every_script_help_starts_with_a_sentence_and_a_working_example():
    """`--help` opens with one sentence of what the script does, then an example command of this
    very script whose flags it has (commands of other scripts may follow)."""
    make_flags = load_make_flags()
    problems = []
    for script in make_flags.script_paths():
        parser = make_flags.build_parser(script)
        help_text = parser.format_help()
        description = help_text.split("\n\n", 1)[1]  # what follows the usage block
        paragraphs = description.split("\n\n")
        summary = " ".join(paragraphs[0].split())
        if not summary.endswith(".") or re.search(r"\. [A-Z]", summary):
            problems.append(f"{script}: the first paragraph is not one sentence: {summary!r}")
        # the example: in the second paragraph (after an optional "Example:" line)
        found = commands("```bash\n" + "\n".join(paragraphs[1:2]) + "\n```")
        own = [flags for name, flags in found if name == script]
        if not own:
            problems.append(f"{script}: no example of itself right after the first sentence")
            continue
        known = {o for action in parser._actions for o in action.option_strings}
        problems += [f"{script} {flag}: the example's flag does not exist" for flag in own[0]
                     if flag not in known]
    assert problems == []
