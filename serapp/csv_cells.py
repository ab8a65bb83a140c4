"""The one rule for every CSV serapp writes (answer files, `serapp predict --format csv`, the
file view's export, a recording's timeline).

A text cell a spreadsheet would run as a formula (starting with = + - @, tab or CR) gets a
leading apostrophe, as does a cell that already starts with one, so reading strips exactly one
and gives back what was written. A row holding a carriage return is written with every cell
quoted (the csv module quotes only what its line terminator holds), so a CR inside a name
never splits the row.
"""

from __future__ import annotations

import csv

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(text: str) -> str:
    if _is_number(text):  # "-0.250" is a number a spreadsheet reads as one, never a formula
        return text
    return "'" + text if text.startswith(FORMULA_TRIGGERS + ("'",)) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text[:1] in "+-0123456789." and text.lower().lstrip("+-") not in ("inf", "nan")


def unescape_cell(text: str) -> str:
    return text.removeprefix("'")


def escaped(row) -> list:
    """The row as written: text cells escaped, numbers as they are."""
    return [escape_cell(c) if isinstance(c, str) else c for c in row]


class CsvWriter:
    """csv.writer with the rule above, lines ending in "\\n"."""

    def __init__(self, out):
        self._plain = csv.writer(out, lineterminator="\n")
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row) -> None:
        row = escaped(row)
        carriage = any(isinstance(c, str) and "\r" in c for c in row)
        (self._quoted if carriage else self._plain).writerow(row)

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
