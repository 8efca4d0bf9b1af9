"""Names the user gives that become folders, files or table rows, and output names made from inputs.

A NAME in `--flag NAME=VALUE` ends up in a path (OUTPUT_DIR/<name>/, detections_<name>_bbox.json)
and in a table cell, so it must be one safe folder name: letters, digits, '_', '.', '-', starting
with a letter, digit or '_' (no '..', no separator, no '|'). Two names, or two outputs made from two
input files, that differ only in case are one file on case-insensitive file systems (macOS,
Windows), so they are compared case-folded. Torch-free.
"""
import os
import re

from torch_utils_lib.toolkit.errors import UserError

SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
SAFE_NAME_RULE = ("1 to 100 letters, digits, '_', '.' or '-', starting with a letter, digit or "
                  "'_'")


def check_name(name, context):
    """`name` if it is a safe single folder name, else a UserError `<context>: ...` saying the rule.

    `context` names what the user typed, e.g. "--image_set a|b=DIR".
    """
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise UserError(f"{printable(context)}: the name {name!r} must be {SAFE_NAME_RULE}: it becomes a "
                        f"folder or file name and a table row")
    return name


def printable(text):
    """`text` for a one-line message: line breaks and other control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def name_key(name):
    """What two names are compared by: case-folded, as a case-insensitive file system does."""
    return name.casefold()


def parse_named_values(specs, flag, reserved=None, unnamed=None):
    """{name: value} of repeated `NAME=VALUE` flag values, every name safe (check_name) and unique.

    `reserved` maps names the script already uses to what uses them (e.g. {"checkpoint":
    "--weight_path"}); `unnamed(spec)` gives the name of a value without `NAME=` (None: `NAME=` is
    required). Names are unique case-insensitively, among themselves and against `reserved`; a
    repeated or reserved name is a UserError naming both values: no row silently replaces another.
    """
    taken = {name_key(name): (name, what) for name, what in (reserved or {}).items()}
    values = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            if unnamed is None:
                raise UserError(f"{flag} {printable(spec)}: expected NAME=VALUE")
            name, value = unnamed(spec), spec
        check_name(name, f"{flag} {spec}")
        if name_key(name) in taken:
            what = taken[name_key(name)][1]
            raise UserError(f"{flag} {printable(spec)}: the name {name!r} is already taken by "
                            f"{what}; give each its own NAME (names differing only in case are "
                            f"the same)")
        taken[name_key(name)] = (name, f"{flag} {printable(spec)}")
        values[name] = value
    return values


def output_names(inputs, outputs_of, source):
    """{input name: [output names]} for `outputs_of(input name)`, refused when two inputs share one.

    Outputs named from inputs collide when the names differ only in extension (x.png, x.jpg) or
    case (x.dng, x.DNG), or when one input's output is another's (a.dng's a_detections.png and
    a_detections.dng's a_detections.png). Output names compare after normalising the path and
    folding case; the UserError names `source` (the input folder or list), both inputs and the
    output, before anything is written. Inputs whose names normalise to the same path are one file.
    """
    outputs, owner = {}, {}
    for name in inputs:
        outputs[name] = list(outputs_of(name))
        for output in outputs[name]:
            key = name_key(os.path.normpath(output))
            first = owner.setdefault(key, name)
            if os.path.normpath(first) != os.path.normpath(name):
                raise UserError(f"{printable(source)}: {printable(first)} and {printable(name)} "
                                f"would both be written as {printable(output)} "
                                f"(outputs are named after the input; names differing only in "
                                f"extension or case give one file): rename one of them")
    return outputs
