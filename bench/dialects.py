"""Benchmark 8: which detector finds a file's dialect, and how fast the readers read it.

    python -m bench.dialects            # one JSON line; python -m bench.run_all --only dialects

Files are generated here in a grid of dialects people export (delimiter × decimal mark ×
encoding × line ending), from tables whose text holds the other delimiters inside quotes,
and each detector is scored on finding the delimiter (and, for livetrain, the decimal mark
and an encoding that gives back the original text):
- livetrain's `reading.detect` (CleverCSV for delimiter and quote, charset-normalizer with
  Windows-1252 first, its own decimal-mark rule);
- Python's `csv.Sniffer` on the same decoded sample (delimiter and quote only);
- the old rule for the encoding: UTF-8, else Latin-1.
Then one bigger file (a million rows) is read by pyarrow's CSV reader (what livetrain uses),
pandas' C engine, pandas' pyarrow engine, and livetrain's whole detect-and-read, best of three.
"""

from __future__ import annotations

import csv
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DELIMITERS = [",", ";", "\t", "|"]
ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "utf-16"]
ENDINGS = ["\n", "\r\n", "\r"]


def table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "city": rng.choice(["Zürich", "São Paulo", "Köln; Mitte", "Lyon, 2e", "Bordeaux | centre", "Oslo"], rows),
        "price": np.round(rng.lognormal(3, 1, rows), 2),
        "qty": rng.integers(1, 500, rows),
        "note": rng.choice(["< 10 €", "l’offre – ok", "plain", ""], rows),
        "score": np.round(rng.normal(0, 1, rows), 4),
    })


def cases(rows: int = 80) -> list[dict[str, Any]]:
    out = []
    for i, (sep, enc, end) in enumerate(itertools.product(DELIMITERS, ENCODINGS, ENDINGS)):
        for decimal in (".", ","):
            if decimal == sep:
                continue
            frame = table(rows, seed=i)
            text = frame.to_csv(index=False, sep=sep, decimal=decimal, lineterminator=end)
            out.append({"sep": sep, "decimal": decimal, "encoding": enc, "ending": end, "text": text,
                        "data": text.encode(enc)})
    return out


def _sniffer(text: str) -> str | None:
    try:
        return csv.Sniffer().sniff(text[:32 * 1024], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return None


def _old_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def detection(folder: Path) -> dict[str, Any]:
    from livetrain.data import reading

    scores = {"livetrain_delimiter": 0, "livetrain_decimal": 0, "livetrain_text": 0, "sniffer_delimiter": 0,
              "old_rule_text": 0}
    seconds = {"livetrain": 0.0, "sniffer": 0.0}
    all_cases = cases()
    for n, case in enumerate(all_cases):
        path = folder / f"case{n}.csv"
        path.write_bytes(case["data"])
        start = time.perf_counter()
        dialect = reading.detect(path, path.name)
        seconds["livetrain"] += time.perf_counter() - start
        scores["livetrain_delimiter"] += dialect.delimiter == case["sep"]
        scores["livetrain_decimal"] += dialect.decimal == case["decimal"]
        decoded = case["data"].decode(dialect.encoding).lstrip("\ufeff")
        scores["livetrain_text"] += decoded == case["text"]
        scores["old_rule_text"] += _old_decode(case["data"]) == case["text"]
        start = time.perf_counter()
        found = _sniffer(_old_decode(case["data"]))
        seconds["sniffer"] += time.perf_counter() - start
        scores["sniffer_delimiter"] += found == case["sep"]
    total = len(all_cases)
    return {"files": total, **{k: round(v / total, 3) for k, v in scores.items()},
            "ms_per_file": {k: round(1000 * v / total, 2) for k, v in seconds.items()}}


def readers(folder: Path, rows: int = 1_000_000) -> dict[str, Any]:
    import pyarrow.csv as pacsv

    from livetrain.data import reading

    path = folder / "big.csv"
    frame = pd.concat([table(rows // 10, seed=s) for s in range(10)], ignore_index=True)
    frame.to_csv(path, index=False)

    def best(fn) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    result = {
        "rows": len(frame), "mb": round(path.stat().st_size / 1e6, 1),
        "pyarrow_csv_s": best(lambda: pacsv.read_csv(path).to_pandas()),
        "pandas_c_s": best(lambda: pd.read_csv(path)),
        "pandas_pyarrow_s": best(lambda: pd.read_csv(path, engine="pyarrow")),
        "livetrain_detect_and_read_s": best(lambda: reading.read_table(path, reading.detect(path, path.name))),
    }
    result["livetrain_over_pandas_pyarrow"] = round(result["livetrain_detect_and_read_s"]
                                                    / result["pandas_pyarrow_s"], 2)
    result["pandas_c_over_pyarrow"] = round(result["pandas_c_s"] / result["pyarrow_csv_s"], 2)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


def run() -> dict[str, Any]:
    """Both parts; the numbers benchmarks.md reports."""
    with tempfile.TemporaryDirectory(prefix="livetrain-dialects-") as folder:
        return {"detection": detection(Path(folder)), "readers": readers(Path(folder))}


if __name__ == "__main__":
    print(json.dumps(run()))
