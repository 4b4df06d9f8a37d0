"""Synthetic datasets, generated as DataFrames from a few validated parameters.

Each generator is seeded, so the same parameters always give the same frame. The frame
goes through the same `tabular.prepare_table` as an uploaded CSV; `Generated` says which
column(s) are the target and whether the features are used as they are (`passthrough`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets as skd

from livetrain.errors import ValidationError

MAX_CELLS = 5_000_000  # rows x feature columns of one generated frame
MIN_ROWS = 10  # what tabular.prepare_table needs to split a table three ways
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Param:
    """One parameter of a generator: its type, bounds and default."""

    name: str
    type: str  # "int" | "float"
    default: int | float
    min: int | float
    max: int | float
    description: str

    def to_dict(self) -> dict:
        """A JSON-able description for the catalog."""
        return {"name": self.name, "type": self.type, "default": self.default, "min": self.min, "max": self.max,
                "description": self.description}


@dataclass(frozen=True)
class Generator:
    """A synthetic dataset kind: what it makes, its parameters and the function that makes it."""

    key: str
    description: str
    params: tuple[Param, ...]
    make: Callable[[dict[str, Any]], Generated]

    def to_dict(self) -> dict:
        """A JSON-able catalog entry."""
        return {"key": self.key, "description": self.description, "params": [p.to_dict() for p in self.params]}


@dataclass
class Generated:
    """A generated table and how to train on it."""

    frame: pd.DataFrame
    target: str | list[str]
    task: str
    passthrough: bool
    description: str
    meta: dict = field(default_factory=dict)


def _bad(field_name: str, message: str, **detail: Any) -> ValidationError:
    return ValidationError(f"{field_name}: {message}", code="bad_parameter", detail={"field": field_name, **detail})


# ---------------------------------------------------------------------------- number theory


def _primes_upto(n: int) -> np.ndarray:
    """All primes <= n (sieve of Eratosthenes)."""
    if n < 2:
        return np.zeros(0, dtype=np.int64)
    sieve = np.ones(n + 1, dtype=bool)
    sieve[:2] = False
    for p in range(2, math.isqrt(n) + 1):
        if sieve[p]:
            sieve[p * p :: p] = False
    return np.flatnonzero(sieve).astype(np.int64)


def _semiprime_arrays(low: int, high: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n, p, q arrays of every n = p*q (p <= q primes) with low <= n <= high, sorted by n."""
    low = max(low, 4)
    if high < low:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    primes = _primes_upto(high // 2)
    ps, qs = [], []
    for p in primes[: np.searchsorted(primes, math.isqrt(high), side="right")]:
        # q ranges over primes with q >= p and low <= p*q <= high
        start = np.searchsorted(primes, max(int(p), -(-low // int(p))), side="left")
        stop = np.searchsorted(primes, high // int(p), side="right")
        q = primes[start:stop]
        ps.append(np.full(len(q), p, dtype=np.int64))
        qs.append(q)
    if not ps:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    p, q = np.concatenate(ps), np.concatenate(qs)
    n = p * q
    order = np.argsort(n, kind="stable")  # each n has one factorisation, so the order is total
    return n[order], p[order], q[order]


def semiprimes(low: int, high: int) -> list[tuple[int, int, int]]:
    """(n, p, q) with p <= q primes and p*q = n, for every such n in [low, high], sorted by n."""
    n, p, q = _semiprime_arrays(int(low), int(high))
    return list(zip(n.tolist(), p.tolist(), q.tolist()))


def encode_number(n: int, n_digits: int) -> list[int]:
    """The decimal digits of `n`, most significant first, zero padded to `n_digits`."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ValidationError(f"Expected a whole number, got {n!r}.", code="bad_input", detail={"value": str(n)})
    if n < 0:
        raise ValidationError(f"{n} is negative; only numbers >= 0 can be encoded.", code="bad_input",
                              detail={"value": int(n)})
    text = str(int(n))
    if len(text) > n_digits:
        raise ValidationError(f"{n} has {len(text)} digits; this model takes at most {n_digits}.",
                              code="bad_input", detail={"value": int(n), "n_digits": n_digits})
    return [int(c) for c in text.zfill(n_digits)]


def _digits(numbers: np.ndarray, n_digits: int) -> np.ndarray:
    powers = 10 ** np.arange(n_digits - 1, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers[None, :]) % 10


# ---------------------------------------------------------------------------- generators


def _check_cells(rows: int, columns: int, field_name: str = "n_samples") -> None:
    if rows * columns > MAX_CELLS:
        raise _bad(field_name, f"{rows:,} rows x {columns} features is over the limit of {MAX_CELLS:,} cells; "
                   "ask for fewer rows or features.", cells=rows * columns)


def _features_frame(X: np.ndarray, y: np.ndarray, target: str) -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame[target] = y
    return frame


def _factorization(p: dict[str, Any]) -> Generated:
    low, high = p["low"], p["high"]
    if low > high:
        raise _bad("low", f"{low} is above high ({high}).")
    n_digits = len(str(high))
    n, ps, qs = _semiprime_arrays(low, high)
    if len(n) < MIN_ROWS:
        raise _bad("high", f"[{low}, {high}] holds {len(n)} numbers that are a product of two primes; at least "
                   f"{MIN_ROWS} are needed. Widen the range.", count=len(n))
    _check_cells(len(n), n_digits, "high")
    frame = pd.DataFrame(_digits(n, n_digits), columns=[f"d{i}" for i in range(n_digits)])
    frame["p"], frame["q"] = ps, qs
    return Generated(
        frame=frame, target=["p", "q"], task="regression", passthrough=True,
        description=f"Every product of two primes from {low} to {high} ({len(n):,} rows): its {n_digits} digits, "
                    "most significant first, and its prime factors p <= q.",
        meta={"kind": "factorization", "n_digits": n_digits, "low": low, "high": high, "count": len(n)},
    )


def _blobs(p: dict[str, Any]) -> Generated:
    _check_cells(p["n_samples"], p["n_features"])
    X, y = skd.make_blobs(n_samples=p["n_samples"], n_features=p["n_features"], centers=p["centers"],
                          cluster_std=p["cluster_std"], random_state=p["seed"])
    return Generated(_features_frame(X, y, "label"), "label", "classification", False,
                     f"{p['centers']} Gaussian blobs in {p['n_features']} dimensions.", {"kind": "blobs", **p})


def _moons(p: dict[str, Any]) -> Generated:
    X, y = skd.make_moons(n_samples=p["n_samples"], noise=p["noise"], random_state=p["seed"])
    return Generated(_features_frame(X, y, "label"), "label", "classification", False,
                     "Two interleaving half circles in 2-D.", {"kind": "moons", **p})


def _circles(p: dict[str, Any]) -> Generated:
    X, y = skd.make_circles(n_samples=p["n_samples"], noise=p["noise"], factor=p["factor"], random_state=p["seed"])
    return Generated(_features_frame(X, y, "label"), "label", "classification", False,
                     "A small circle inside a large one, in 2-D.", {"kind": "circles", **p})


def _classification(p: dict[str, Any]) -> Generated:
    n_features, n_informative, n_classes = p["n_features"], p["n_informative"], p["n_classes"]
    _check_cells(p["n_samples"], n_features)
    if n_informative > n_features:
        raise _bad("n_informative", f"{n_informative} is more than n_features ({n_features}).")
    if n_classes > 2**n_informative:
        raise _bad("n_informative", f"{n_informative} informative features can separate at most "
                   f"{2**n_informative} classes; n_classes is {n_classes}. Raise n_informative to at least "
                   f"{math.ceil(math.log2(n_classes))}.")
    clusters = 2 if n_classes * 2 <= 2**n_informative else 1
    try:
        X, y = skd.make_classification(
            n_samples=p["n_samples"], n_features=n_features, n_informative=n_informative,
            n_redundant=min(2, n_features - n_informative), n_repeated=0, n_classes=n_classes,
            n_clusters_per_class=clusters, random_state=p["seed"],
        )
    except ValueError as exc:  # a parameter combination the checks above did not foresee
        raise _bad("n_informative", str(exc)) from exc
    return Generated(_features_frame(X, y, "label"), "label", "classification", False,
                     f"{n_classes} classes in {n_features} features, {n_informative} of them informative.",
                     {"kind": "classification", **p})


def _regression(p: dict[str, Any]) -> Generated:
    _check_cells(p["n_samples"], p["n_features"])
    if p["n_informative"] > p["n_features"]:
        raise _bad("n_informative", f"{p['n_informative']} is more than n_features ({p['n_features']}).")
    X, y = skd.make_regression(n_samples=p["n_samples"], n_features=p["n_features"],
                               n_informative=p["n_informative"], noise=p["noise"], random_state=p["seed"])
    return Generated(_features_frame(X, y, "y"), "y", "regression", False,
                     f"A noisy linear function of {p['n_informative']} of {p['n_features']} features.",
                     {"kind": "regression", **p})


def _friedman(p: dict[str, Any]) -> Generated:
    _check_cells(p["n_samples"], p["n_features"])
    X, y = skd.make_friedman1(n_samples=p["n_samples"], n_features=p["n_features"], noise=p["noise"],
                              random_state=p["seed"])
    return Generated(_features_frame(X, y, "y"), "y", "regression", False,
                     "Friedman #1: a nonlinear function of the first 5 features; the rest are noise.",
                     {"kind": "friedman", **p})


def _n_samples(default: int = 500) -> Param:
    return Param("n_samples", "int", default, 20, 100_000, "Number of rows.")


_SEED = Param("seed", "int", 0, 0, MAX_SEED, "Random seed: the same seed gives the same rows.")

GENERATORS: dict[str, Generator] = {
    g.key: g for g in (
        Generator("factorization", "Numbers that are a product of two primes, as digits; predict both factors.", (
            Param("low", "int", 4, 0, 10**7, "Smallest number included."),
            Param("high", "int", 9999, 4, 10**7, "Largest number included; sets the number of digits."),
        ), _factorization),
        Generator("blobs", "Gaussian clusters, one class per cluster.", (
            _n_samples(),
            Param("n_features", "int", 2, 2, 100, "Number of feature columns."),
            Param("centers", "int", 3, 2, 20, "Number of clusters (classes)."),
            Param("cluster_std", "float", 1.0, 0.01, 100.0, "Spread of each cluster."),
            _SEED,
        ), _blobs),
        Generator("moons", "Two interleaving half circles: a small non-linear two-class problem.", (
            _n_samples(), Param("noise", "float", 0.2, 0.0, 10.0, "Standard deviation of added noise."), _SEED,
        ), _moons),
        Generator("circles", "A circle inside a circle: two classes no straight line separates.", (
            _n_samples(),
            Param("noise", "float", 0.05, 0.0, 10.0, "Standard deviation of added noise."),
            Param("factor", "float", 0.5, 0.01, 0.99, "Inner circle's radius relative to the outer one."),
            _SEED,
        ), _circles),
        Generator("classification", "Clusters on the vertices of a hypercube (scikit-learn make_classification).", (
            _n_samples(),
            Param("n_features", "int", 20, 2, 500, "Number of feature columns."),
            Param("n_informative", "int", 5, 1, 500, "Features that carry the class signal."),
            Param("n_classes", "int", 2, 2, 20, "Number of classes."),
            _SEED,
        ), _classification),
        Generator("regression", "A random linear function plus noise (scikit-learn make_regression).", (
            _n_samples(),
            Param("n_features", "int", 10, 1, 500, "Number of feature columns."),
            Param("n_informative", "int", 10, 1, 500, "Features the target depends on."),
            Param("noise", "float", 10.0, 0.0, 1000.0, "Standard deviation of the noise on the target."),
            _SEED,
        ), _regression),
        Generator("friedman", "Friedman #1: y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise.", (
            _n_samples(),
            Param("n_features", "int", 10, 5, 50, "Number of feature columns (only the first 5 matter)."),
            Param("noise", "float", 1.0, 0.0, 100.0, "Standard deviation of the noise on the target."),
            _SEED,
        ), _friedman),
    )
}


def generator_catalog() -> list[dict]:
    """Every generator with its parameters' types, bounds and defaults."""
    return [g.to_dict() for g in GENERATORS.values()]


def _value(param: Param, raw: Any) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | np.integer | np.floating):
        raise _bad(param.name, f"expected a number, got {raw!r}.")
    if not math.isfinite(raw):
        raise _bad(param.name, f"expected a finite number, got {raw!r}.")
    if param.type == "int":
        if raw != int(raw):
            raise _bad(param.name, f"expected a whole number, got {raw!r}.")
        value: int | float = int(raw)
    else:
        value = float(raw)
    if not param.min <= value <= param.max:
        raise _bad(param.name, f"{raw!r} is outside [{param.min}, {param.max}].", min=param.min, max=param.max)
    return value


def generate(kind: str, params: Mapping[str, Any] | None = None) -> Generated:
    """The dataset `kind` makes with `params` (missing ones take their defaults)."""
    generator = GENERATORS.get(kind) if isinstance(kind, str) else None
    if generator is None:
        raise ValidationError(f"No generator called {kind!r}. Choose one of: {', '.join(GENERATORS)}.",
                              code="unknown_generator", detail={"generators": list(GENERATORS)})
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise _bad("params", "expected an object of parameter values.")
    names = {p.name for p in generator.params}
    unknown = sorted(str(k) for k in params if k not in names)
    if unknown:
        raise _bad(unknown[0], f"{kind} has no parameter {unknown[0]!r}; its parameters are: "
                   f"{', '.join(p.name for p in generator.params)}.")
    values = {p.name: _value(p, params[p.name]) if p.name in params else p.default for p in generator.params}
    return generator.make(values)
