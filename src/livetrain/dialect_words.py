"""How an uploaded file was read, in words: the dataset page and `livetrain datasets upload` say it the same way.

Works on the JSON the server returns (`schema.dialect`, `schema.dropped_rows`), so it imports
nothing: the terminal client uses it without loading pandas, Flask or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FORMATS = {"csv": "CSV", "xlsx": "Excel workbook (.xlsx)", "parquet": "Parquet"}
CHARACTERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", ".": "point", '"': "double quote",
              "'": "single quote", " ": "space", "\u00a0": "no-break space", "\u202f": "narrow no-break space"}
LINE_ENDINGS = {"\n": "LF (Unix)", "\r\n": "CRLF (Windows)", "\r": "CR (old Mac)"}
DROPPED = {"missing_target": "without a target value"}


@dataclass(frozen=True)
class Fact:
    """One line of how a file was read: `key` is the upload field that sets it (or a dialect field)."""

    key: str
    label: str
    value: str
    given: bool  # set by the uploader; otherwise detected


def _character(char: str | None, name: str | None = None) -> str:
    if char is None:
        return "—"
    if char == "\t":
        return "tab"
    word = name or CHARACTERS.get(char)
    return f"{word} ({char!r})" if word and word != char else repr(char)


def dialect_facts(dialect: dict[str, Any] | None) -> list[Fact]:
    """The format, encoding, delimiter, quote, numbers, line endings or sheet of a file, each marked given or
    detected; an empty list for a dataset stored before dialects were recorded."""
    if not dialect:
        return []
    given = set(dialect.get("given") or [])
    fmt = dialect.get("format") or "csv"
    form = FORMATS.get(fmt, fmt)
    if fmt == "csv" and dialect.get("delimiter") == "\t":
        form = "TSV (tab-separated)"
    if dialect.get("compression"):
        form += f", {dialect['compression']}-compressed"
    facts = [Fact("format", "Format", form, "format" in given)]
    if fmt == "xlsx":
        facts.append(Fact("sheet", "Sheet", dialect.get("sheet") or "the first", "sheet" in given))
    if fmt != "csv":
        return facts
    encoding = str(dialect.get("encoding") or "—")
    if dialect.get("bom"):
        encoding += " with byte-order mark"
    thousands = dialect.get("thousands") or ""
    facts += [
        Fact("encoding", "Encoding", encoding, "encoding" in given),
        Fact("delimiter", "Delimiter", _character(dialect.get("delimiter"), dialect.get("delimiter_name")),
             "delimiter" in given),
        Fact("quote", "Quote", _character(dialect.get("quote")), "quote" in given),
        Fact("decimal", "Decimal mark", _character(dialect.get("decimal") or "."), "decimal" in given),
        Fact("thousands", "Thousands separator",
             _character(thousands, dialect.get("thousands_name")) if thousands else "none",
             "thousands" in given),
        Fact("line_ending", "Line endings", LINE_ENDINGS.get(dialect.get("line_ending") or "",
                                                             dialect.get("line_ending_name") or "—"), False),
    ]
    return facts


def dropped_text(dropped_rows: dict[str, int] | None) -> str | None:
    """"3 rows without a target value": the rows of the file left out, and why; None when none were."""
    parts = [f"{n:,} row{'' if n == 1 else 's'} {DROPPED.get(why, why.replace('_', ' '))}"
             for why, n in (dropped_rows or {}).items() if n]
    return "; ".join(parts) or None
