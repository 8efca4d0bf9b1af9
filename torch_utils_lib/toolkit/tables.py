"""Markdown tables of results: one row per model (or image set), one column per statistic."""


def markdown_table(rows, first_column="model", columns=None, formats=None, missing="-"):
    """A Markdown table of {row name: {column: value}}.

    columns: which columns and in what order (default: every column, in first-seen order);
    formats: {column: format spec} for numbers (default ".3f" for floats); a value a row lacks
    (or None) prints as `missing`. A `|` in any cell or header is escaped (`\\|`) and a line break
    becomes a space, so every row has as many cells as the header, whatever the names hold.
    """
    if columns is None:
        columns = []
        for row in rows.values():
            columns += [c for c in row if c not in columns]
    formats = formats or {}

    def cell(value, column):
        if value is None:
            return missing
        if isinstance(value, float):
            return format(value, formats.get(column, ".3f"))
        return format(value, formats[column]) if column in formats else str(value)

    def line(cells):
        return "| " + " | ".join(escape_cell(c) for c in cells) + " |"

    lines = [line([first_column, *columns]), "|" + "---|" * (len(columns) + 1)]
    for name, row in rows.items():
        lines.append(line([name] + [cell(row.get(c), c) for c in columns]))
    return "\n".join(lines)


def escape_cell(text):
    """`text` as one Markdown table cell: `|` escaped, line breaks as spaces."""
    return " ".join(str(text).replace("|", "\\|").splitlines())
