"""Reading files as people have them: each dialect and format, generated here, read by livetrain and by
pandas told the right settings, cell for cell; what is detected; numbers as people write them; refusals."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from livetrain.data.reading import detect, parse_options, read_table, to_number
from livetrain.errors import ValidationError


def people(n: int = 60, seed: int = 3) -> pd.DataFrame:
    """Numbers with decimals, whole numbers, text with €, ’ and –, yes/no, dates, and a few gaps."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "income": np.round(rng.lognormal(10, 0.5, n), 2),
        "band": rng.choice(["< 10 €", "10–20 €", "Zoë’s pick", "plain"], n),
        "member": rng.choice(["yes", "no"], n),
        "joined": (pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"))
        .strftime("%Y-%m-%d"),
        "label": rng.choice(["a", "b", "c"], n),
    })
    frame["income"] = frame["income"].astype(object)
    frame.loc[[2, 9], "income"] = None
    frame["income"] = frame["income"].astype(float)
    return frame


def write(tmp_path: Path, name: str, frame: pd.DataFrame, *, sep=",", decimal=".", encoding="utf-8",
          lineterminator="\n", compression=None) -> Path:
    path = tmp_path / name
    text = frame.to_csv(index=False, sep=sep, decimal=decimal, lineterminator=lineterminator)
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if compression == "gzip" else data)
    return path


def read(path: Path, **form) -> tuple[pd.DataFrame, dict]:
    dialect = detect(path, path.name, parse_options(form))
    table = read_table(path, dialect)
    return table.frame, table.dialect.to_dict()


def same_cells(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(ours.columns) == list(theirs.columns)
    assert len(ours) == len(theirs)
    for name in ours.columns:
        a, b = ours[name], theirs[name]
        if pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), equal_nan=True,
                                       err_msg=name)
        else:
            assert a.astype(object).where(a.notna(), None).tolist() == \
                b.astype(object).where(b.notna(), None).tolist(), name


# Each case: how the file is written, what pandas needs to read it, and what detection must find.
DIALECTS = {
    "comma, UTF-8": (dict(), dict(), {"delimiter": ",", "decimal": ".", "encoding": "utf-8", "line_ending": "\n"}),
    "comma, UTF-8 with BOM, CRLF": (dict(encoding="utf-8-sig", lineterminator="\r\n"), dict(encoding="utf-8-sig"),
                                     {"delimiter": ",", "encoding": "utf-8", "bom": True, "line_ending": "\r\n"}),
    "semicolon, decimal comma, Windows-1252": (
        dict(sep=";", decimal=",", encoding="cp1252", lineterminator="\r\n"),
        dict(sep=";", decimal=",", encoding="cp1252"),
        {"delimiter": ";", "decimal": ",", "encoding": "cp1252", "line_ending": "\r\n"}),
    "tab, UTF-16": (dict(sep="\t", encoding="utf-16"), dict(sep="\t", encoding="utf-16"),
                    {"delimiter": "\t", "encoding": "utf-16", "bom": True}),
    "tab, UTF-16 LE without a BOM": (dict(sep="\t", encoding="utf-16-le"), dict(sep="\t", encoding="utf-16-le"),
                                     {"delimiter": "\t", "encoding": "utf-16-le", "bom": False}),
    "pipe, CR line endings": (dict(sep="|", lineterminator="\r"), dict(sep="|", lineterminator="\r"),
                              {"delimiter": "|", "line_ending": "\r"}),
}


@pytest.mark.parametrize("case", list(DIALECTS))
def test_every_dialect_reads_as_pandas_reads_it_with_the_right_settings(tmp_path, case):
    writing, pandas_settings, expected = DIALECTS[case]
    frame = people()
    path = write(tmp_path, "people.csv", frame, **writing)
    ours, dialect = read(path)
    for key, value in expected.items():
        assert dialect[key] == value, (key, dialect)
    assert set(dialect["detected"]) == {"encoding", "delimiter", "quote", "decimal", "thousands"}
    same_cells(ours, pd.read_csv(path, **pandas_settings))
    assert ours["band"].tolist() == frame["band"].tolist()  # € ’ – survive, not control characters


def test_gzip_tsv_and_the_file_name_hint(tmp_path):
    path = write(tmp_path, "people.tsv.gz", people(), sep="\t", compression="gzip")
    ours, dialect = read(path)
    assert dialect["compression"] == "gzip" and dialect["delimiter"] == "\t"
    same_cells(ours, pd.read_csv(path, sep="\t", compression="gzip"))


def test_excel_first_sheet_or_the_named_one(tmp_path):
    path = tmp_path / "book.xlsx"
    first, second = people(30, seed=1), people(40, seed=2)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        first.to_excel(writer, sheet_name="Summary", index=False)
        second.to_excel(writer, sheet_name="Raw data", index=False)
    ours, dialect = read(path)
    assert dialect["format"] == "xlsx" and dialect["sheet"] == "Summary"
    same_cells(ours, pd.read_excel(path, sheet_name="Summary"))
    ours, dialect = read(path, sheet="Raw data")
    assert dialect["sheet"] == "Raw data" and "sheet" in dialect["given"]
    same_cells(ours, pd.read_excel(path, sheet_name="Raw data"))
    with pytest.raises(ValidationError) as refused:
        read(path, sheet="Sheet9")
    assert refused.value.code == "unknown_sheet" and "Raw data" in refused.value.message


def test_parquet(tmp_path):
    path = tmp_path / "people.parquet"
    frame = people()
    frame.to_parquet(path, index=False)
    ours, dialect = read(path)
    assert dialect["format"] == "parquet"
    same_cells(ours, pd.read_parquet(path))


def test_numbers_written_with_separators_percent_and_currency_become_numbers(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text('region,revenue,margin,price,code\n'
                    'north,"89,961.37",58%,$1.50,007\n'
                    'south,"1,234.00",12.5%,$12.00,010\n'
                    'east,512.10,3%,$1200.00,100\n', encoding="utf-8")
    dialect = detect(path, path.name)
    table = read_table(path, dialect)
    assert table.frame["revenue"].tolist() == [89961.37, 1234.0, 512.10]
    assert table.frame["margin"].tolist() == [58.0, 12.5, 3.0]
    assert table.frame["price"].tolist() == [1.5, 12.0, 1200.0]
    assert table.formats["revenue"]["thousands"] == ","
    assert table.formats["margin"]["percent"] and table.formats["price"]["currency"] == "$"
    assert dialect.thousands == ","
    assert "region" not in table.formats  # words stay words


def test_european_thousands_and_decimal_comma(tmp_path):
    path = tmp_path / "umsatz.csv"
    path.write_text("Ort;Umsatz;Anteil\nBerlin;1.234,56;12,5 %\nKöln;98.765,40;7,25 %\nUlm;512,00;80 %\n",
                    encoding="cp1252")
    table = read_table(path, detect(path, path.name))
    assert table.dialect.delimiter == ";" and table.dialect.decimal == "," and table.dialect.thousands == "."
    assert table.frame["Umsatz"].tolist() == [1234.56, 98765.40, 512.0]
    assert table.frame["Anteil"].tolist() == [12.5, 7.25, 80.0]
    assert table.frame["Ort"].tolist() == ["Berlin", "Köln", "Ulm"]
    assert to_number("2.000,5", table.formats["Umsatz"]) == 2000.5


def test_a_thousands_override_is_the_only_separator_taken(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text('code,price\n"1,234",1.5\n"2,345",2.5\n', encoding="utf-8")
    assert read(path)[0]["code"].tolist() == [1234, 2345]
    frame, dialect = read(path, thousands="none")
    assert frame["code"].tolist() == ["1,234", "2,345"] and dialect["thousands"] == ""


def test_a_column_written_two_ways_stays_text(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text('a,b\n"1,000",x\n5%,y\n', encoding="utf-8")
    table = read_table(path, detect(path, path.name))
    assert table.frame["a"].tolist() == ["1,000", "5%"] and "a" not in table.formats


def test_overrides_win_and_are_recorded(tmp_path):
    # a comma-separated file whose values hold semicolons: detection alone might hesitate
    path = tmp_path / "odd.txt"
    path.write_text("a;b,c\n1;2,3\n4;5,6\n", encoding="utf-8")
    frame, dialect = read(path, delimiter="semicolon", decimal=",")
    assert dialect["delimiter"] == ";" and dialect["given"] == ["decimal", "delimiter"]
    assert frame.columns.tolist() == ["a", "b,c"] and frame["b,c"].tolist() == [2.3, 5.6]


@pytest.mark.parametrize("form, field", [
    ({"delimiter": "x"}, "delimiter"), ({"decimal": ";"}, "decimal"), ({"encoding": "klingon"}, "encoding"),
    ({"thousands": "#"}, "thousands"), ({"quote": "`"}, "quote"), ({"format": "docx"}, "format"),
    ({"delimiter": ",", "decimal": ","}, "decimal"),
])
def test_bad_overrides_name_their_field(form, field):
    with pytest.raises(ValidationError) as refused:
        parse_options(form)
    assert refused.value.code == "bad_parameter" and refused.value.detail["field"] == field
    assert field in refused.value.message or field in str(refused.value.detail)


@pytest.mark.parametrize("data, code, words", [
    (b"", "empty_dataset", ["empty"]),
    (b"a;b;c\n1;2\n", "malformed_csv", ["Line 2", "2 fields", "semicolon", "delimiter"]),
    (b"PK\x03\x04" + b"\x00" * 40, "unsupported_format", ["ZIP"]),
    (b"\xd0\xcf\x11\xe0" + b"\x00" * 40, "unsupported_format", [".xls"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "malformed_csv", ["binary"]),
])
def test_bad_files_say_what_was_seen(tmp_path, data, code, words):
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    with pytest.raises(ValidationError) as refused:
        read_table(path, detect(path, path.name))
    assert refused.value.code == code
    for word in words:
        assert word in refused.value.message


def test_a_column_without_a_name_is_named_as_pandas_names_it(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a,,c\n1,2,3\n4,5,6\n", encoding="utf-8")
    ours, _ = read(path)
    assert list(ours.columns) == list(pd.read_csv(path).columns) == ["a", "Unnamed: 1", "c"]


def test_a_wrong_delimiter_override_names_the_one_the_header_shows(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;c\n1;2;3\n4;5;6,7\n", encoding="utf-8")
    with pytest.raises(ValidationError) as refused:
        read(path, delimiter="comma")
    message = refused.value.message
    assert "comma" in message and "given" in message and "delimiter=';'" in message


def test_detection_reads_only_the_start_of_a_big_file(tmp_path):
    # a large file is detected from its first rows; the reader then takes every row
    frame = pd.DataFrame({"x": np.arange(200_000) / 4, "y": np.arange(200_000) % 3})
    path = write(tmp_path, "big.csv", frame, sep=";", decimal=",")
    ours, dialect = read(path)
    assert dialect["decimal"] == "," and len(ours) == 200_000
    assert float(ours["x"].iloc[-1]) == 199_999 / 4


def test_bytes_in_memory_read_the_same(tmp_path):
    from livetrain.data.tabular import read_csv

    data = people().to_csv(index=False, sep=";", decimal=",").encode("cp1252")
    same_cells(read_csv(data), pd.read_csv(io.BytesIO(data), sep=";", decimal=",", encoding="cp1252"))
