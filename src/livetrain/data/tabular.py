"""Turning an uploaded CSV (or any DataFrame) into float32 training arrays.

The steps are: read the file (`livetrain.data.reading`; `read_csv` for bytes), decide what
each column is and what the task is (`infer_schema`), split the rows once with a seed (`split_indices`), and fit the
preprocessing on the training rows only (`build_pipeline`, `prepare_table`). The fitted
pipeline is a scikit-learn transformer made of module-level functions, so it pickles with
joblib and can turn raw rows a user types into features later (`transform_rows`).

Every mistake a user can make with their file is a `ValidationError` whose message names
the column and says what to change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from livetrain.errors import ValidationError

COLUMN_TYPES = ("numeric", "categorical", "boolean", "datetime", "text")
IGNORED = "ignored"  # accepted in `types` overrides: leave the column out
TASKS = ("classification", "regression")
MISSING_TARGET = ("refuse", "drop")  # what to do with rows whose target is empty
FIT_ROWS = 100_000  # a bigger training split fits its preprocessing statistics on a seeded sample this size
TRANSFORM_ROWS = 100_000  # rows transformed at a time

MIN_ROWS = 10  # fewer rows cannot be split into three non-empty, meaningful parts
MAX_ONE_HOT = 30  # more categories than this are ordinal-encoded instead of one-hot
MAX_CLASSES_FOR_INTEGER_TARGET = 20  # an integer target with at most this many values is a class label
MAX_CLASSES_FOR_FLOAT_TARGET = 50  # explicit classification of a float target beyond this is a mistake
DATE_SAMPLE = 200
DATE_PARSE_SHARE = 0.9
DATE_GUESSES = 20  # values whose guessed formats are tried on the sample
PREVIEW_ROWS = 10
FLOAT32_MAX = float(np.finfo(np.float32).max)  # features are float32: a larger number would become infinity

_TRUE_WORDS = frozenset({"true", "yes"})
_FALSE_WORDS = frozenset({"false", "no"})
# An explicit "boolean" override may also use 1/0; inference stays with the words only.
_TRUE_VALUES = _TRUE_WORDS | {"1", "1.0"}
_FALSE_VALUES = _FALSE_WORDS | {"0", "0.0"}
_DATE_LIKE = re.compile(r"\d.*[-/:.\s]|[-/:.\s].*\d")
_ID_NAME = re.compile(r"(^|[_\s])id$", re.IGNORECASE)


@dataclass
class ColumnInfo:
    """What one column of the table is and what training does with it."""

    name: str
    type: str  # one of COLUMN_TYPES
    role: str  # "feature" | "target" | "ignored"
    missing: int
    unique: int
    inferred: str  # the type inference chose; `type` differs when the user overrode it
    note: str | None = None
    number_format: dict | None = None  # how the file wrote its numbers (thousands, %, currency, decimal comma)
    # The model's inputs made from this feature column (e.g. "joined.year", "color=red"), known once
    # the preprocessing is fitted: None before that, for a target or ignored column, and in schemas
    # stored before this field existed.
    features: list[str] | None = None

    def to_dict(self) -> dict:
        """A JSON-able dict of the fields."""
        return asdict(self)


@dataclass
class Schema:
    """Every column's type and role, the target(s) and the task."""

    columns: list[ColumnInfo]
    targets: list[str]
    task: str  # "classification" | "regression"
    features: list[str]
    passthrough: bool = False
    dropped_rows: dict[str, int] = field(default_factory=dict)  # why rows of the file were left out, and how many
    fitted_on_rows: int | None = None  # the sample of training rows the preprocessing was fitted on, when not all

    def to_dict(self) -> dict:
        """A JSON-able dict; `from_dict` reads it back."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "targets": list(self.targets),
            "task": self.task,
            "features": list(self.features),
            "passthrough": self.passthrough,
            "dropped_rows": dict(self.dropped_rows),
            "fitted_on_rows": self.fitted_on_rows,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        """The schema `to_dict` described."""
        names = ColumnInfo.__dataclass_fields__
        return cls(
            columns=[ColumnInfo(**{k: v for k, v in c.items() if k in names}) for c in d["columns"]],
            targets=list(d["targets"]),
            task=d["task"],
            features=list(d["features"]),
            passthrough=bool(d.get("passthrough", False)),
            dropped_rows=dict(d.get("dropped_rows") or {}),
            fitted_on_rows=d.get("fitted_on_rows"),
        )

    def column(self, name: str) -> ColumnInfo:
        """The column called `name`."""
        for info in self.columns:
            if info.name == name:
                return info
        raise KeyError(name)


@dataclass
class PreparedTable:
    """A table split and preprocessed for training, with what is needed to predict later."""

    schema: Schema
    pipeline: Any
    X_train: np.ndarray
    X_val: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    classes: list | None
    target_mean: list[float] | None
    target_std: list[float] | None
    feature_names: list[str]
    split_seed: int
    fractions: tuple[float, float, float]
    indices: dict[str, list[int]]
    summary: dict


# ---------------------------------------------------------------------------- reading


def read_csv(data: bytes, *, max_rows: int | None = None, **options: Any) -> pd.DataFrame:
    """Parse CSV bytes in any common dialect into a DataFrame (see `livetrain.data.reading`)."""
    import tempfile
    from pathlib import Path

    from livetrain.data import reading

    with tempfile.TemporaryDirectory(prefix="livetrain-csv-") as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(data)
        dialect = reading.detect(path, "upload.csv", reading.parse_options(options))
        return reading.read_table(path, dialect, max_rows=max_rows).frame


# ---------------------------------------------------------------------------- schema


def infer_schema(
    df: pd.DataFrame,
    *,
    target: str | list[str] | None = None,
    types: dict[str, str] | None = None,
    task: str | None = None,
    formats: Mapping[str, Mapping[str, Any]] | None = None,
) -> Schema:
    """Decide each column's type and role, the target(s) and the task (user overrides win).

    `formats` says how the file wrote a column's numbers (from `reading.Table.formats`).
    """
    from livetrain.data.reading import describe_format

    df = _checked_frame(df)
    formats = formats or {}
    targets = _targets(df, target)
    overrides = _overrides(df, types)
    n = len(df)

    columns: list[ColumnInfo] = []
    for name in df.columns:
        s = df[name]
        inferred = _infer_type(s)
        requested = overrides.get(name)
        if name in targets and requested == IGNORED:
            raise ValidationError(f"Column '{name}' is the target, so it cannot be ignored.",
                                  code="bad_type", detail={"column": name})
        kind = inferred if requested in (None, IGNORED) else requested
        if requested not in (None, IGNORED, inferred):
            _check_override(s, name, requested)
        info = ColumnInfo(name=name, type=kind, role="feature", missing=int(s.isna().sum()),
                          unique=int(s.nunique(dropna=True)), inferred=inferred)
        if name in targets:
            info.role = "target"
        elif requested == IGNORED:
            info.role, info.note = "ignored", "left out by request"
        elif kind == "text":
            info.role, info.note = "ignored", "free text is left out"
        elif requested is None and kind == "numeric" and _looks_like_id(s, name):
            info.role, info.note = "ignored", "identifier-like: every value distinct"
        if name in formats and kind == "numeric":
            info.number_format = dict(formats[name])
            info.note = info.note or describe_format(formats[name])
        columns.append(info)

    by_name = {c.name: c for c in columns}
    for name in targets:
        if by_name[name].missing:
            count = by_name[name].missing
            raise ValidationError(f"The target column '{name}' is empty in {count} of {n} rows. Fill those values "
                                  "in, or upload again with missing_target=drop to leave those rows out; rows "
                                  "without a target cannot be learned from.",
                                  code="missing_target", detail={"column": name, "rows": count})
    task = _task(df, [by_name[t] for t in targets], task)
    if task == "classification" and by_name[targets[0]].unique < 2:
        value = _json_value(df[targets[0]].iloc[0])
        raise ValidationError(f"The target column '{targets[0]}' has only one value ({value!r}); classification "
                              "needs at least two classes.",
                              code="single_class_target", detail={"column": targets[0]})

    features = [c.name for c in columns if c.role == "feature"]
    for name in features:
        if by_name[name].missing == n:
            raise ValidationError(f"Column '{name}' is empty in every row. Remove it, or leave it out with "
                                  f'types: {{"{name}": "ignored"}}.',
                                  code="all_missing_column", detail={"column": name})
    if not features:
        raise ValidationError("No column is left to learn from: every column but the target is ignored or free "
                              "text. Add feature columns, or set a type override (e.g. 'categorical') on one.",
                              code="no_features", detail={"columns": [c.to_dict() for c in columns]})
    return Schema(columns=columns, targets=targets, task=task, features=features)


def _checked_frame(df: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a DataFrame, got {type(df).__name__}")
    if df.shape[1] == 0 or len(df) == 0:
        raise ValidationError("The table is empty: it needs a header row and data rows.",
                              code="empty_dataset", detail={"rows": len(df)})
    if not all(isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)
    dupes = sorted(set(df.columns[df.columns.duplicated()]))
    if dupes:
        raise ValidationError(f"The column names {', '.join(repr(d) for d in dupes)} appear more than once; "
                              "give every column a different name.",
                              code="duplicate_columns", detail={"columns": dupes})
    return df


def _unknown_column(name: Any, df: pd.DataFrame, what: str) -> ValidationError:
    columns = list(df.columns)
    return ValidationError(f"{what} '{name}' is not a column. The columns are: {', '.join(columns)}.",
                           code="unknown_column", detail={"column": str(name), "columns": columns})


def _targets(df: pd.DataFrame, target: str | list[str] | None) -> list[str]:
    if target is None:
        return [df.columns[-1]]
    names = [target] if isinstance(target, str) else target
    if not isinstance(names, list | tuple) or not names or not all(isinstance(t, str) for t in names):
        raise ValidationError("target must be a column name or a non-empty list of column names.",
                              code="bad_type", detail={"target": _json_value(target)})
    if len(set(names)) != len(names):
        raise ValidationError("target names a column more than once.", code="bad_type", detail={"target": names})
    for name in names:
        if name not in df.columns:
            raise _unknown_column(name, df, "The target")
    return list(names)


def _overrides(df: pd.DataFrame, types: dict[str, str] | None) -> dict[str, str]:
    if not types:
        return {}
    if not isinstance(types, Mapping):
        raise ValidationError("types must map column names to a type.", code="bad_type")
    allowed = (*COLUMN_TYPES, IGNORED)
    for name, kind in types.items():
        if name not in df.columns:
            raise _unknown_column(name, df, "The type override names")
        if kind not in allowed:
            raise ValidationError(f"Type {kind!r} for column '{name}' is not one of: {', '.join(allowed)}.",
                                  code="bad_type", detail={"column": name, "type": _json_value(kind)})
    return dict(types)


def _infer_type(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    if pd.api.types.is_numeric_dtype(s):
        return "numeric"
    values = s.dropna()
    if values.empty:
        return "numeric"  # nothing to go by; an all-missing feature is rejected anyway
    distinct = pd.unique(values)
    if all(_boolean_word(v) is not None for v in distinct):
        return "boolean"
    numbers = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
    if not any(isinstance(v, bool | np.bool_) for v in distinct) and numbers.notna().all():
        return "numeric"  # numbers held as objects (a DataFrame built from strings)
    if _datetime_format(values) is not None:
        return "datetime"
    if values.nunique() <= max(20, 0.05 * len(s)):
        return "categorical"
    return "text"


def _boolean_word(value: Any, vocabulary: tuple[frozenset, frozenset] = (_TRUE_WORDS, _FALSE_WORDS)) -> bool | None:
    """True/False for a boolean-looking value, None for anything else."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in vocabulary[0]:
            return True
        if word in vocabulary[1]:
            return False
    return None


def _boolean_value(value: Any) -> bool | None:
    """Like `_boolean_word`, also accepting 1/0 (numbers or strings)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_):
        return {1: True, 0: False}.get(value) if value in (0, 1) else None
    return _boolean_word(value, (_TRUE_VALUES, _FALSE_VALUES))


def _datetime_format(values: pd.Series) -> str | None:
    """The format that parses at least 90% of a sample of the values, or None."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return "ISO8601"
    sample = [str(v).strip() for v in values.iloc[:DATE_SAMPLE] if not isinstance(v, bool | np.bool_)]
    if not sample or sum(bool(_DATE_LIKE.search(v)) for v in sample) < DATE_PARSE_SHARE * len(sample):
        return None
    candidates = ["ISO8601"]
    with warnings.catch_warnings():
        # guess_datetime_format warns when it reads a day-first date; the parse test below decides anyway
        warnings.simplefilter("ignore", UserWarning)
        for value in sample[:DATE_GUESSES]:
            for dayfirst in (False, True):  # 01/02/2021 is ambiguous; 15/03/2021 in the same column is not
                fmt = guess_datetime_format(value, dayfirst=dayfirst)
                # without a four-digit year, "1.2.3" or "10/12" would read as dates too easily
                if fmt and "%Y" in fmt and fmt not in candidates:
                    candidates.append(fmt)
    for fmt in candidates:
        parsed = pd.to_datetime(pd.Series(sample, dtype=object), format=fmt, errors="coerce", utc=True)
        if parsed.notna().mean() >= DATE_PARSE_SHARE:
            return fmt
    return None


def _check_override(s: pd.Series, name: str, kind: str) -> None:
    values = s.dropna()
    if kind == "numeric":
        bad = values[pd.to_numeric(values, errors="coerce").isna()]
        if len(bad):
            raise ValidationError(f"Column '{name}' cannot be numeric: {bad.iloc[0]!r} (row {bad.index[0]}) is not "
                                  "a number. Fix that value or choose another type.",
                                  code="bad_type", detail={"column": name, "value": _json_value(bad.iloc[0])})
    elif kind == "boolean":
        bad = [v for v in values if _boolean_value(v) is None]
        if bad:
            raise ValidationError(f"Column '{name}' cannot be boolean: {bad[0]!r} is not one of true/false, yes/no "
                                  "or 1/0.", code="bad_type", detail={"column": name, "value": _json_value(bad[0])})
    elif kind == "datetime" and len(values) and _datetime_format(values) is None:
        parsed = pd.to_datetime(values.astype(str), format="mixed", errors="coerce", utc=True)
        example = values[parsed.isna()]
        example_text = f"{example.iloc[0]!r} is not a date" if len(example) else "the values are not dates"
        raise ValidationError(f"Column '{name}' cannot be datetime: {example_text}. Use a format such as "
                              "2024-01-31 or 2024-01-31T08:00:00.",
                              code="bad_type", detail={"column": name})


def _looks_like_id(s: pd.Series, name: str) -> bool:
    if not _ID_NAME.search(name.strip()) or s.isna().any():
        return False
    values = s.to_numpy(dtype=float)
    return bool(np.all(values == np.round(values))) and s.nunique() == len(s)


def _is_integer_valued(s: pd.Series) -> bool:
    values = pd.to_numeric(s.dropna(), errors="coerce").to_numpy(dtype=float)
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _task(df: pd.DataFrame, targets: list[ColumnInfo], task: str | None) -> str:
    if task is not None and task not in TASKS:
        raise ValidationError(f"task must be 'classification' or 'regression', not {task!r}.",
                              code="bad_type", detail={"task": _json_value(task)})
    if len(targets) > 1:
        if task == "classification":
            raise ValidationError("Several target columns are only supported for regression; "
                                  "choose one target column for classification.",
                                  code="bad_type", detail={"targets": [t.name for t in targets]})
        for t in targets:
            if t.type != "numeric":
                raise ValidationError(f"Target column '{t.name}' is {t.type}; every column of a multi-output "
                                      "(regression) target must be numeric.",
                                      code="bad_type", detail={"column": t.name})
        return "regression"
    t = targets[0]
    if t.type == "datetime":
        raise ValidationError(f"Target column '{t.name}' holds dates, which cannot be predicted directly. "
                              "Choose another target, or override its type to 'categorical'.",
                              code="bad_type", detail={"column": t.name})
    if task == "regression":
        if t.type != "numeric":
            raise ValidationError(f"Regression needs a numeric target, but column '{t.name}' is {t.type}. "
                                  "Use task 'classification' or choose a numeric target.",
                                  code="bad_type", detail={"column": t.name})
        return task
    if task == "classification":
        if t.type == "numeric" and t.unique > MAX_CLASSES_FOR_FLOAT_TARGET and not _is_integer_valued(df[t.name]):
            raise ValidationError(f"Target column '{t.name}' holds {t.unique} distinct fractional numbers; as "
                                  "classes each would be a class of its own. Use task 'regression' (or bin the "
                                  "values into a few categories first).",
                                  code="bad_type", detail={"column": t.name, "unique": t.unique})
        return task
    if t.type != "numeric":
        return "classification"
    if t.unique <= MAX_CLASSES_FOR_INTEGER_TARGET and _is_integer_valued(df[t.name]):
        return "classification"
    return "regression"


# ---------------------------------------------------------------------------- splitting


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(f) for f in fractions)
        ok = (len(values) == 3 and not any(isinstance(f, bool) for f in fractions)
              and all(math.isfinite(f) and f > 0 for f in values) and abs(sum(values) - 1.0) <= 1e-6)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValidationError("fractions must be three positive numbers (train, validation, test) that add up to 1, "
                              "e.g. [0.7, 0.15, 0.15].", code="bad_split",
                              detail={"field": "split", "fractions": _json_value(fractions)})
    return values  # type: ignore[return-value]


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    n_val = max(1, round(n * fractions[1]))
    n_test = max(1, round(n * fractions[2]))
    while n - n_val - n_test < 1:  # very lopsided fractions on a small table: keep a training row
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def _can_stratify(labels: np.ndarray, n_held_out: int) -> bool:
    # The conditions under which scikit-learn's stratified shuffle split accepts the labels.
    _, counts = np.unique(labels, return_counts=True)
    return counts.min() >= 2 and n_held_out >= len(counts) and len(labels) - n_held_out >= len(counts)


def _split_off(positions: np.ndarray, labels: np.ndarray | None, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # Stratify when possible; a step on a tiny remainder where some class has one row left (or the
    # held-out part is smaller than the number of classes) falls back to a plain seeded shuffle.
    stratify = labels if labels is not None and _can_stratify(labels, size) else None
    keep, held = train_test_split(positions, test_size=size, random_state=seed, stratify=stratify)
    return keep, held


def split_indices(
    y: Any, task: str, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of train, validation and test: seeded, stratified for classification, sorted."""
    fractions = _check_fractions(fractions)
    y = np.asarray(y)
    n = len(y)
    if n < 3:
        raise ValidationError(f"{n} rows cannot be split into training, validation and test parts.",
                              code="empty_dataset", detail={"rows": n})
    labels = None
    if task == "classification":
        # Each label as its rank among the sorted classes: the same classes in the same order as the
        # labels themselves, so the same split, but sorting integers instead of millions of objects.
        codes, uniques = pd.factorize(y)
        classes = np.sort(np.asarray(uniques))
        labels = np.searchsorted(classes, uniques)[codes]
        counts = np.bincount(labels, minlength=len(classes))
        lonely = classes[counts < 2]
        if len(lonely):
            label = _json_value(lonely[0])
            raise ValidationError(f"Class {label!r} has only one row; every class needs at least 2 rows to be split "
                                  "into training and held-out parts. Add rows of that class or remove it.",
                                  code="too_few_per_class", detail={"class": label})
    n_val, n_test = _split_sizes(n, fractions)
    positions = np.arange(n)
    rest, test = _split_off(positions, labels, n_test, seed)
    train, val = _split_off(rest, None if labels is None else labels[rest], n_val, seed)
    return np.sort(train), np.sort(val), np.sort(test)


# ---------------------------------------------------------------------------- pipeline
# Module-level functions (not lambdas) so a fitted pipeline pickles by reference.


def _columns(X: Any) -> list[pd.Series]:
    if isinstance(X, pd.DataFrame):
        return [X.iloc[:, i] for i in range(X.shape[1])]
    array = np.asarray(X, dtype=object)
    return [pd.Series(array[:, i], dtype=object) for i in range(array.shape[1])]


def _numbers(X: Any) -> np.ndarray:
    """Each column as float64, anything that is not a number becoming NaN."""
    return np.column_stack([pd.to_numeric(c, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                            for c in _columns(X)])


def _category_text(value: Any) -> Any:
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)) or value is pd.NA:
        return np.nan
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 read from a CSV and 3 typed in a form are the same category
    return str(value).strip()


def _each_value(column: pd.Series, fn: Any, dtype: Any) -> np.ndarray:
    """`fn` of every value of a column; a column of text is mapped through its distinct values only."""
    if not pd.api.types.is_object_dtype(column):
        # a typed column (text, booleans, numbers as read from a file): millions of rows, few distinct values
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        mapped = np.array([fn(v) for v in uniques] + [fn(None)], dtype=dtype)
        return mapped[codes]  # code -1 (missing) picks the last entry, fn(None)
    # objects typed at predict time may mix 1, True and "1", which factorizing would merge
    return np.array([fn(v) for v in column], dtype=dtype)


def _categories(X: Any) -> np.ndarray:
    """Each column as stripped strings (object array), missing as NaN."""
    return np.column_stack([_each_value(c, _category_text, object) for c in _columns(X)])


def _boolean_number(value: Any) -> float:
    b = _boolean_value(value)
    return np.nan if b is None else float(b)


def _booleans(X: Any) -> np.ndarray:
    """Each column as 1.0/0.0, missing or unreadable as NaN."""
    return np.column_stack([_each_value(c, _boolean_number, float) for c in _columns(X)])


def _to_datetimes(values: pd.Series, fmt: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    objects = values.astype(object).where(values.notna(), None)
    parsed = pd.to_datetime(objects, format=fmt, errors="coerce", utc=True)
    retry = parsed.isna() & objects.notna()
    if retry.any():  # a value typed at predict time in another format than the file's
        parsed[retry] = pd.to_datetime(objects[retry].astype(str), format="mixed", errors="coerce", utc=True)
    return parsed


def _dates(X: Any, formats: Sequence[str]) -> list[pd.Series]:
    """Each column parsed as UTC datetimes with its format (ISO 8601 when none is given), unparseable as NaT."""
    return [_to_datetimes(c.reset_index(drop=True), formats[i] if i < len(formats) else "ISO8601")
            for i, c in enumerate(_columns(X))]


def _unix_seconds(X: Any, formats: Sequence[str] = ()) -> np.ndarray:
    """Each column as seconds since 1970-01-01 UTC, unparseable as NaN.

    What datetime columns became before calendar features; pipelines stored then still call it.
    """
    epoch = pd.Timestamp(0, tz="UTC")
    return np.column_stack([((parsed - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)
                            for parsed in _dates(X, formats)])


# What a datetime column becomes. The cyclical pairs (sin, cos) put December next to January,
# Sunday next to Monday and 23:00 next to 00:00, which a linear model or a network needs to
# learn a season. The raw month, day of week and hour stay too: "weekend" (day_of_week >= 5),
# "fourth quarter" (month >= 10) or "after 17:00" is one threshold on them for a tree or a linear
# model, but needs both halves of a pair. The day of year is cyclical only: month and the year's
# fraction already place a date within its year, and its raw value would jump from 365 to 1 at
# New Year. The year keeps its fraction (2021.5 is early July 2021), so it is a smooth trend
# that carries everything the single timestamp number used to.
CALENDAR_FEATURES = ("year", "month", "month_sin", "month_cos", "day_of_week", "day_of_week_sin",
                     "day_of_week_cos", "day_of_year_sin", "day_of_year_cos")
HOUR_FEATURES = ("hour", "hour_sin", "hour_cos")  # only for a column whose training values have a time of day


def _calendar_names(with_hour: bool) -> tuple[str, ...]:
    """The calendar features made from one datetime column, in their order."""
    return CALENDAR_FEATURES + HOUR_FEATURES if with_hour else CALENDAR_FEATURES


def _cycle(name: str, position: pd.Series, period: Any) -> dict[str, pd.Series]:
    angle = 2 * np.pi * position / period
    return {f"{name}_sin": np.sin(angle), f"{name}_cos": np.cos(angle)}


def _calendar_features(X: Any, formats: Sequence[str] = (), with_hour: Sequence[bool] = ()) -> np.ndarray:
    """Each column as the `_calendar_names` features (in UTC), unparseable as NaN.

    Stored pipelines call this function by its name with these keyword arguments, so both stay.
    """
    blocks = []
    for i, parsed in enumerate(_dates(X, formats)):
        dates = parsed.dt
        days_in_year = np.where(dates.is_leap_year, 366.0, 365.0)
        hour = dates.hour + dates.minute / 60 + dates.second / 3600  # 13:30 is 13.5
        day_of_year = dates.day_of_year - 1 + hour / 24  # days since 1 January 00:00
        parts = {
            "year": dates.year + day_of_year / days_in_year,
            "month": dates.month,
            **_cycle("month", dates.month - 1, 12),
            "day_of_week": dates.day_of_week,  # Monday 0 ... Sunday 6
            **_cycle("day_of_week", dates.day_of_week, 7),
            **_cycle("day_of_year", day_of_year, days_in_year),
            "hour": hour,
            **_cycle("hour", hour, 24),
        }
        names = _calendar_names(bool(with_hour[i]) if i < len(with_hour) else False)
        blocks += [pd.Series(parts[name]).to_numpy(dtype=float, na_value=np.nan) for name in names]
    return np.column_stack(blocks)


def _has_time_of_day(values: pd.Series, fmt: str) -> bool:
    """Whether any parsed value is not at midnight UTC."""
    parsed = _dates(values.to_frame(), [fmt])[0].dropna()
    return bool((parsed != parsed.dt.normalize()).any())


def _float32(X: Any) -> np.ndarray:
    """The values as they are, as a C-contiguous float32 array."""
    return np.ascontiguousarray(np.asarray(X, dtype=np.float32))


def build_pipeline(schema: Schema, df: pd.DataFrame) -> Any:
    """An unfitted transformer for `schema`'s features; `df` (the training rows) picks each column's encoding.

    The transformer takes a DataFrame with exactly the columns `schema.features`.
    """
    if schema.passthrough:
        return FunctionTransformer(_float32)
    by_type: dict[str, list[str]] = {}
    for name in schema.features:
        by_type.setdefault(schema.column(name).type, []).append(name)

    parts: list[tuple[str, Any, list[str]]] = []
    if by_type.get("numeric"):
        parts.append(("numeric", Pipeline([
            ("to_number", FunctionTransformer(_numbers)),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]), by_type["numeric"]))
    categorical = by_type.get("categorical", [])
    # Every category of the training rows, named up front: the pipeline may be fitted on a sample of them.
    categories = {c: sorted(pd.Series(_categories(df[[c]])[:, 0]).dropna().unique().tolist()) for c in categorical}
    few = [c for c in categorical if len(categories[c]) <= MAX_ONE_HOT]
    many = [c for c in categorical if c not in few]
    if few:
        parts.append(("one_hot", Pipeline([
            ("to_text", FunctionTransformer(_categories)),
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(categories=[categories[c] for c in few], handle_unknown="ignore",
                                     sparse_output=False)),
        ]), few))
    if many:
        parts.append(("ordinal", Pipeline([
            ("to_text", FunctionTransformer(_categories)),
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OrdinalEncoder(categories=[categories[c] for c in many],
                                      handle_unknown="use_encoded_value", unknown_value=-1)),
            ("scale", StandardScaler()),
        ]), many))
    if by_type.get("boolean"):
        parts.append(("boolean", Pipeline([
            ("to_number", FunctionTransformer(_booleans)),
            ("impute", SimpleImputer(strategy="most_frequent")),
        ]), by_type["boolean"]))
    if by_type.get("datetime"):
        formats = [_datetime_format(df[c].dropna()) or "ISO8601" for c in by_type["datetime"]]
        with_hour = [_has_time_of_day(df[c].dropna(), fmt) for c, fmt in zip(by_type["datetime"], formats)]
        parts.append(("datetime", Pipeline([
            ("calendar", FunctionTransformer(_calendar_features, kw_args={"formats": formats, "with_hour": with_hour})),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]), by_type["datetime"]))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _features_made(pipeline: Any, schema: Schema) -> dict[str, list[str]]:
    """The names of the model's inputs made from each feature column, in the fitted pipeline's order."""
    if schema.passthrough:
        return {name: [name] for name in schema.features}
    made: dict[str, list[str]] = {}
    for part, transformer, columns in pipeline.transformers_:
        if part == "remainder":
            continue
        if part == "one_hot":
            encoder = transformer.named_steps["encode"]
            made.update({c: [f"{c}={cat}" for cat in cats] for c, cats in zip(columns, encoder.categories_)})
        elif part == "datetime" and "calendar" in transformer.named_steps:  # not a pipeline stored before
            with_hour = transformer.named_steps["calendar"].kw_args["with_hour"]
            made.update({c: [f"{c}.{name}" for name in _calendar_names(hour)] for c, hour in zip(columns, with_hour)})
        else:
            made.update({c: [c] for c in columns})
    return made


def _feature_sources(pipeline: Any, schema: Schema) -> list[tuple[str, str]]:
    """(feature name, the column it comes from) for each input the model sees, in its order."""
    return [(name, column) for column, names in _features_made(pipeline, schema).items() for name in names]


def _feature_names(pipeline: Any, schema: Schema) -> list[str]:
    """Every input the model sees, in its order."""
    return [name for name, _ in _feature_sources(pipeline, schema)]


# ---------------------------------------------------------------------------- preparing


def _class_label(value: Any, kind: str) -> Any:
    if kind == "boolean":
        return _boolean_value(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip()
    return value


def prepare_table(
    df: pd.DataFrame,
    *,
    target: str | list[str] | None = None,
    types: dict[str, str] | None = None,
    task: str | None = None,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    passthrough: bool = False,
    formats: Mapping[str, Mapping[str, Any]] | None = None,
    missing_target: str = "refuse",
    fit_rows: int = FIT_ROWS,
) -> PreparedTable:
    """Infer the schema, split with `seed`, fit preprocessing on the training rows and transform every split.

    `missing_target="drop"` leaves out rows whose target is empty (the schema counts them);
    by default such rows refuse the table. A training split over `fit_rows` rows has its preprocessing
    statistics (medians, means, scales) fitted on a seeded sample of that many rows.
    """
    df = _checked_frame(df)
    fractions = _check_fractions(fractions)
    if missing_target not in MISSING_TARGET:
        raise ValidationError(f"missing_target must be {' or '.join(MISSING_TARGET)}, not {missing_target!r}.",
                              code="bad_parameter", detail={"field": "missing_target"})
    dropped: dict[str, int] = {}
    if missing_target == "drop":
        empty = df[_targets(df, target)].isna().any(axis=1)
        if empty.any():
            dropped["missing_target"] = int(empty.sum())
            df = df.loc[~empty].reset_index(drop=True)
    if len(df) < MIN_ROWS:
        raise ValidationError(f"The table has {len(df)} rows; at least {MIN_ROWS} are needed to split it into "
                              "training, validation and test parts.", code="empty_dataset", detail={"rows": len(df)})
    schema = infer_schema(df, target=target, types=types, task=task, formats=formats)
    schema.passthrough = bool(passthrough)
    schema.dropped_rows = dropped
    if passthrough:
        _check_passthrough(schema)

    classes = target_mean = target_std = None
    if schema.task == "classification":
        column = schema.column(schema.targets[0])
        labels = _each_value(df[column.name], lambda v: _class_label(v, column.type), object)
        if len(set(map(type, labels))) > 1:  # e.g. 3 and "three" in one object column
            labels = np.array([str(label) for label in labels], dtype=object)
        codes, uniques = pd.factorize(labels)
        classes = sorted(uniques.tolist())
        rank = {label: i for i, label in enumerate(classes)}
        y = np.array([rank[label] for label in uniques], dtype=np.int64)[codes]
        train, val, test = split_indices(labels, schema.task, fractions, seed)
    else:
        y = df[schema.targets].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        train, val, test = split_indices(y, schema.task, fractions, seed)

    features = schema.features
    for name in features:
        if df[name].iloc[train].isna().all():
            raise ValidationError(f"Column '{name}' has no values in the training rows, so nothing can be learned "
                                  f'from it. Fill it in or leave it out with types: {{"{name}": "ignored"}}.',
                                  code="all_missing_column", detail={"column": name})
    # Only the columns whose encoding depends on their values are copied for all training rows.
    telling = [c for c in features if schema.column(c).type in ("categorical", "datetime")]
    pipeline = build_pipeline(schema, df[telling].iloc[train])
    fitted_on = train
    if len(train) > fit_rows:  # medians, means and scales from a seeded sample; categories from every row
        fitted_on = np.sort(np.random.default_rng(seed).choice(train, fit_rows, replace=False))
        schema.fitted_on_rows = fit_rows
    pipeline.fit(df[features].iloc[fitted_on] if fitted_on is train else df.iloc[fitted_on][features])
    chunk = max(1, min(TRANSFORM_ROWS, fit_rows))
    X_train, X_val, X_test = (_transform_in_chunks(pipeline, df, features, rows, chunk) for rows in (train, val, test))
    made = _features_made(pipeline, schema)
    for info in schema.columns:
        info.features = made.get(info.name)

    if schema.task == "regression":
        mean = y[train].mean(axis=0)
        std = y[train].std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant target: leave it centred, unscaled
        y = (y - mean) / std
        if y.shape[1] == 1:
            y = y[:, 0]
        y = y.astype(np.float32)
        target_mean, target_std = [float(v) for v in mean], [float(v) for v in std]

    return PreparedTable(
        schema=schema, pipeline=pipeline,
        X_train=X_train, X_val=X_val, X_test=X_test,
        y_train=np.ascontiguousarray(y[train]), y_val=np.ascontiguousarray(y[val]),
        y_test=np.ascontiguousarray(y[test]),
        classes=classes, target_mean=target_mean, target_std=target_std,
        feature_names=_feature_names(pipeline, schema),
        split_seed=seed, fractions=fractions,
        indices={"train": train.tolist(), "val": val.tolist(), "test": test.tolist()},
        summary=_summary(df, schema, classes, y if schema.task == "classification" else None),
    )


def _transform_in_chunks(pipeline: Any, df: pd.DataFrame, features: list[str], rows: np.ndarray,
                         chunk: int) -> np.ndarray:
    """`pipeline.transform` of `rows` of the feature columns into one float32 array, `chunk` rows at a
    time: neither a copy of the table nor its float64 intermediates ever exist whole."""
    if len(rows) <= chunk:
        return _float32(pipeline.transform(df.iloc[rows][features]))
    first = _float32(pipeline.transform(df.iloc[rows[:chunk]][features]))
    out = np.empty((len(rows), first.shape[1]), dtype=np.float32)
    out[:chunk] = first
    for start in range(chunk, len(rows), chunk):
        block = rows[start:start + chunk]
        out[start:start + len(block)] = pipeline.transform(df.iloc[block][features])
    return out


def _check_passthrough(schema: Schema) -> None:
    for name in schema.features:
        column = schema.column(name)
        if column.type != "numeric":
            raise ValidationError(f"Column '{name}' is {column.type}; passthrough features are used as they are, "
                                  "so every one must be numeric.", code="bad_type", detail={"column": name})
        if column.missing:
            raise ValidationError(f"Column '{name}' is empty in {column.missing} rows; passthrough features are not "
                                  "imputed, so fill those values in.",
                                  code="missing_values", detail={"column": name, "rows": column.missing})


def _summary(df: pd.DataFrame, schema: Schema, classes: list | None, y: np.ndarray | None) -> dict:
    summary: dict[str, Any] = {
        "n_rows": len(df),
        "missing": {c.name: c.missing for c in schema.columns},
        "preview": [{str(k): _json_value(v) for k, v in row.items()}
                    for row in df.head(PREVIEW_ROWS).to_dict("records")],
    }
    if classes is not None and y is not None:
        counts = np.bincount(y, minlength=len(classes))
        summary["class_balance"] = {label: int(count) for label, count in zip(classes, counts)}
    return summary


def _json_value(value: Any) -> Any:
    """`value` as something json.dumps accepts: NaN/NaT -> None, dates -> ISO strings, numpy -> Python."""
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bool | int | str):
        return value
    return str(value)


# ---------------------------------------------------------------------------- predicting


def transform_rows(pipeline: Any, schema: Schema, rows: Sequence[Mapping[str, Any] | Sequence[Any]]) -> np.ndarray:
    """Raw rows (dicts keyed by feature name, or lists in `schema.features` order) -> float32 features.

    Keys naming a target or ignored column are dropped, so a row copied from the file works.
    """
    if not isinstance(rows, list | tuple) or not rows:
        raise ValidationError("rows must be a non-empty list of rows.", code="bad_input")
    features = schema.features
    known = {c.name for c in schema.columns}
    table: dict[str, list[Any]] = {name: [] for name in features}
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            missing = [f for f in features if f not in row]
            if missing:
                raise ValidationError(f"Row {i} has no value for {', '.join(repr(m) for m in missing)}; every row "
                                      f"needs: {', '.join(features)} (use null for an unknown value).",
                                      code="bad_input", detail={"row": i, "missing": missing})
            unknown = [str(k) for k in row if k not in known]
            if unknown:
                raise ValidationError(f"Row {i} has {', '.join(repr(u) for u in unknown)}, which the table has no "
                                      f"column for. The features are: {', '.join(features)}.",
                                      code="bad_input", detail={"row": i, "unknown": unknown})
            values = [row[f] for f in features]
        elif isinstance(row, list | tuple):
            if len(row) != len(features):
                raise ValidationError(f"Row {i} has {len(row)} values but there are {len(features)} features: "
                                      f"{', '.join(features)}.", code="bad_input", detail={"row": i})
            values = list(row)
        else:
            raise ValidationError(f"Row {i} must be an object keyed by column name or a list of values.",
                                  code="bad_input", detail={"row": i})
        for name, value in zip(features, values):
            table[name].append(_checked_value(value, schema.column(name), i, schema.passthrough))
    frame = pd.DataFrame({name: pd.Series(table[name], dtype=object) for name in features}, columns=features)
    if schema.passthrough:
        frame = frame.astype(float)
    X = np.asarray(pipeline.transform(frame), dtype=np.float64)
    # a number the row could hold may still leave float32's range once standardized (a small std)
    too_large = ~(np.abs(X) <= FLOAT32_MAX)
    if too_large.any():
        row, position = (int(i) for i in np.argwhere(too_large)[0])
        column = _feature_sources(pipeline, schema)[position][1]
        raise ValidationError(f"Row {row}, column '{column}': {table[column][row]!r} is too large for the model "
                              "once scaled as in training.", code="bad_input", detail={"row": row, "column": column})
    return _float32(X)


def _checked_value(value: Any, column: ColumnInfo, row: int, passthrough: bool) -> Any:
    def bad(expected: str) -> ValidationError:
        return ValidationError(f"Row {row}, column '{column.name}': expected {expected}, got {value!r}.",
                               code="bad_input", detail={"row": row, "column": column.name})

    if isinstance(value, str) and not value.strip():
        value = None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if passthrough:
            raise bad("a number (passthrough features cannot be missing)")
        return None
    if isinstance(value, Mapping | list | tuple):
        raise bad("a single value")
    if column.type == "numeric":
        if isinstance(value, bool | np.bool_):
            raise bad("a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
            if isinstance(value, str) and column.number_format:  # "1,234.5", "58%", "€ 12" as in the file
                from livetrain.data.reading import to_number

                number = to_number(value, column.number_format)
            if math.isnan(number):
                raise bad("a number") from None
        if not abs(number) <= FLOAT32_MAX:  # also NaN and infinity
            raise bad(f"a finite number between {-FLOAT32_MAX:.3g} and {FLOAT32_MAX:.3g}")
        return number
    if column.type == "boolean" and _boolean_value(value) is None:
        raise bad("true/false, yes/no or 1/0")
    if column.type == "datetime":
        if pd.isna(pd.to_datetime(pd.Series([str(value)], dtype=object), format="mixed", errors="coerce",
                                  utc=True).iloc[0]):
            raise bad("a date such as 2024-01-31")
    return value


# ---------------------------------------------------------------------------- identity


def dataset_hash(df: pd.DataFrame) -> str:
    """sha256 hex of the column names and every cell, in order (same data -> same hash)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, df.columns)).encode("utf-8"))
    digest.update(str(df.shape).encode("ascii"))
    rows = pd.util.hash_pandas_object(df, index=False).to_numpy(dtype=np.uint64)
    digest.update(np.ascontiguousarray(rows).tobytes())
    return digest.hexdigest()
