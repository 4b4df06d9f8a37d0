"""Reading the files people bring: CSV in any common dialect, TSV, gzip, Excel and Parquet.

`detect` looks at the start of a file and decides its format and, for text, its dialect:
encoding (charset-normalizer, with Windows-1252 preferred over Latin-1), delimiter and quote
(CleverCSV), line endings, and the decimal mark and thousands separator (from how the numbers
in the sample are written). Every choice can be overridden; the `Dialect` records which
were detected and which were given, and is shown with the dataset.

`read_table` then reads the whole file with pyarrow's multi-threaded CSV reader (or
openpyxl, or pyarrow's Parquet reader) straight from disk, so a file is never held in
memory as text. Columns written with thousands separators, percent signs or currency
symbols become numbers when every value in the column is written that way; `Table.formats`
says which, so values typed at predict time can be read the same way.

Every mistake a user can make with a file is a `ValidationError` whose message says what was
seen and which upload field fixes it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from livetrain.errors import ValidationError

SAMPLE_BYTES = 256 * 1024  # what detection looks at
DIALECT_SAMPLE_CHARS = 32 * 1024  # what CleverCSV scores (its cost grows quickly with length)
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
DELIMITER_WORDS = {v: k for k, v in DELIMITERS.items()} | {"\\t": "\t", "tsv": "\t", "csv": ","}
QUOTES = ('"', "'")
DECIMALS = (".", ",")
THOUSANDS = {",": "comma", ".": "dot", " ": "space", "'": "apostrophe", "\u00a0": "no-break space",
             "\u202f": "narrow no-break space"}
THOUSANDS_WORDS = {v: k for k, v in THOUSANDS.items()} | {"none": "", "": ""}
FORMATS = ("csv", "xlsx", "parquet")
CURRENCY = "$€£¥₹₽₩¢"
# pandas' default missing-value words, so a file reads as it did with pandas
NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
               "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


@dataclass
class Dialect:
    """How a file is written; what `read_table` needs and what the dataset shows."""

    format: str = "csv"  # csv | xlsx | parquet
    compression: str | None = None  # "gzip"
    encoding: str | None = "utf-8"
    bom: bool = False
    delimiter: str | None = ","
    quote: str | None = '"'
    decimal: str = "."
    thousands: str = ""  # "" when numbers are written without one
    line_ending: str | None = "\n"
    sheet: str | None = None
    given: list[str] = field(default_factory=list)  # the fields the uploader set; the rest were detected

    def to_dict(self) -> dict[str, Any]:
        """The dialect as the dataset shows it, with readable names for the invisible characters."""
        out = asdict(self)
        if self.format == "csv":
            out["delimiter_name"] = DELIMITERS.get(self.delimiter or "", self.delimiter)
            out["line_ending_name"] = {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}.get(self.line_ending or "")
            out["thousands_name"] = THOUSANDS.get(self.thousands, "none")
        out["detected"] = [k for k in ("encoding", "delimiter", "quote", "decimal", "thousands")
                           if self.format == "csv" and k not in self.given]
        return out


@dataclass
class Table:
    """A file read into a DataFrame, with how it was written."""

    frame: pd.DataFrame
    dialect: Dialect
    formats: dict[str, dict[str, Any]]  # column -> how its numbers were written, when not plainly


# ---------------------------------------------------------------------------- options


def parse_options(form: Mapping[str, Any]) -> dict[str, Any]:
    """The reading overrides of an upload form (`delimiter`, `decimal`, `thousands`, `quote`,
    `encoding`, `sheet`, `format`), checked; absent or empty fields are left to detection."""
    out: dict[str, Any] = {}

    def text(name: str) -> str | None:
        value = form.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValidationError(f"{name} must be text", code="bad_parameter", detail={"field": name})
        return value

    if (value := text("delimiter")) is not None:
        delimiter = DELIMITER_WORDS.get(value.lower(), value)
        if delimiter not in DELIMITERS:
            raise ValidationError(f"delimiter must be one of comma (,), semicolon (;), tab or pipe (|), not {value!r}",
                                  code="bad_parameter", detail={"field": "delimiter"})
        out["delimiter"] = delimiter
    if (value := text("decimal")) is not None:
        decimal = {"dot": ".", "point": ".", "comma": ","}.get(value.lower(), value)
        if decimal not in DECIMALS:
            raise ValidationError(f"decimal must be '.' or ',', not {value!r}", code="bad_parameter",
                                  detail={"field": "decimal"})
        out["decimal"] = decimal
    if "thousands" in form and form.get("thousands") is not None:
        value = form["thousands"]
        if not isinstance(value, str):
            raise ValidationError("thousands must be text", code="bad_parameter", detail={"field": "thousands"})
        thousands = THOUSANDS_WORDS.get(value.lower(), value)
        if thousands not in THOUSANDS and thousands != "":
            raise ValidationError("thousands must be one of ',', '.', ' ', \"'\" or none, not " + repr(value),
                                  code="bad_parameter", detail={"field": "thousands"})
        out["thousands"] = thousands
    if (value := text("quote")) is not None:
        if value not in QUOTES:
            raise ValidationError(f"quote must be '\"' or \"'\", not {value!r}", code="bad_parameter",
                                  detail={"field": "quote"})
        out["quote"] = value
    if (value := text("encoding")) is not None:
        try:
            out["encoding"] = codecs.lookup(value).name
        except LookupError:
            raise ValidationError(f"encoding {value!r} is not one this server knows; try utf-8, utf-16, "
                                  "cp1252 (Windows Western) or latin-1", code="bad_parameter",
                                  detail={"field": "encoding"}) from None
    if (value := text("sheet")) is not None:
        out["sheet"] = value
    if (value := text("format")) is not None:
        if value.lower() not in (*FORMATS, "tsv"):
            raise ValidationError(f"format must be one of csv, tsv, xlsx, parquet, not {value!r}",
                                  code="bad_parameter", detail={"field": "format"})
        out["format"] = value.lower()
    if "decimal" in out and out["decimal"] == out.get("delimiter"):
        raise ValidationError("decimal and delimiter cannot both be ','", code="bad_parameter",
                              detail={"field": "decimal"})
    if out.get("thousands") and out["thousands"] == out.get("decimal"):
        raise ValidationError("thousands and decimal cannot be the same character", code="bad_parameter",
                              detail={"field": "thousands"})
    return out


# ---------------------------------------------------------------------------- detecting


def _head(path: Path, compression: str | None, size: int = SAMPLE_BYTES) -> bytes:
    opener = gzip.open if compression == "gzip" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError) as exc:  # a broken gzip stream
        raise ValidationError(f"The file could not be decompressed: {exc}", code="malformed_file") from exc


def _format_of(path: Path, filename: str, start: bytes) -> tuple[str, str | None]:
    name = filename.lower()
    if start.startswith(b"PAR1"):
        return "parquet", None
    if start.startswith(b"PK\x03\x04"):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if any(n.startswith("xl/") for n in archive.namelist()):
                    return "xlsx", None
        raise ValidationError("The file is a ZIP archive but not an Excel workbook (.xlsx). Upload the CSV, "
                              ".xlsx or .parquet file itself.", code="unsupported_format")
    if start.startswith(b"\xd0\xcf\x11\xe0"):
        raise ValidationError("The file is an old Excel workbook (.xls). Save it as .xlsx or CSV and upload that.",
                              code="unsupported_format")
    if start.startswith(b"\x1f\x8b"):
        return "csv", "gzip"
    if name.endswith((".xlsx", ".parquet")):
        raise ValidationError(f"The file is named {filename!r} but its content is not that format.",
                              code="unsupported_format")
    return "csv", None


def _utf16_without_bom(sample: bytes) -> str | None:
    # ASCII-heavy UTF-16 text has a NUL in every other byte
    even, odd = sample[0:2000:2], sample[1:2000:2]
    if len(even) < 4:
        return None
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _valid_utf8(sample: bytes, complete: bool) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
        return True
    except UnicodeDecodeError:
        return False


def _encoding(sample: bytes, complete: bool) -> tuple[str, bool]:
    """(Python codec name, byte-order mark present)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8", True
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", True
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16, False
    if b"\x00" in sample:
        raise ValidationError("The file contains NUL bytes; it looks binary, not like a CSV text file. Upload a "
                              "CSV, TSV, .xlsx or .parquet file (or name its encoding in the field 'encoding').",
                              code="malformed_csv")
    if _valid_utf8(sample, complete):
        return "utf-8", False
    return _single_byte_encoding(sample), False


def _single_byte_encoding(sample: bytes) -> str:
    """Windows-1252 when it reads the text without mess (a spreadsheet on Windows writes it, and it has
    € ’ – where Latin-1 has invisible control characters); else charset-normalizer's best guess
    (cp1251 for Cyrillic, shift_jis, ...); else Latin-1, which takes any byte."""
    from charset_normalizer import from_bytes

    head = sample[:64 * 1024]
    if from_bytes(head, cp_isolation=["cp1252"]).best() is not None:
        return "cp1252"
    best = from_bytes(head).best()
    return codecs.lookup(best.encoding).name if best is not None else "latin-1"


def _line_ending(text: str) -> str:
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    return max((("\r\n", crlf), ("\n", lf), ("\r", cr)), key=lambda item: item[1])[0] if (crlf or cr or lf) else "\n"


def _complete_lines(text: str, complete: bool) -> str:
    if complete:
        return text
    cut = max(text.rfind("\n"), text.rfind("\r"))
    return text[:cut + 1] if cut > 0 else text


def _sniff(text: str) -> tuple[str, str]:
    """(delimiter, quote) of a sample, by CleverCSV's data-consistency measure; then by field counts."""
    import clevercsv

    sample = _complete_lines(text[:DIALECT_SAMPLE_CHARS], len(text) <= DIALECT_SAMPLE_CHARS)
    try:
        found = clevercsv.Detector().detect(sample, delimiters=list(DELIMITERS))
    except Exception:  # noqa: BLE001 - any failure of the detector leaves it to the fallback
        found = None
    quote = found.quotechar if found is not None and found.quotechar in QUOTES else '"'
    if found is not None and found.delimiter in DELIMITERS:
        return found.delimiter, quote
    return _most_consistent_delimiter(sample, quote), quote


def _most_consistent_delimiter(sample: str, quote: str) -> str:
    # No delimiter found (one column, or too little text): the one that splits every line into
    # the same number of fields greater than one, else a comma.
    best, best_score = ",", 0.0
    lines = [line for line in sample.splitlines() if line.strip()][:200]
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter, quotechar=quote)]
        if not counts:
            continue
        width, seen = Counter(counts).most_common(1)[0]
        score = seen / len(counts) if width > 1 else 0.0
        if score > best_score:
            best, best_score = delimiter, score
    return best


_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$|^[-+]?\d{1,3}(\.\d{3})+,\d+$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+$|^[-+]?\d{1,3}(,\d{3})+\.\d+$")


def _decimal_mark(rows: list[list[str]], delimiter: str) -> str:
    """',' when the sample's numbers are written with a decimal comma and none with a point."""
    if delimiter == ",":
        return "."  # an unquoted decimal comma cannot be told from a delimiter
    comma = point = 0
    for row in rows:
        for value in row:
            value = value.strip()
            if _DECIMAL_COMMA.match(value):
                comma += 1
            elif _DECIMAL_POINT.match(value) and not re.match(r"^[-+]?\d{1,3}(\.\d{3})+$", value):
                point += 1
    return "," if comma > 0 and comma >= 4 * point else "."


def _thousands_mark(rows: list[list[str]], decimal: str) -> str:
    marks: Counter[str] = Counter()
    for row in rows:
        for value in row:
            parsed = _number_pattern(value.strip(), decimal)
            if parsed is not None and parsed["thousands"]:
                marks[parsed["thousands"]] += 1
    return marks.most_common(1)[0][0] if marks else ""


def detect(path: Path, filename: str = "", overrides: Mapping[str, Any] | None = None) -> Dialect:
    """The format and dialect of the file at `path`; `overrides` (from `parse_options`) win."""
    overrides = dict(overrides or {})
    if path.stat().st_size == 0:
        raise ValidationError("The file is empty. Upload a CSV with a header row and data rows.",
                              code="empty_dataset", detail={"rows": 0})
    with open(path, "rb") as fh:
        start = fh.read(8)
    fmt, compression = _format_of(path, filename, start)
    requested = overrides.pop("format", None)
    if requested == "tsv":
        overrides.setdefault("delimiter", "\t")
    elif requested in ("xlsx", "parquet") and requested != fmt:
        raise ValidationError(f"format is {requested} but the file is not a {requested} file.",
                              code="unsupported_format", detail={"field": "format"})
    dialect = Dialect(format=fmt, compression=compression, given=sorted(overrides))
    if fmt != "csv":
        dialect.encoding = dialect.delimiter = dialect.quote = dialect.line_ending = None
        dialect.sheet = overrides.get("sheet")
        return dialect
    if filename.lower().removesuffix(".gz").endswith((".tsv", ".tab")):
        overrides.setdefault("delimiter", "\t")

    sample = _head(path, compression)
    complete = len(sample) < SAMPLE_BYTES
    if not sample.strip():
        raise ValidationError("The file is empty. Upload a CSV with a header row and data rows.",
                              code="empty_dataset", detail={"rows": 0})
    if "encoding" in overrides:
        dialect.encoding = overrides["encoding"]
        dialect.bom = sample.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    else:
        dialect.encoding, dialect.bom = _encoding(sample, complete)
    decoder = codecs.getincrementaldecoder(dialect.encoding)(errors="replace")
    text = decoder.decode(sample, final=complete).lstrip("\ufeff")
    if not text.strip():
        raise ValidationError("The file is empty. Upload a CSV with a header row and data rows.",
                              code="empty_dataset", detail={"rows": 0})
    dialect.line_ending = _line_ending(text)
    if "delimiter" in overrides:
        dialect.delimiter = overrides["delimiter"]
        dialect.quote = overrides.get("quote") or _sniff(text)[1]
    else:
        dialect.delimiter, dialect.quote = _sniff(text)
        dialect.quote = overrides.get("quote", dialect.quote)
    lines = _complete_lines(text, complete)
    rows = list(csv.reader(io.StringIO(lines[:DIALECT_SAMPLE_CHARS * 4], newline=""),
                           delimiter=dialect.delimiter, quotechar=dialect.quote))[1:2001]
    dialect.decimal = overrides.get("decimal") or _decimal_mark(rows, dialect.delimiter)
    dialect.thousands = overrides["thousands"] if "thousands" in overrides else _thousands_mark(rows, dialect.decimal)
    if dialect.decimal == dialect.delimiter:
        raise ValidationError(f"decimal and delimiter cannot both be {dialect.decimal!r}; set the other one "
                              "(fields 'delimiter' and 'decimal')", code="bad_parameter", detail={"field": "decimal"})
    return dialect


# ---------------------------------------------------------------------------- numbers as people write them


def _number_pattern(value: str, decimal: str) -> dict[str, Any] | None:
    """How a number is written ({"thousands", "percent", "currency"}), or None if it is not one."""
    match = _NUMBER[decimal].match(value)
    if match is None:
        return None
    thousands = match.group("sep") or ""
    return {"thousands": thousands, "percent": bool(match.group("pct")),
            "currency": (match.group("cur1") or match.group("cur2") or "")}


def _number_regex(decimal: str) -> re.Pattern:
    dec = re.escape(decimal)
    seps = "".join(re.escape(s) for s in THOUSANDS if s != decimal)
    return re.compile(
        rf"^\s*(?P<cur1>[{CURRENCY}])?\s*[-+−]?\s*(?:[{CURRENCY}]\s*)?"
        rf"(?:\d{{1,3}}(?:(?P<sep>[{seps}])\d{{3}})(?:(?P=sep)\d{{3}})*|\d+)"
        rf"(?:{dec}\d+)?\s*(?P<pct>%)?\s*(?P<cur2>[{CURRENCY}])?\s*$")


_NUMBER = {decimal: _number_regex(decimal) for decimal in DECIMALS}


def to_number(value: Any, fmt: Mapping[str, Any] | None) -> float:
    """A value as a float, read the way its column's numbers are written; NaN if it is not a number."""
    if value is None:
        return float("nan")
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_):
        return float(value)
    text = str(value).strip()
    if fmt:
        decimal = fmt.get("decimal", ".")
        for mark in (fmt.get("thousands") or "", " ", "\u00a0", "\u202f"):
            if mark:
                text = text.replace(mark, "")
        text = text.strip(CURRENCY + "% ").replace("−", "-")
        if decimal != ".":
            text = text.replace(decimal, ".")
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _formatted_numbers(frame: pd.DataFrame, decimal: str, thousands: str | None = None) -> dict[str, dict[str, Any]]:
    """Turn text columns whose every value is a number written one way into numbers; say which.

    `thousands`, when the uploader gave it, is the only separator taken ("" for none).
    """
    formats: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            if decimal != "." and pd.api.types.is_float_dtype(column):
                formats[name] = {"decimal": decimal, "thousands": "", "percent": False, "currency": ""}
            continue
        values = pd.unique(column.dropna())
        if len(values) == 0 or not all(isinstance(v, str) for v in values):
            continue
        patterns = []
        for value in values:  # most text columns fail on their first value
            pattern = _number_pattern(value, decimal)
            if pattern is None:
                break
            patterns.append(pattern)
        if len(patterns) < len(values):
            continue
        seps = {p["thousands"] for p in patterns} - {""}
        percent = {p["percent"] for p in patterns}
        currency = {p["currency"] for p in patterns}
        if len(seps) > 1 or len(percent) > 1 or len(currency - {""}) > 1:
            continue  # written in more than one way: leave it for the user to decide
        if thousands is not None and seps - {thousands}:
            continue  # a separator other than the one the uploader named
        fmt = {"decimal": decimal, "thousands": seps.pop() if seps else "", "percent": percent.pop(),
               "currency": (currency - {""}).pop() if currency - {""} else ""}
        lookup = {v: to_number(v, fmt) for v in values}
        frame[name] = column.map(lookup).astype("float64")
        formats[name] = fmt
    return formats


def describe_format(fmt: Mapping[str, Any]) -> str:
    """A note for the schema: how a column's numbers were written."""
    parts = []
    if fmt.get("thousands"):
        parts.append(f"thousands separator {THOUSANDS.get(fmt['thousands'], fmt['thousands'])!s} "
                     f"({fmt['thousands']!r})")
    if fmt.get("decimal", ".") != ".":
        parts.append("decimal comma")
    if fmt.get("percent"):
        parts.append("percent sign (58% is read as 58)")
    if fmt.get("currency"):
        parts.append(f"currency symbol {fmt['currency']}")
    return "numbers written with " + ", ".join(parts) if parts else "numbers"


# ---------------------------------------------------------------------------- reading


def read_table(path: Path, dialect: Dialect, *, max_rows: int | None = None) -> Table:
    """Read the whole file at `path` as `dialect` says; refuse empty, ragged, binary and oversized files."""
    if dialect.format == "parquet":
        frame = _read_parquet(path)
    elif dialect.format == "xlsx":
        frame = _read_xlsx(path, dialect)
    else:
        frame = _read_csv(path, dialect)
        _check_one_column(frame, dialect)
    frame = _checked(frame, max_rows)
    thousands = dialect.thousands if "thousands" in dialect.given else None
    formats = _formatted_numbers(frame, dialect.decimal, thousands)
    return Table(frame=frame, dialect=dialect, formats=formats)


def _check_one_column(frame: pd.DataFrame, dialect: Dialect) -> None:
    # One column whose name holds another separator: the file was split on the wrong character.
    if frame.shape[1] != 1:
        return
    header = str(frame.columns[0])
    others = [d for d in DELIMITERS if d != dialect.delimiter and len(header.split(d)) > 1]
    if others:
        how = "given" if "delimiter" in dialect.given else "detected"
        name = DELIMITERS.get(dialect.delimiter or ",", dialect.delimiter)
        raise ValidationError(f"The file was read as one column named {header[:80]!r} (fields separated by {name} "
                              f"{dialect.delimiter!r}, {how}). The header looks {DELIMITERS[others[0]]}-separated: "
                              f"send delimiter={others[0]!r} (the upload field 'delimiter').",
                              code="malformed_csv", detail={"field": "delimiter", "delimiter": dialect.delimiter})


def _checked(frame: pd.DataFrame, max_rows: int | None) -> pd.DataFrame:
    names = [str(c).strip() for c in frame.columns]
    if not names or not any(names):
        raise ValidationError("The file has no columns. Upload a CSV with a header row and data rows.",
                              code="empty_dataset", detail={"rows": 0})
    # a column without a name gets the one pandas (and earlier versions of livetrain) gave it
    names = [name or f"Unnamed: {i}" for i, name in enumerate(names)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError(f"The header names {', '.join(repr(d) for d in dupes)} more than once; "
                              "give every column a different name.",
                              code="duplicate_columns", detail={"columns": dupes})
    frame.columns = names
    if len(frame) == 0:
        raise ValidationError("The file has a header but no data rows.", code="empty_dataset", detail={"rows": 0})
    if max_rows is not None and len(frame) > max_rows:
        raise ValidationError(f"The file has more than {max_rows:,} rows, the limit on this server. "
                              "Upload a smaller sample.", code="too_many_rows", detail={"max_rows": max_rows})
    return frame


def _arrow_to_frame(table) -> pd.DataFrame:
    import pyarrow as pa

    # Dates and times stay text, as written: the schema step recognises them and keeps their format.
    for i, column in enumerate(table.schema):
        if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type) or pa.types.is_time(column.type):
            table = table.set_column(i, column.name, table.column(i).cast(pa.string()))
        elif pa.types.is_null(column.type):  # a column empty in every row
            table = table.set_column(i, column.name, table.column(i).cast(pa.float64()))
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
        raise ValidationError(f"The Parquet file could not be read: {exc}", code="malformed_file") from exc
    frame = _arrow_to_frame(table)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_xlsx(path: Path, dialect: Dialect) -> pd.DataFrame:
    import openpyxl

    fh = open(path, "rb")  # a file object: openpyxl judges a path by its name, and the spool's is .part
    try:
        book = openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged workbook raises many kinds
        fh.close()
        raise ValidationError(f"The Excel workbook could not be read: {exc}", code="malformed_file") from exc
    try:
        names = book.sheetnames
        sheet = dialect.sheet or names[0]
        if sheet not in names:
            raise ValidationError(f"The workbook has no sheet {sheet!r}; its sheets are: {', '.join(names)}.",
                                  code="unknown_sheet", detail={"field": "sheet", "sheets": names})
        dialect.sheet = sheet
        rows = book[sheet].iter_rows(values_only=True)
        header = next(rows, None)
        while header is not None and all(v is None for v in header):
            header = next(rows, None)
        if header is None:
            raise ValidationError(f"Sheet {sheet!r} is empty.", code="empty_dataset", detail={"rows": 0})
        width = max((i + 1 for i, v in enumerate(header) if v is not None), default=0)
        data = [list(r[:width]) + [None] * (width - len(r[:width])) for r in rows
                if any(v is not None for v in r[:width])]
    finally:
        book.close()
        fh.close()
    names_ = ["" if v is None else str(v) for v in header[:width]]
    missing = [i + 1 for i, n in enumerate(names_) if not n.strip()]
    if missing:
        raise ValidationError(f"Column {missing[0]} of sheet {sheet!r} has no name in the header row; name every "
                              "column.", code="malformed_file", detail={"column": missing[0]})
    frame = pd.DataFrame(data, columns=names_)
    for name in frame.columns:  # a column of numbers from Excel arrives as objects
        if frame[name].dtype == object:
            values = frame[name].dropna()
            if len(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                frame[name] = pd.to_numeric(frame[name])
            elif len(values) and all(hasattr(v, "isoformat") for v in values):
                frame[name] = frame[name].map(lambda v: None if v is None else v.isoformat())
    return frame


def _read_csv(path: Path, dialect: Dialect) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    invalid: list[Any] = []

    def on_invalid_row(row) -> str:
        invalid.append(row)
        return "error"

    source = pa.input_stream(str(path), compression=dialect.compression)
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(encoding=_arrow_encoding(dialect), block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter=dialect.delimiter, quote_char=dialect.quote or False,
                                              newlines_in_values=True, invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(decimal_point=dialect.decimal, null_values=NULL_VALUES,
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, dialect, str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"The file is not {dialect.encoding} text: {exc}. Name its encoding in the field "
                              "'encoding' (e.g. utf-8, utf-16, cp1252).", code="malformed_csv",
                              detail={"field": "encoding", "encoding": dialect.encoding}) from None
    finally:
        source.close()
    if table.num_rows and _unclosed_quote(path, dialect, table):
        raise ValidationError(f"A quote ({dialect.quote}) opened in the last row is never closed, so the rest of the "
                              "file would be read as one value. Close the quote, or set the upload field 'quote'.",
                              code="malformed_csv", detail={"field": "quote"})
    return _arrow_to_frame(table)


def _unclosed_quote(path: Path, dialect: Dialect, table) -> bool:
    # pyarrow takes an unterminated quote at the end of the file as a value running to the end;
    # such a value holds a line break and the file does not end with the quote character.
    import pyarrow as pa

    last = table.slice(table.num_rows - 1)
    multiline = any(pa.types.is_string(c.type) and isinstance(v := last.column(c.name)[0].as_py(), str)
                    and ("\n" in v or "\r" in v) for c in last.schema)
    if not multiline:
        return False
    tail = b""
    if dialect.compression:
        with gzip.open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                tail = (tail + chunk)[-64:]
    else:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 64))
            tail = fh.read()
    tail = tail.decode(dialect.encoding or "utf-8", errors="replace").rstrip("\r\n \x00")
    return not tail.endswith(dialect.quote or '"')


def _arrow_encoding(dialect: Dialect) -> str:
    # pyarrow reads UTF-8 itself (and drops a UTF-8 byte-order mark); others go through Python's codecs
    name = codecs.lookup(dialect.encoding or "utf-8").name
    return "utf8" if name == "utf-8" else name


def _csv_error(path: Path, dialect: Dialect, arrow_message: str) -> ValidationError:
    """The first row of a different width, with its line number, found again by Python's csv module."""
    opener = gzip.open if dialect.compression == "gzip" else open
    name = DELIMITERS.get(dialect.delimiter or ",", dialect.delimiter)
    how = "given" if "delimiter" in dialect.given else "detected"
    with opener(path, "rt", encoding=dialect.encoding, errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=dialect.delimiter or ",", quotechar=dialect.quote or '"')
        try:
            header = next(reader, None)
            if header and header[0].startswith("\ufeff"):
                header[0] = header[0][1:]
            for row in reader:
                if row and header and len(row) != len(header):
                    hint = ""
                    others = [d for d in DELIMITERS if d != dialect.delimiter
                              and len(header[0].split(d)) > 1 and len(header) == 1]
                    if others:
                        hint = f" The header looks {DELIMITERS[others[0]]}-separated: send delimiter={others[0]!r}."
                    return ValidationError(
                        f"Line {reader.line_num} has {len(row)} fields but the header has {len(header)} (reading "
                        f"fields separated by {name} {dialect.delimiter!r}, {how}). Every row needs one value per "
                        f"column (leave a value empty between {name}s if it is missing), or set the upload field "
                        f"'delimiter' (comma, semicolon, tab or pipe) if the file uses another separator.{hint}",
                        code="malformed_csv",
                        detail={"line": reader.line_num, "fields": len(row), "expected": len(header),
                                "delimiter": dialect.delimiter, "field": "delimiter"})
        except csv.Error as exc:
            return ValidationError(f"The file could not be parsed as CSV near line {reader.line_num}: {exc}",
                                   code="malformed_csv", detail={"line": reader.line_num})
    text = arrow_message.removeprefix("CSV parse error: ")
    return ValidationError(f"The file could not be parsed as CSV: {text}", code="malformed_csv")
