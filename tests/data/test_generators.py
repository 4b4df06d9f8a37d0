"""Synthetic datasets: documented columns, exact semiprimes, seeded determinism, parameter validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from livetrain.data.generators import GENERATORS, encode_number, generate, generator_catalog, semiprimes
from livetrain.data.tabular import prepare_table
from livetrain.errors import ValidationError


def is_prime(k: int) -> bool:
    return k > 1 and all(k % d for d in range(2, math.isqrt(k) + 1))


def brute_semiprimes(low: int, high: int) -> list[tuple[int, int, int]]:
    """Every n in [low, high] whose smallest factor p leaves a prime n // p, by trial division."""
    found = []
    for n in range(max(low, 2), high + 1):
        p = next((d for d in range(2, math.isqrt(n) + 1) if n % d == 0), None)
        if p is not None and is_prime(n // p):
            found.append((n, p, n // p))
    return found


def expect_bad_parameter(kind: str, params: dict, field: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        generate(kind, params)
    assert info.value.code == "bad_parameter"
    assert info.value.detail["field"] == field
    assert field in info.value.message
    return info.value


# ---------------------------------------------------------------------------- number theory


def test_semiprimes_match_trial_division():
    assert semiprimes(4, 3000) == brute_semiprimes(4, 3000)
    assert semiprimes(990, 1010) == brute_semiprimes(990, 1010)
    assert semiprimes(0, 15) == [(4, 2, 2), (6, 2, 3), (9, 3, 3), (10, 2, 5), (14, 2, 7), (15, 3, 5)]
    assert semiprimes(24, 25) == [(25, 5, 5)]
    assert semiprimes(10, 5) == []


@pytest.mark.parametrize(("n", "n_digits", "digits"), [
    (2021, 4, [2, 0, 2, 1]),
    (7, 4, [0, 0, 0, 7]),
    (0, 3, [0, 0, 0]),
    (9999, 4, [9, 9, 9, 9]),
])
def test_encode_number(n, n_digits, digits):
    assert encode_number(n, n_digits) == digits


@pytest.mark.parametrize(("n", "n_digits"), [(10000, 4), (-1, 4), (3.5, 4), (True, 4)])
def test_encode_number_rejects_what_does_not_fit(n, n_digits):
    with pytest.raises(ValidationError) as info:
        encode_number(n, n_digits)
    assert info.value.code == "bad_input"


# ---------------------------------------------------------------------------- factorization


def test_factorization_rows_are_exactly_the_semiprimes():
    made = generate("factorization", {})
    frame = made.frame
    assert list(frame.columns) == ["d0", "d1", "d2", "d3", "p", "q"]
    assert (made.target, made.task, made.passthrough) == (["p", "q"], "regression", True)
    n = frame[["d0", "d1", "d2", "d3"]].to_numpy() @ np.array([1000, 100, 10, 1])
    assert n.tolist() == [row[0] for row in brute_semiprimes(4, 9999)]
    assert np.all(frame["p"] * frame["q"] == n)
    assert np.all(frame["p"] <= frame["q"])
    assert all(is_prime(int(v)) for v in pd.unique(frame[["p", "q"]].to_numpy().ravel()))
    row_2021 = frame[n == 2021]
    assert row_2021[["d0", "d1", "d2", "d3", "p", "q"]].to_numpy().tolist() == [[2, 0, 2, 1, 43, 47]]
    assert 12 not in n and 2020 not in n
    assert made.meta == {"kind": "factorization", "n_digits": 4, "low": 4, "high": 9999, "count": len(frame)}
    assert len(frame) == 2625


def test_factorization_range_sets_digits_and_bounds():
    made = generate("factorization", {"low": 100, "high": 500})
    assert made.meta["n_digits"] == 3
    assert list(made.frame.columns) == ["d0", "d1", "d2", "p", "q"]
    n = made.frame["p"] * made.frame["q"]
    assert n.min() >= 100 and n.max() <= 500
    assert len(made.frame) == len(brute_semiprimes(100, 500))


def test_factorization_table_prepares_with_passthrough_digits():
    made = generate("factorization", {"low": 4, "high": 999})
    prepared = prepare_table(made.frame, target=made.target, passthrough=made.passthrough)
    assert prepared.schema.features == ["d0", "d1", "d2"]
    assert prepared.y_train.shape == (len(prepared.indices["train"]), 2)
    first = prepared.indices["train"][0]
    assert prepared.X_train[0].tolist() == made.frame.iloc[first][["d0", "d1", "d2"]].astype(float).tolist()


@pytest.mark.parametrize(("params", "field"), [
    ({"low": 500, "high": 100}, "low"),
    ({"low": 4, "high": 20}, "high"),  # only 7 semiprimes: too few to split
    ({"high": 10**7 + 1}, "high"),
    ({"high": 10**7}, "high"),  # about 1.9 million rows x 8 digits: over the cell limit
    ({"low": "4"}, "low"),
    ({"high": 99.5}, "high"),
    ({"n_digits": 4}, "n_digits"),
])
def test_factorization_bad_parameters(params, field):
    expect_bad_parameter("factorization", params, field)


# ---------------------------------------------------------------------------- sklearn generators


@pytest.mark.parametrize(("kind", "params", "columns", "target", "task"), [
    ("blobs", {}, ["x0", "x1", "label"], "label", "classification"),
    ("blobs", {"n_features": 4, "n_samples": 50}, ["x0", "x1", "x2", "x3", "label"], "label", "classification"),
    ("moons", {}, ["x0", "x1", "label"], "label", "classification"),
    ("circles", {}, ["x0", "x1", "label"], "label", "classification"),
    ("classification", {"n_features": 6}, [f"x{i}" for i in range(6)] + ["label"], "label", "classification"),
    ("regression", {"n_features": 3, "n_informative": 2}, ["x0", "x1", "x2", "y"], "y", "regression"),
    ("friedman", {}, [f"x{i}" for i in range(10)] + ["y"], "y", "regression"),
])
def test_generators_give_the_documented_columns(kind, params, columns, target, task):
    made = generate(kind, params)
    n_samples = params.get("n_samples", 500)
    assert list(made.frame.columns) == columns
    assert len(made.frame) == n_samples
    assert (made.target, made.task, made.passthrough) == (target, task, False)
    assert made.meta["kind"] == kind
    assert not made.frame.isna().any().any()
    if task == "classification":
        assert made.frame["label"].dtype.kind == "i"


def test_label_counts_follow_the_parameters():
    blobs = generate("blobs", {"centers": 5, "n_samples": 100})
    assert sorted(blobs.frame["label"].unique().tolist()) == [0, 1, 2, 3, 4]
    assert blobs.frame["label"].value_counts().tolist() == [20] * 5
    classes = generate("classification", {"n_classes": 3, "n_informative": 2, "n_features": 4})
    assert sorted(classes.frame["label"].unique().tolist()) == [0, 1, 2]
    moons = generate("moons", {"n_samples": 40})
    assert moons.frame["label"].value_counts().tolist() == [20, 20]


def test_friedman_target_follows_its_formula_without_noise():
    frame = generate("friedman", {"n_samples": 30, "noise": 0.0}).frame
    x = frame[[f"x{i}" for i in range(5)]].to_numpy()
    expected = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4])
    np.testing.assert_allclose(frame["y"].to_numpy(), expected)


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_same_parameters_and_seed_give_the_same_frame(kind):
    params = {} if kind == "factorization" else {"n_samples": 60, "seed": 11}
    pd.testing.assert_frame_equal(generate(kind, params).frame, generate(kind, params).frame)
    if kind != "factorization":
        other = generate(kind, {**params, "seed": 12}).frame
        assert not other.equals(generate(kind, params).frame)


@pytest.mark.parametrize(("kind", "params", "field"), [
    ("blobs", {"n_samples": 19}, "n_samples"),
    ("blobs", {"n_samples": 100_001}, "n_samples"),
    ("blobs", {"centers": 1}, "centers"),
    ("blobs", {"cluster_std": "wide"}, "cluster_std"),
    ("blobs", {"seed": -1}, "seed"),
    ("blobs", {"n_samples": True}, "n_samples"),
    ("moons", {"noise": float("nan")}, "noise"),
    ("moons", {"colour": 1}, "colour"),
    ("circles", {"factor": 1.0}, "factor"),
    ("classification", {"n_features": 4, "n_informative": 5}, "n_informative"),
    ("classification", {"n_classes": 9, "n_informative": 3, "n_features": 10}, "n_informative"),
    ("classification", {"n_samples": 100_000, "n_features": 60}, "n_samples"),  # 6 million cells
    ("regression", {"n_features": 3, "n_informative": 4}, "n_informative"),
    ("friedman", {"n_features": 4}, "n_features"),
])
def test_bad_parameters_name_the_field(kind, params, field):
    expect_bad_parameter(kind, params, field)


def test_whole_numbers_sent_as_floats_are_accepted():
    assert len(generate("moons", {"n_samples": 40.0}).frame) == 40


def test_unknown_generator_lists_the_known_ones():
    with pytest.raises(ValidationError) as info:
        generate("spirals", {})
    assert info.value.code == "unknown_generator"
    assert "factorization" in info.value.message and "moons" in info.value.message


def test_catalog_describes_every_generator_with_valid_defaults():
    catalog = generator_catalog()
    assert [entry["key"] for entry in catalog] == list(GENERATORS)
    for entry in catalog:
        assert entry["description"]
        for param in entry["params"]:
            assert param["type"] in ("int", "float")
            assert param["min"] <= param["default"] <= param["max"]
    blobs = next(entry for entry in catalog if entry["key"] == "blobs")
    n_samples = next(p for p in blobs["params"] if p["name"] == "n_samples")
    assert (n_samples["min"], n_samples["max"], n_samples["default"]) == (20, 100_000, 500)
