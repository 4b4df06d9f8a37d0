"""CSV/DataFrame -> training arrays: reading, inference, splitting, leakage-free preprocessing, prediction."""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from livetrain.data import tabular
from livetrain.data.tabular import (
    Schema,
    dataset_hash,
    infer_schema,
    prepare_table,
    read_csv,
    split_indices,
    transform_rows,
)
from livetrain.errors import ValidationError


def mixed_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small customer table with one column of each kind and a yes/no target."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + n),
        "age": rng.integers(18, 80, n).astype(float),
        "color": rng.choice(["red", "green", "blue"], n),
        "member": rng.choice(["yes", "no"], n),
        "joined": pd.date_range("2021-01-01", periods=n, freq="7D").strftime("%Y-%m-%d"),
        "comment": [f"customer {i} wrote something long and different" for i in range(n)],
        "churned": np.where(np.arange(n) % 3 == 0, "yes", "no"),
    })


# the calendar features a date column without times of day becomes
JOINED = ["joined.year", "joined.month", "joined.month_sin", "joined.month_cos", "joined.day_of_week",
          "joined.day_of_week_sin", "joined.day_of_week_cos", "joined.day_of_year_sin", "joined.day_of_year_cos"]


def as_csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def expect_error(code: str, fn, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


def numeric_frame(n: int = 40, classes: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "label": np.arange(n) % classes})


# ---------------------------------------------------------------------------- reading


@pytest.mark.parametrize(("data", "code", "words"), [
    (b"a,b,c\n1,2,3\n4,5,6,7\n", "malformed_csv", ["Line 3", "4 fields", "header has 3"]),
    (b"a,b,c\n1,2,3\n4,5\n", "malformed_csv", ["Line 3", "2 fields"]),
    (b"a,b\n1,\"2\n", "malformed_csv", []),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "malformed_csv", ["binary"]),
    (b"", "empty_dataset", ["empty"]),
    (b"  \n\n", "empty_dataset", ["empty"]),
    (b"a,b,c\n", "empty_dataset", ["no data rows"]),
    (b"a,b,a\n1,2,3\n", "duplicate_columns", ["'a'"]),
])
def test_read_csv_rejects_bad_files(data, code, words):
    error = expect_error(code, read_csv, data)
    for word in words:
        assert word in error.message


def test_read_csv_decodes_latin1_and_drops_the_byte_order_mark():
    latin = "city,temp\nCaf\xe9 town,3\nK\xf6ln,4\n".encode("latin-1")
    assert read_csv(latin)["city"].tolist() == ["Caf\xe9 town", "K\xf6ln"]
    with_bom = "\ufeffa,b\n1,2\n".encode()
    df = read_csv(with_bom)
    assert list(df.columns) == ["a", "b"]
    assert df["a"].tolist() == [1]


def test_read_csv_caps_rows():
    data = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(20))
    assert len(read_csv(data, max_rows=20)) == 20
    error = expect_error("too_many_rows", read_csv, data, max_rows=19)
    assert "19" in error.message


def test_too_few_rows_to_split_says_how_many():
    error = expect_error("empty_dataset", prepare_table, numeric_frame(9))
    assert "9 rows" in error.message


# ---------------------------------------------------------------------------- inference


def test_infers_each_kind_of_column_from_a_csv():
    df = mixed_frame()
    df.loc[[2, 5], "age"] = np.nan
    df.loc[[1, 4], "member"] = np.nan
    schema = infer_schema(read_csv(as_csv(df)))
    got = {c.name: (c.type, c.role) for c in schema.columns}
    assert got == {
        "customer_id": ("numeric", "ignored"),
        "age": ("numeric", "feature"),
        "color": ("categorical", "feature"),
        "member": ("boolean", "feature"),
        "joined": ("datetime", "feature"),
        "comment": ("text", "ignored"),
        "churned": ("boolean", "target"),
    }
    notes = {c.name: c.note for c in schema.columns}
    assert notes["customer_id"] == "identifier-like: every value distinct"
    assert notes["comment"] == "free text is left out"
    assert schema.task == "classification"
    assert schema.targets == ["churned"]
    assert schema.features == ["age", "color", "member", "joined"]
    age, color = schema.column("age"), schema.column("color")
    assert (age.missing, color.missing, color.unique) == (2, 0, 3)


def test_python_booleans_and_true_false_words_are_boolean():
    df = pd.DataFrame({"flag": [True, False, None] * 4, "word": ["TRUE", "false", "True"] * 4, "y": range(12)})
    schema = infer_schema(df)
    assert schema.column("flag").type == "boolean"
    assert schema.column("word").type == "boolean"


def test_zero_one_columns_stay_numeric():
    df = pd.DataFrame({"bit": [0, 1, 1] * 4, "y": np.linspace(0, 1, 12)})
    assert infer_schema(df).column("bit").type == "numeric"


def test_day_first_dates_are_read_as_dates_and_version_strings_are_not():
    df = pd.DataFrame({"day": ["01/02/2021", "15/03/2021", "28/12/2020"] * 5,
                       "version": ["1.2.3", "1.2.4", "2.0.0"] * 5, "y": [0, 1, 1] * 5})
    schema = infer_schema(df)
    assert (schema.column("day").type, schema.column("version").type) == ("datetime", "categorical")
    prepared = prepare_table(df)
    # the file's format is day-first, so 01/02/2021 is the 1st of February, however it is typed later
    out = transform_rows(prepared.pipeline, prepared.schema, [
        {"day": "01/02/2021", "version": "1.2.3"}, {"day": "2021-02-01", "version": "1.2.3"},
        {"day": "1 Feb 2021", "version": "1.2.3"}, {"day": "02/01/2021", "version": "1.2.3"},
    ])
    day = [prepared.feature_names.index(name) for name in prepared.schema.column("day").features]
    assert out[0, day].tolist() == out[1, day].tolist() == out[2, day].tolist() != out[3, day].tolist()


def test_overrides_win_and_are_recorded():
    df = mixed_frame()
    types = {"age": "categorical", "member": "ignored", "customer_id": "numeric"}
    schema = infer_schema(df, target="churned", types=types)
    age, member, cid = schema.column("age"), schema.column("member"), schema.column("customer_id")
    assert (age.type, age.inferred, age.role) == ("categorical", "numeric", "feature")
    assert (member.role, member.note) == ("ignored", "left out by request")
    # an explicit type is a request to use the column, even one that looks like an identifier
    assert cid.role == "feature"
    assert schema.features == ["customer_id", "age", "color", "joined"]


def test_text_override_to_categorical_makes_it_a_feature():
    df = mixed_frame()
    schema = infer_schema(df, types={"comment": "categorical"})
    assert "comment" in schema.features


@pytest.mark.parametrize(("types", "code", "words"), [
    ({"age": "float"}, "bad_type", ["'float'", "age", "numeric"]),
    ({"color": "numeric"}, "bad_type", ["color", "is not a number"]),
    ({"color": "boolean"}, "bad_type", ["color"]),
    ({"comment": "datetime"}, "bad_type", ["comment", "is not a date"]),
    ({"colour": "categorical"}, "unknown_column", ["'colour'", "age, color"]),
    ({"churned": "ignored"}, "bad_type", ["churned", "target"]),
])
def test_bad_overrides(types, code, words):
    error = expect_error(code, infer_schema, mixed_frame(), types=types)
    for word in words:
        assert word in error.message


def test_numeric_override_names_the_offending_value():
    df = pd.DataFrame({"size": ["1", "2", "three"] * 4, "y": range(12)})
    error = expect_error("bad_type", infer_schema, df, types={"size": "numeric"})
    assert "'three'" in error.message


def test_unknown_target_lists_the_columns():
    error = expect_error("unknown_column", infer_schema, mixed_frame(), target="churn")
    assert "'churn'" in error.message
    assert error.detail["columns"] == list(mixed_frame().columns)


def test_single_class_target():
    df = numeric_frame(20)
    df["label"] = "spam"
    error = expect_error("single_class_target", infer_schema, df)
    assert "label" in error.message and "'spam'" in error.message


def test_missing_target_values_are_rejected_not_dropped():
    df = mixed_frame(30)
    df.loc[[3, 7], "churned"] = np.nan
    error = expect_error("missing_target", prepare_table, read_csv(as_csv(df)))
    assert "churned" in error.message and "2 of 30 rows" in error.message
    assert error.detail == {"column": "churned", "rows": 2}


def test_all_missing_column_suggests_ignoring_it():
    data = b"a,notes,y\n" + b"".join(b"%d,,%d\n" % (i, i % 2) for i in range(12))
    df = read_csv(data)
    error = expect_error("all_missing_column", prepare_table, df)
    assert "'notes'" in error.message and '"notes": "ignored"' in error.message
    assert prepare_table(df, types={"notes": "ignored"}).schema.features == ["a"]


def test_no_features_left():
    df = mixed_frame()[["customer_id", "comment", "churned"]]
    expect_error("no_features", infer_schema, df)


def test_duplicate_columns_in_a_frame():
    df = pd.DataFrame([[1, 2, 3]] * 12, columns=["a", "a", "y"])
    expect_error("duplicate_columns", infer_schema, df)


@pytest.mark.parametrize(("y", "task"), [
    (np.arange(40) % 4, "classification"),  # few integers: class labels
    (np.arange(40) % 25, "regression"),  # many integers: a count
    (np.linspace(0, 1, 40), "regression"),
    (np.where(np.arange(40) % 2, "cat", "dog"), "classification"),
])
def test_task_inference(y, task):
    df = pd.DataFrame({"x": np.arange(40.0), "y": y})
    assert infer_schema(df).task == task


def test_explicit_task_wins_and_nonsense_is_explained():
    df = pd.DataFrame({"x": np.arange(60.0), "y": np.arange(60) % 25, "f": np.linspace(0, 1, 60),
                       "s": ["a", "b"] * 30})
    assert infer_schema(df, target="y", task="classification").task == "classification"
    error = expect_error("bad_type", infer_schema, df, target="f", task="classification")
    assert "'f'" in error.message and "regression" in error.message
    error = expect_error("bad_type", infer_schema, df, target="s", task="regression")
    assert "numeric target" in error.message
    expect_error("bad_type", infer_schema, df, task="clustering")
    expect_error("bad_type", infer_schema, df, target=["x", "f"], task="classification")
    expect_error("bad_type", infer_schema, df, target=["x", "s"])


def test_schema_round_trips_through_a_dict():
    schema = infer_schema(mixed_frame())
    again = Schema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema


# ---------------------------------------------------------------------------- splitting


def test_split_is_stratified():
    y = np.array(["a"] * 100 + ["b"] * 60 + ["c"] * 40)
    train, val, test = split_indices(y, "classification", (0.7, 0.15, 0.15), seed=3)
    assert len(train) + len(val) + len(test) == 200
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(200))
    for part, fraction in ((train, 0.7), (val, 0.15), (test, 0.15)):
        for label, total in (("a", 100), ("b", 60), ("c", 40)):
            assert abs(np.sum(y[part] == label) - total * fraction) <= 1


def test_uneven_classes_stay_within_a_row_of_their_share():
    y = np.array([0] * 37 + [1] * 23 + [2] * 11)
    train, val, test = split_indices(y, "classification", (0.6, 0.2, 0.2), seed=0)
    for part, fraction in ((train, 0.6), (val, 0.2), (test, 0.2)):
        for label, total in ((0, 37), (1, 23), (2, 11)):
            assert abs(np.sum(y[part] == label) - total * fraction) <= 1


def test_split_is_deterministic_per_seed():
    y = np.arange(100) % 2
    first = split_indices(y, "classification", seed=7)
    again = split_indices(y, "classification", seed=7)
    other = split_indices(y, "classification", seed=8)
    for a, b in zip(first, again):
        assert a.tolist() == b.tolist()
    assert first[2].tolist() != other[2].tolist()
    reg_a = split_indices(np.linspace(0, 1, 50), "regression", seed=1)
    reg_b = split_indices(np.linspace(0, 1, 50), "regression", seed=1)
    assert [p.tolist() for p in reg_a] == [p.tolist() for p in reg_b]


def test_small_tables_still_get_three_non_empty_parts():
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    train, val, test = split_indices(y, "classification", (0.7, 0.15, 0.15), seed=0)
    assert min(len(train), len(val), len(test)) >= 1
    assert len(train) + len(val) + len(test) == 10
    parts = split_indices(np.arange(10.0), "regression", (0.98, 0.01, 0.01))
    assert [len(p) for p in parts] == [8, 1, 1]


@pytest.mark.parametrize("fractions", [(0.7, 0.3), (0.8, 0.2, 0.0), (0.5, 0.3, 0.3), (1.2, -0.1, -0.1), ("a", 1, 1)])
def test_bad_fractions(fractions):
    error = expect_error("bad_split", split_indices, np.arange(20) % 2, "classification", fractions)
    assert "add up to 1" in error.message


def test_a_class_with_one_row_is_named():
    df = numeric_frame(30)
    df["label"] = ["common"] * 29 + ["rare"]
    error = expect_error("too_few_per_class", prepare_table, df)
    assert "'rare'" in error.message


# ---------------------------------------------------------------------------- preparing


def leak_frame() -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A frame whose val/test rows are far from the training rows, so fitting on them would show."""
    n = 100
    y = np.arange(n) % 2
    parts = split_indices(y, "classification", (0.7, 0.15, 0.15), seed=5)
    train, val, test = parts
    x = np.random.default_rng(0).normal(10.0, 1.0, n)
    x[val] += 1000.0
    x[test] += 5000.0
    shade = np.array(["dark", "light"])[np.arange(n) % 2]
    shade[test] = "neon"  # a category that only the test rows have
    x[train[:3]] = np.nan
    return pd.DataFrame({"x": x, "shade": shade, "label": y}), parts


def test_preprocessing_is_fitted_on_training_rows_only():
    df, (train, val, test) = leak_frame()
    prepared = prepare_table(df, seed=5)
    assert prepared.indices == {"train": train.tolist(), "val": val.tolist(), "test": test.tolist()}
    numeric = prepared.pipeline.named_transformers_["numeric"]
    train_x = df["x"].iloc[train]
    assert numeric.named_steps["impute"].statistics_[0] == pytest.approx(train_x.median())
    assert numeric.named_steps["scale"].mean_[0] == pytest.approx(train_x.fillna(train_x.median()).mean())
    assert numeric.named_steps["scale"].mean_[0] < 12  # the mean over all rows would be about 900
    assert prepared.feature_names == ["x", "shade=dark", "shade=light"]  # "neon" was never seen in training
    x_col = prepared.feature_names.index("x")
    assert abs(prepared.X_train[:, x_col].mean()) < 0.1
    assert prepared.X_test[:, x_col].min() > 1000  # held-out rows scaled with training statistics
    assert prepared.X_test[:, 1:].sum() == 0  # unseen category: all-zero one-hot


def test_prepared_arrays_have_the_documented_shapes_and_dtypes():
    df = read_csv(as_csv(mixed_frame(80)))
    prepared = prepare_table(df, seed=1)
    assert prepared.X_train.dtype == np.float32 and prepared.X_train.flags.c_contiguous
    assert prepared.y_train.dtype == np.int64
    assert prepared.classes == [False, True]
    assert len(prepared.X_train) + len(prepared.X_val) + len(prepared.X_test) == 80
    assert prepared.X_train.shape[1] == len(prepared.feature_names)
    assert prepared.feature_names == ["age", "color=blue", "color=green", "color=red", "member", *JOINED]
    churned = df["churned"].to_numpy() == "yes"
    assert prepared.y_train.tolist() == churned[prepared.indices["train"]].astype(int).tolist()
    assert prepared.summary["class_balance"] == {False: int((~churned).sum()), True: int(churned.sum())}
    assert (prepared.split_seed, prepared.fractions) == (1, (0.7, 0.15, 0.15))


def test_summary_is_json_safe():
    df = mixed_frame(20)
    df.loc[0, "age"] = np.nan
    df["when"] = pd.date_range("2024-05-01", periods=20, freq="h")
    prepared = prepare_table(df, target="churned")
    text = json.dumps(prepared.summary, allow_nan=False)
    summary = json.loads(text)
    assert summary["n_rows"] == 20
    assert len(summary["preview"]) == 10
    assert summary["preview"][0]["age"] is None
    assert summary["preview"][1]["when"] == "2024-05-01T01:00:00"
    assert summary["missing"]["age"] == 1


def test_string_labels_become_sorted_class_indices():
    df = numeric_frame(30)
    df["label"] = np.array(["cat", "dog", "ant"])[np.arange(30) % 3]
    prepared = prepare_table(df)
    assert prepared.classes == ["ant", "cat", "dog"]
    expected = df["label"].map({"ant": 0, "cat": 1, "dog": 2}).to_numpy()
    assert prepared.y_test.tolist() == expected[prepared.indices["test"]].tolist()


def test_regression_target_is_standardized_with_training_statistics():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=60), "price": rng.normal(500.0, 80.0, 60)})
    prepared = prepare_table(df)
    train = prepared.indices["train"]
    mean, std = df["price"].iloc[train].mean(), df["price"].iloc[train].std(ddof=0)
    assert prepared.target_mean == pytest.approx([mean])
    assert prepared.target_std == pytest.approx([std])
    assert prepared.y_train.dtype == np.float32 and prepared.y_train.shape == (len(train),)
    assert prepared.y_train.mean() == pytest.approx(0.0, abs=1e-5)
    assert prepared.y_train.std() == pytest.approx(1.0, abs=1e-5)
    test_prices = df["price"].iloc[prepared.indices["test"]].to_numpy()
    np.testing.assert_allclose(prepared.y_test * std + mean, test_prices, rtol=1e-5)
    assert prepared.classes is None and "class_balance" not in prepared.summary


def test_multi_output_regression_target():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=50), "a": rng.normal(5, 2, 50), "b": rng.normal(-3, 0.5, 50)})
    prepared = prepare_table(df, target=["a", "b"])
    assert prepared.schema.task == "regression" and prepared.schema.targets == ["a", "b"]
    assert prepared.y_train.shape == (len(prepared.indices["train"]), 2)
    assert prepared.y_test.shape == (len(prepared.indices["test"]), 2)
    assert prepared.target_mean == pytest.approx(df[["a", "b"]].iloc[prepared.indices["train"]].mean().tolist())
    np.testing.assert_allclose(prepared.y_train.mean(axis=0), [0, 0], atol=1e-5)


def test_many_categories_are_ordinal_encoded():
    n = 1000  # 40 distinct values is within 5% of the rows, so inference says categorical
    df = pd.DataFrame({"town": [f"town{i % 40}" for i in range(n)], "x": np.arange(n, dtype=float),
                       "y": np.arange(n) % 2})
    prepared = prepare_table(df)
    assert prepared.schema.column("town").type == "categorical"
    assert "ordinal" in prepared.pipeline.named_transformers_
    assert prepared.feature_names == ["x", "town"]
    rows = transform_rows(prepared.pipeline, prepared.schema, [{"town": "atlantis", "x": 3}])
    encoder = prepared.pipeline.named_transformers_["ordinal"].named_steps
    assert rows[0, 1] == pytest.approx((-1 - encoder["scale"].mean_[0]) / encoder["scale"].scale_[0])


def test_passthrough_uses_values_as_they_are():
    df = pd.DataFrame({"d0": np.arange(30) % 10, "d1": (np.arange(30) * 7) % 10, "n": np.arange(30) * 1.5})
    prepared = prepare_table(df, target="n", passthrough=True)
    assert prepared.schema.passthrough
    assert prepared.X_train.tolist() == df[["d0", "d1"]].iloc[prepared.indices["train"]].to_numpy().tolist()
    assert transform_rows(prepared.pipeline, prepared.schema, [[4, 2]]).tolist() == [[4.0, 2.0]]
    bad = df.assign(d1=np.where(np.arange(30) % 2, "x", "y"))
    error = expect_error("bad_type", prepare_table, bad, target="n", passthrough=True)
    assert "'d1'" in error.message


# ---------------------------------------------------------------------------- predicting


def test_transform_rows_matches_the_pipeline_on_raw_values():
    df = mixed_frame(80)
    df.loc[[0, 1, 2, 3], "age"] = np.nan
    df = read_csv(as_csv(df))
    prepared = prepare_table(df)
    test = prepared.indices["test"]
    rows = [{k: (None if pd.isna(v) else v) for k, v in row.items()}
            for row in df.iloc[test][prepared.schema.features].to_dict("records")]
    np.testing.assert_allclose(transform_rows(prepared.pipeline, prepared.schema, rows), prepared.X_test, rtol=1e-6)
    as_lists = [[row[f] for f in prepared.schema.features] for row in rows]
    np.testing.assert_allclose(transform_rows(prepared.pipeline, prepared.schema, as_lists), prepared.X_test,
                               rtol=1e-6)


def test_transform_rows_on_typed_values_and_unknown_categories():
    df = read_csv(as_csv(mixed_frame(80)))
    prepared = prepare_table(df)
    typed = {"age": "31", "color": "purple", "member": "YES", "joined": "2021-03-01", "churned": "no"}
    out = transform_rows(prepared.pipeline, prepared.schema, [typed])
    assert out.dtype == np.float32 and out.shape == (1, 5 + len(JOINED))
    names = prepared.feature_names
    color = [i for i, name in enumerate(names) if name.startswith("color=")]
    assert out[0, color].tolist() == [0.0, 0.0, 0.0]
    assert out[0, names.index("member")] == 1.0
    scaler = prepared.pipeline.named_transformers_["numeric"].named_steps["scale"]
    assert out[0, names.index("age")] == pytest.approx((31 - scaler.mean_[0]) / scaler.scale_[0], rel=1e-5)
    imputed = transform_rows(prepared.pipeline, prepared.schema, [{**typed, "age": None}])
    median = prepared.pipeline.named_transformers_["numeric"].named_steps["impute"].statistics_[0]
    assert imputed[0, names.index("age")] == pytest.approx((median - scaler.mean_[0]) / scaler.scale_[0], rel=1e-5)


@pytest.mark.parametrize(("row", "words"), [
    ({"age": 31, "color": "red", "member": "yes"}, ["'joined'"]),
    ({"age": 31, "color": "red", "member": "yes", "joined": "2021-01-01", "colour": "red"}, ["'colour'"]),
    ({"age": "thirty", "color": "red", "member": "yes", "joined": "2021-01-01"}, ["'age'", "number", "'thirty'"]),
    ({"age": True, "color": "red", "member": "yes", "joined": "2021-01-01"}, ["'age'"]),
    ({"age": 31, "color": "red", "member": "maybe", "joined": "2021-01-01"}, ["'member'"]),
    ({"age": 31, "color": "red", "member": "no", "joined": "someday"}, ["'joined'"]),
    ([31, "red", "yes"], ["3 values", "4 features"]),
    ("age=31", ["Row 0"]),
])
def test_transform_rows_rejects_bad_input(row, words):
    prepared = prepare_table(read_csv(as_csv(mixed_frame(40))))
    error = expect_error("bad_input", transform_rows, prepared.pipeline, prepared.schema, [row])
    for word in words:
        assert word in error.message


@pytest.mark.parametrize("passthrough", [False, True])
def test_a_number_that_would_become_infinite_as_float32_is_refused(passthrough):
    # models take float32: 1e39 overflows it as it is, 1e37 once divided by this column's tiny spread
    df = pd.DataFrame({"tiny": np.arange(40) * 1e-6, "y": np.arange(40) % 2})
    prepared = prepare_table(df, target="y", passthrough=passthrough)
    for value in (1e39, -1e39) + (() if passthrough else (1e37,)):
        error = expect_error("bad_input", transform_rows, prepared.pipeline, prepared.schema,
                             [{"tiny": 0.0}, {"tiny": value}])
        assert "Row 1, column 'tiny'" in error.message and error.detail == {"row": 1, "column": "tiny"}
    assert np.isfinite(transform_rows(prepared.pipeline, prepared.schema, [{"tiny": 1e30}])).all()  # large is fine


def test_fitted_pipeline_survives_a_joblib_round_trip():
    prepared = prepare_table(read_csv(as_csv(mixed_frame(60))))
    buffer = io.BytesIO()
    joblib.dump(prepared.pipeline, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    rows = [{"age": 44, "color": "blue", "member": "no", "joined": "2021-06-30"},
            {"age": None, "color": None, "member": None, "joined": None}]
    expected = transform_rows(prepared.pipeline, prepared.schema, rows)
    np.testing.assert_array_equal(transform_rows(loaded, prepared.schema, rows), expected)


# ---------------------------------------------------------------------------- dates as calendar features


def daily(start: str = "2018-01-01", end: str = "2021-12-31") -> pd.DatetimeIndex:
    return pd.date_range(start, end, freq="D")


def test_a_class_that_depends_on_the_month_is_learned_by_a_linear_model():
    days = daily()  # four years, so the season repeats and the split sees every month
    df = pd.DataFrame({"day": days.strftime("%Y-%m-%d"),
                       "season": np.where(days.month.isin([5, 6, 7, 8]), "summer", "rest")})
    prepared = prepare_table(df, target="season")
    model = LogisticRegression(max_iter=1000).fit(prepared.X_train, prepared.y_train)
    # one timestamp number scores 0.66 here, what always answering "rest" scores
    assert model.score(prepared.X_test, prepared.y_test) >= 0.95
    # a year the training rows never saw has the same seasons
    rows = transform_rows(prepared.pipeline, prepared.schema, [{"day": "2024-07-15"}, {"day": "2024-01-15"}])
    assert [prepared.classes[i] for i in model.predict(rows)] == ["summer", "rest"]


def test_a_value_that_depends_on_the_day_of_the_week_is_learned_by_a_linear_model():
    days = daily()
    sales = 100 + 30 * (days.day_of_week >= 5) + np.random.default_rng(0).normal(0, 5, len(days))
    prepared = prepare_table(pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "sales": sales}))
    model = Ridge().fit(prepared.X_train, prepared.y_train)
    assert model.score(prepared.X_test, prepared.y_test) >= 0.6  # one timestamp number: R² about 0


def test_a_value_that_depends_on_the_hour_of_the_day_is_learned_by_a_linear_model():
    at = pd.date_range("2021-01-01", periods=3000, freq="77min")
    hours = at.hour + at.minute / 60
    load = 50 + 20 * np.sin(2 * np.pi * (hours - 9) / 24) + np.random.default_rng(0).normal(0, 3, len(at))
    prepared = prepare_table(pd.DataFrame({"at": at.strftime("%Y-%m-%d %H:%M"), "load": load}))
    model = Ridge().fit(prepared.X_train, prepared.y_train)
    assert model.score(prepared.X_test, prepared.y_test) >= 0.9  # one timestamp number: R² about 0
    assert "at.hour_sin" in prepared.feature_names


def test_each_date_column_lists_the_features_made_from_it_with_hours_only_when_it_has_times():
    n = 30
    df = pd.DataFrame({
        "joined": daily(end="2018-01-30").strftime("%Y-%m-%d"),
        "seen": pd.date_range("2020-03-01 08:15", periods=n, freq="5h").strftime("%Y-%m-%d %H:%M"),
        "midnight": daily(end="2018-01-30").strftime("%Y-%m-%d 00:00:00"),  # a time, always the same: no hours
        "x": np.arange(n, dtype=float),
    })
    prepared = prepare_table(df, target="x")
    hours = ["seen.hour", "seen.hour_sin", "seen.hour_cos"]
    seen = [name.replace("joined", "seen") for name in JOINED] + hours
    midnight = [name.replace("joined", "midnight") for name in JOINED]
    made = {c.name: c.features for c in prepared.schema.columns}
    assert made == {"joined": JOINED, "seen": seen, "midnight": midnight, "x": None}
    assert prepared.feature_names == JOINED + seen + midnight
    assert prepared.X_train.shape[1] == len(prepared.feature_names) == 9 + 12 + 9
    again = Schema.from_dict(json.loads(json.dumps(prepared.schema.to_dict())))
    assert again.column("seen").features == seen


def test_calendar_features_are_read_in_utc_and_a_missing_date_is_imputed():
    df = pd.DataFrame({"at": pd.date_range("2021-01-01 06:00", periods=40, freq="11h").strftime("%Y-%m-%dT%H:%M"),
                       "y": np.arange(40) % 2})
    prepared = prepare_table(df)
    names = prepared.feature_names
    steps = prepared.pipeline.named_transformers_["datetime"].named_steps
    raw = transform_rows(prepared.pipeline, prepared.schema, [
        {"at": "2023-12-31T23:30:00-02:00"},  # 01:30 on New Year's Day in UTC
        {"at": None},
    ]) * steps["scale"].scale_ + steps["scale"].mean_
    year, month, hour = (names.index(f"at.{part}") for part in ("year", "month", "hour"))
    assert raw[0, [month, hour]] == pytest.approx([1, 1.5], abs=1e-4)
    assert raw[0, year] == pytest.approx(2024 + 1.5 / 24 / 366, abs=1e-3)  # 2024 is a leap year
    assert raw[1] == pytest.approx(steps["impute"].statistics_, rel=1e-5)  # each feature's training median


def test_a_pipeline_stored_with_one_timestamp_number_still_loads_and_transforms():
    # What datasets stored before calendar features hold: the pipeline build_pipeline made then, and
    # the schema as JSON without the columns' "features".
    df = read_csv(as_csv(mixed_frame(60)))
    old = ColumnTransformer([("datetime", Pipeline([
        ("to_seconds", FunctionTransformer(tabular._unix_seconds, kw_args={"formats": ["ISO8601"]})),
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
    ]), ["joined"])], remainder="drop", sparse_threshold=0.0).fit(df[["joined"]])
    buffer = io.BytesIO()
    joblib.dump(old, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    schema = Schema.from_dict({
        "columns": [{"name": "joined", "type": "datetime", "role": "feature", "missing": 0, "unique": 60,
                     "inferred": "datetime", "note": None, "added_later": True},
                    {"name": "churned", "type": "boolean", "role": "target", "missing": 0, "unique": 2,
                     "inferred": "boolean", "note": None}],
        "targets": ["churned"], "task": "classification", "features": ["joined"]})
    assert schema.column("joined").features is None
    seconds = (pd.to_datetime(df["joined"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    out = transform_rows(loaded, schema, [{"joined": "2021-06-30"}, {"joined": None}])
    expected = (np.array([pd.Timestamp("2021-06-30", tz="UTC").timestamp(), seconds.median()]) - seconds.mean())
    np.testing.assert_allclose(out[:, 0], expected / seconds.std(ddof=0), rtol=1e-5)
    assert tabular._feature_names(loaded, schema) == ["joined"]


# ---------------------------------------------------------------------------- identity


def test_dataset_hash_is_stable_and_sensitive_to_one_cell():
    data = as_csv(mixed_frame(30))
    first, again = read_csv(data), read_csv(data)
    digest = dataset_hash(first)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert dataset_hash(again) == digest
    changed = again.copy()
    changed.loc[17, "color"] = "mauve"
    assert dataset_hash(changed) != digest
    nudged = again.copy()
    nudged.loc[3, "age"] += 1
    assert dataset_hash(nudged) != digest
    assert dataset_hash(again.rename(columns={"age": "years"})) != digest


def test_a_big_training_split_fits_on_a_sample_but_keeps_every_category_and_row():
    rng = np.random.default_rng(11)
    n = 1200
    frame = pd.DataFrame({"x": rng.normal(50, 10, n), "color": rng.choice(["red", "blue"], n),
                          "label": rng.choice(["a", "b"], n)})
    frame.loc[n - 1, "color"] = "violet"  # one rare category, most likely outside a 100-row sample
    whole = prepare_table(frame, target="label")
    sampled = prepare_table(frame, target="label", fit_rows=100)
    assert whole.schema.fitted_on_rows is None and sampled.schema.fitted_on_rows == 100
    assert sampled.schema.to_dict()["fitted_on_rows"] == 100
    assert sampled.X_train.shape == whole.X_train.shape and sampled.X_test.shape == whole.X_test.shape
    assert sampled.feature_names == whole.feature_names and "color=violet" in sampled.feature_names
    np.testing.assert_array_equal(sampled.y_train, whole.y_train)
    # the sample's mean and scale are close to all rows', so the features are nearly the same numbers
    x = sampled.feature_names.index("x")
    assert abs(sampled.X_train[:, x].mean()) < 0.3 and 0.8 < sampled.X_train[:, x].std() < 1.2
    # transformed a block of 100 rows at a time, into the same array a single transform gives
    np.testing.assert_allclose(sampled.X_train, sampled.pipeline.transform(frame.iloc[sampled.indices["train"]]
                                                                           [sampled.schema.features]), rtol=1e-6)
