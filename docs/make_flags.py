"""Write docs/flags.md from the scripts' own parsers: every flag of every script, its aliases, its
default and its help text. `python docs/make_flags.py` rewrites the page; `--check` exits 1 when the
page differs from the parsers (tests/docs/test_docs.py runs the same comparison)."""
import argparse
import glob
import importlib
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from torch_utils_lib.toolkit.atomic_io import atomic_write_text  # noqa: E402
from torch_utils_lib.toolkit.errors import run_main  # noqa: E402

FOLDERS = ("dataset", "mask_rcnn", "diffusion_model", "genisp", "enhancer", "study", "bench")
PAGE = os.path.join(REPO, "docs", "flags.md")
HEADER = """# Flags of every script

What this page is for: every flag of every script, with its default, in one place. It is generated
from the parsers by `python docs/make_flags.py` (do not edit it by hand); `tests/docs/test_docs.py`
fails when it differs from them. A flag means the same in every script that takes it; the original
project's names still parse as aliases. Paths are shown relative to the repository root; a script
resolves its default paths from its own location, so defaults work from any folder.
"""


def script_paths():
    """Every script (a module with a `__main__` block) of the script folders, sorted."""
    found = []
    for folder in FOLDERS:
        for path in sorted(glob.glob(os.path.join(REPO, folder, "*.py"))):
            with open(path) as f:
                if 'if __name__ == "__main__"' in f.read():
                    found.append(os.path.relpath(path, REPO))
    return found


def build_parser(script):
    """The argparse parser of `script` (a path relative to the repository root)."""
    module = importlib.import_module(script[:-3].replace(os.sep, "."))
    return module.build_parser()


def _shown(value):
    """A default as the page shows it: repository paths relative, lists space-separated."""
    if value is None or value is argparse.SUPPRESS:
        return "-"
    if isinstance(value, (list, tuple)):
        return " ".join(_shown(v) for v in value) or "(none)"
    if isinstance(value, str) and os.path.isabs(value) and value.startswith(REPO + os.sep):
        return os.path.relpath(value, REPO)
    return str(value)


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def flag_rows(parser):
    """[(names, default, help)] of a parser's options, `--help` left out."""
    # the plain formatter: a parser's ArgumentDefaultsHelpFormatter would repeat the default column
    formatter = argparse.HelpFormatter(parser.prog)
    rows = []
    for action in parser._actions:
        if action.help is argparse.SUPPRESS:  # a flag kept out of --help is internal
            continue
        names = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        if not names and action.option_strings:
            continue
        if not action.option_strings:  # a positional argument
            names = [action.metavar or action.dest]
        text = formatter._expand_help(action) if action.help else ""
        text = text.replace(REPO + os.sep, "")  # a help naming a default path: the page is portable
        if isinstance(action, argparse.BooleanOptionalAction):
            names = [n for n in names if not n.startswith("--no-")] + \
                    [n for n in names if n.startswith("--no-")]
        default = "required" if action.required else _shown(action.default)
        if action.nargs == "?" and action.const is not None and action.option_strings:
            default += f" (bare flag: {_shown(action.const)})"
        rows.append((names, default, text))
    return rows


def render():
    """The whole page, as text."""
    parts = [HEADER]
    for script in script_paths():
        parser = build_parser(script)
        summary = (parser.description or "").strip().split("\n\n")[0]
        parts.append(f"\n## `{script}`\n\n{' '.join(summary.split())}\n\n"
                     "| flag (aliases) | default | meaning |\n|---|---|---|\n")
        for names, default, text in flag_rows(parser):
            flag = f"`{names[0]}`" + (" (" + ", ".join(f"`{n}`" for n in names[1:]) + ")"
                                      if names[1:] else "")
            parts.append(f"| {flag} | {_cell(default)} | {_cell(text)} |\n")
    return "".join(parts)


def build_cli():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if docs/flags.md is not current")
    return p


def main():
    args = build_cli().parse_args()
    text = render()
    if args.check:
        with open(PAGE) as f:
            current = f.read() == text
        print("docs/flags.md is " + ("current" if current else "out of date: run "
                                      "python docs/make_flags.py"))
        sys.exit(0 if current else 1)
    atomic_write_text(PAGE, text)
    print(f"wrote {os.path.relpath(PAGE)}")


if __name__ == "__main__":
    run_main(main)
