"""Live training of scikit-learn models: a run is split into steps, each reported as it ends.

How a run is split depends on the algorithm's strategy (see `algorithms.py`):

- ``estimators`` (random forest, gradient boosting): `warm_start`, the ensemble grows in
  equal increments and each step fits only the new trees. A forest is evaluated
  incrementally: running sums of the new trees' outputs, so all steps together cost about
  one full prediction.
- ``staged`` (AdaBoost): one fit, then the ensemble is read back stage by stage.
- ``epochs`` (MLP): one `partial_fit` pass over the shuffled training rows per step.
- ``learning_curve`` (the rest): a fresh fit on a growing, seeded share of the training rows.

Every step reports metrics on the training rows it used (at most `TRAIN_EVAL_ROWS`, a
seeded sample beyond that) and on the validation split, or on the test split when the
dataset has none. Regression metrics are in the target's own units. Nothing here sleeps:
a step takes as long as its fitting and evaluation do. Same parameters, seed and data give
the same metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from livetrain.data.sources import DatasetArrays
from livetrain.errors import ValidationError
from livetrain.training.algorithms import Algorithm, build_estimator, get_algorithm, resolve_params, resolve_steps
from livetrain.training.metrics import classification_metrics, regression_metrics

TRAIN_EVAL_ROWS = 5000  # training rows scored per step at most (a seeded sample of the rows used)
CURVE_HEAD_PER_CLASS = 2  # rows of each class placed first, so the first learning-curve step sees every class
MAX_CALIBRATION_FOLDS = 5
MLP_BLOCK_ROWS = 8192  # rows of a shuffled epoch copied and fed to partial_fit at a time
AUTO_BATCH = 200  # scikit-learn's batch_size="auto" is min(200, rows)
MULTI_OUTPUT_ALGORITHMS = "random_forest, decision_tree, knn, linear or mlp"


@dataclass
class StepResult:
    """What one live step did and how the model scores after it."""

    step: int  # 1-based
    total_steps: int
    size: int  # trees so far / estimators so far / training rows used / epoch number
    size_label: str  # "trees" | "estimators" | "rows" | "epoch"
    train: dict[str, Any]  # metrics on the training rows used at this step (sampled beyond TRAIN_EVAL_ROWS)
    val: dict[str, Any]  # metrics on the held-out split named by held_out_split
    held_out_split: str  # "val", or "test" when the dataset has no validation split
    loss: float | None  # MLP loss_, else training log loss of a classifier with probabilities, else None
    elapsed_time: float  # seconds of fitting in this step
    eval_time: float  # seconds of evaluation in this step

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return dataclasses.asdict(self)


@dataclass
class SklearnOutcome:
    """How a run ended and the model it left."""

    stopped: bool
    steps_done: int
    model: Any  # the estimator after the last completed step; None when no step completed
    final: dict[str, dict[str, Any]]  # {"train", "val" (with a val split), "test"}; {} for a stopped run
    feature_importances: list[float] | None
    last: StepResult | None
    warnings: list[str] = field(default_factory=list)  # convergence warnings scikit-learn raised, once each


class StepCallbacks(Protocol):
    """What the job layer gives a run: a stop flag to poll and a sink for step results."""

    def should_stop(self) -> bool: ...

    def on_step(self, result: StepResult) -> None: ...


@dataclass
class _Split:
    """Rows to evaluate on: features, and the truth in the units metrics use."""

    name: str
    X: np.ndarray
    truth: np.ndarray


class _Stopped(Exception):
    """Raised inside a strategy when the callbacks ask to stop before a step."""


class _Run:
    """One training run: the prepared data, the step loop's bookkeeping, the scoring."""

    def __init__(self, algorithm: Algorithm, task: str, params: dict[str, Any], seed: int, data: DatasetArrays,
                 callbacks: StepCallbacks, steps: int, n_jobs: int) -> None:
        self.algorithm, self.task, self.params, self.seed = algorithm, task, params, seed
        self.data, self.callbacks, self.steps, self.n_jobs = data, callbacks, steps, n_jobs
        self.classification = task == "classification"
        self.X = np.ascontiguousarray(data.X_train, dtype=np.float32)
        self.y = self._model_target(data.y_train)
        self.n_classes = (int(data.info.n_classes or 0) or int(self.y.max()) + 1) if self.classification else 0
        held = ("val", data.X_val, data.y_val) if data.has_val else ("test", data.X_test, data.y_test)
        self.held = self._split(*held)
        self.model: Any = None
        self.results: list[StepResult] = []

    # --- data ---

    def _model_target(self, y: np.ndarray) -> np.ndarray:
        """Targets as estimators want them: int class indices, or floats with a lone column dropped."""
        y = np.asarray(y)
        if self.classification:
            return y.astype(np.int64).ravel()
        # a (n, 1) target would make several estimators warn about a column vector
        return y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y

    def _truth(self, y: np.ndarray) -> np.ndarray:
        y = self._model_target(y)
        return y if self.classification else np.asarray(self.data.unscale_target(y), dtype=np.float64)

    def _split(self, name: str, X: np.ndarray, y: np.ndarray) -> _Split:
        return _Split(name, np.ascontiguousarray(X, dtype=np.float32), self._truth(y))

    def train_split(self, rows: np.ndarray) -> _Split:
        """The training rows `rows` as a split to score on: all of them, or a seeded sample of TRAIN_EVAL_ROWS."""
        if len(rows) > TRAIN_EVAL_ROWS:
            rng = np.random.default_rng([self.seed, len(rows)])
            rows = np.sort(rng.choice(rows, TRAIN_EVAL_ROWS, replace=False))
        return _Split("train", self.X[rows], self._truth(self.data.y_train[rows]))

    # --- scoring ---

    def predict(self, model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions in model units, class probabilities or None)."""
        return _predict(model, X, self.classification, self.n_classes)

    def score(self, split: _Split, pred: np.ndarray, proba: np.ndarray | None = None) -> dict[str, Any]:
        """Metrics of predictions on a split (regression predictions are unscaled first)."""
        if self.classification:
            return classification_metrics(split.truth, pred, proba, self.n_classes)
        return regression_metrics(split.truth, self.data.unscale_target(np.asarray(pred, dtype=np.float64)))

    # --- the step loop ---

    def check_stop(self) -> None:
        """Raise _Stopped when the callbacks ask to stop."""
        if self.callbacks.should_stop():
            raise _Stopped()

    def report(self, model: Any, total: int, size: int, train: dict[str, Any], val: dict[str, Any],
               fit_time: float, eval_time: float, loss: float | None = None) -> None:
        """Record a finished step and hand it to the callbacks."""
        self.model = model
        if loss is None and self.classification:
            loss = train.get("log_loss")
        result = StepResult(step=len(self.results) + 1, total_steps=total, size=size,
                            size_label=self.algorithm.size_label, train=train, val=val,
                            held_out_split=self.held.name, loss=loss, elapsed_time=fit_time, eval_time=eval_time)
        self.results.append(result)
        self.callbacks.on_step(result)

    def final(self) -> dict[str, dict[str, Any]]:
        """Train / val / test metrics of the final model (train and held-out from the last step, which scored it)."""
        last = self.results[-1]
        if self.held.name == "test":
            return {"train": last.train, "test": last.val}
        test = self._split("test", self.data.X_test, self.data.y_test)
        return {"train": last.train, "val": last.val, "test": self.score(test, *self.predict(self.model, test.X))}

    def fitted_for(self, model: Any, y_rows: np.ndarray) -> Any:
        """The estimator adjusted to a (possibly small) set of training rows."""
        n = len(y_rows)
        key = self.algorithm.key
        if key == "knn" and model.n_neighbors > n:
            model.set_params(n_neighbors=n)
        if key == "svm" and self.classification:
            counts = np.bincount(y_rows)
            folds = min(MAX_CALIBRATION_FOLDS, int(counts[counts > 0].min()))
            if folds < 2:
                # a class with a single row cannot be calibrated by cross-validation: plain SVC, no probabilities
                return model.estimator
            model.set_params(cv=folds)
        return model


def train_estimator(key: str, task: str, params: dict[str, Any] | None, seed: int, data: DatasetArrays,
                    callbacks: StepCallbacks, *, steps: int = 10, n_jobs: int = 1) -> SklearnOutcome:
    """Train algorithm `key` on `data` in live steps, reporting each through `callbacks`.

    `steps` (1..100) is how many steps the run is split into, except for the MLP, which
    runs one step per epoch (its `epochs` parameter). A run has fewer steps than asked when
    there are fewer trees, stages or rows than steps. `n_jobs` is the worker's thread budget,
    given to the estimators that can use threads. When `callbacks.should_stop()` is true
    before a step the run returns at once with `stopped=True` and no final metrics.
    """
    algorithm = get_algorithm(key)
    params = resolve_params(key, task, params)
    steps = resolve_steps(steps)
    if task != data.info.task:
        raise ValidationError(f"dataset {data.info.id} is a {data.info.task} dataset, not {task}",
                              code="unsupported_task", detail={"field": "task"})
    y = np.asarray(data.y_train)
    if task == "regression" and (data.n_outputs > 1 or (y.ndim == 2 and y.shape[1] > 1)) \
            and not algorithm.multi_output:
        raise ValidationError(
            f"{algorithm.names[task]} does not predict several targets at once; use {MULTI_OUTPUT_ALGORITHMS}",
            code="unsupported_task", detail={"field": "algorithm"},
        )
    run = _Run(algorithm, task, params, seed, data, callbacks, steps, max(1, int(n_jobs)))
    strategy = {"estimators": _grow_ensemble, "staged": _read_stages, "epochs": _train_epochs,
                "learning_curve": _learning_curve}[algorithm.strategy]
    stopped = False
    with _convergence_warnings() as caught:
        try:
            strategy(run)
        except _Stopped:
            stopped = True
        final = {} if stopped or not run.results else run.final()
    return SklearnOutcome(
        stopped=stopped,
        steps_done=len(run.results),
        model=run.model,
        final=final,
        feature_importances=feature_importances(run.model) if run.model is not None else None,
        last=run.results[-1] if run.results else None,
        warnings=caught,
    )


# --- strategies ---

def _grow_ensemble(run: _Run) -> None:
    """warm_start: grow n_estimators in equal increments, fitting only the new trees each step."""
    model = build_estimator(run.algorithm.key, run.task, run.params, run.seed, n_jobs=run.n_jobs)
    sizes = even_sizes(run.params["n_estimators"], run.steps)
    train = run.train_split(np.arange(len(run.y)))
    forest = run.algorithm.key == "random_forest"
    if forest:
        sums = {name: _ForestSums(split.X, run.classification) for name, split in
                (("train", train), ("held", run.held))}
    with _tree_pool(run.n_jobs if forest else 1) as pool:
        for size in sizes:
            run.check_stop()
            started = time.perf_counter()
            model.set_params(n_estimators=size)
            model.fit(run.X, run.y)
            fitted = time.perf_counter()
            if forest:
                outputs = {}
                for name, acc in sums.items():
                    acc.add(model.estimators_[acc.trees:size], pool)
                    mean = acc.mean()
                    if run.classification:
                        proba = _full_proba(model.classes_, mean, run.n_classes)
                        outputs[name] = proba.argmax(axis=1), proba
                    else:
                        outputs[name] = mean, None
            else:
                outputs = {"train": run.predict(model, train.X), "held": run.predict(model, run.held.X)}
            scores = run.score(train, *outputs["train"]), run.score(run.held, *outputs["held"])
            run.report(model, len(sizes), size, *scores, fitted - started, time.perf_counter() - fitted)


def _read_stages(run: _Run) -> None:
    """AdaBoost: one fit, then read back `steps` evenly spaced stages of the fitted ensemble.

    AdaBoost has no warm start, so the whole fit happens before the first step and its time
    is the first step's elapsed_time; later steps only evaluate (elapsed_time 0). Stages are
    walked once per split, so all steps together cost about one full prediction.
    """
    run.check_stop()
    model = build_estimator(run.algorithm.key, run.task, run.params, run.seed)
    started = time.perf_counter()
    model.fit(run.X, run.y)
    fit_time = time.perf_counter() - started
    # boosting ends early when a learner is perfect (or useless): fewer stages than asked
    sizes = even_sizes(len(model.estimators_), run.steps)
    train = run.train_split(np.arange(len(run.y)))
    if run.classification:
        walkers = {name: _StagedProba(model, split.X, run.n_classes) for name, split in
                   (("train", train), ("held", run.held))}
    else:
        walkers = {name: _StagedMedian(model, split.X) for name, split in (("train", train), ("held", run.held))}
    for size in sizes:
        if size != sizes[0]:
            run.check_stop()
        started = time.perf_counter()
        outputs = {name: walker.at(size) for name, walker in walkers.items()}
        scores = run.score(train, *outputs["train"]), run.score(run.held, *outputs["held"])
        run.report(model, len(sizes), size, *scores, fit_time, time.perf_counter() - started)
        fit_time = 0.0


def _train_epochs(run: _Run) -> None:
    """MLP: one pass per epoch over the training rows in a fresh seeded order.

    An epoch is fed to partial_fit in blocks of whole mini-batches, so a shuffled copy of a
    large training set is never made at once; the updates are the ones a single
    partial_fit call over the shuffled rows would make. The step's loss is the epoch's
    mean training loss.
    """
    model = build_estimator(run.algorithm.key, run.task, run.params, run.seed)
    n = len(run.y)
    batch = min(n, run.params["batch_size"] or AUTO_BATCH)
    block = max(1, MLP_BLOCK_ROWS // batch) * batch
    epochs = run.params["epochs"]
    train = run.train_split(np.arange(n))
    extra = {"classes": np.arange(run.n_classes)} if run.classification else {}
    for epoch in range(1, epochs + 1):
        run.check_stop()
        started = time.perf_counter()
        order = np.random.default_rng([run.seed, epoch]).permutation(n)
        total_loss = 0.0
        for start in range(0, n, block):
            rows = order[start:start + block]
            # the last block may be shorter than a batch; scikit-learn would clip with a warning
            model.set_params(batch_size=min(batch, len(rows)))
            try:
                model.partial_fit(run.X[rows], run.y[rows], **extra)
            except ValueError as exc:
                if "non-finite" not in str(exc):
                    raise
                raise ValidationError(f"the network diverged in epoch {epoch} (its weights are no longer "
                                      "finite); try a smaller learning_rate_init", code="diverged") from exc
            extra = {}  # classes= belongs to the first call only
            total_loss += float(model.loss_) * len(rows)
        model.set_params(batch_size=batch)
        fitted = time.perf_counter()
        scores = run.score(train, *run.predict(model, train.X)), run.score(run.held, *run.predict(model, run.held.X))
        run.report(model, epochs, epoch, *scores, fitted - started, time.perf_counter() - fitted,
                   loss=_finite_or_none(total_loss / n))


def _learning_curve(run: _Run) -> None:
    """A fresh fit per step on a growing share of a seeded (for classification stratified) row order."""
    order = curve_order(run.y if run.classification else None, len(run.y), run.seed)
    head = _head_rows(run.y) if run.classification else 2
    sizes = even_sizes(len(order), run.steps, minimum=head)
    for size in sizes:
        run.check_stop()
        rows = order[:size]
        started = time.perf_counter()
        model = build_estimator(run.algorithm.key, run.task, run.params, run.seed, n_jobs=run.n_jobs)
        model = run.fitted_for(model, run.y[rows])
        model.fit(run.X[rows], run.y[rows])
        fitted = time.perf_counter()
        train = run.train_split(rows)
        scores = run.score(train, *run.predict(model, train.X)), run.score(run.held, *run.predict(model, run.held.X))
        run.report(model, len(sizes), size, *scores, fitted - started, time.perf_counter() - fitted)


# --- helpers ---

def even_sizes(total: int, steps: int, *, minimum: int = 1) -> list[int]:
    """`steps` evenly spaced sizes ending at `total` (ceil(total * i / steps), at least `minimum`), no repeats."""
    minimum = min(minimum, total)
    sizes = sorted({max(minimum, (total * i + steps - 1) // steps) for i in range(1, steps + 1)})
    return [s for s in sizes if s >= 1]


def curve_order(y: np.ndarray | None, n: int, seed: int) -> np.ndarray:
    """A seeded order of the training rows whose every prefix is roughly stratified.

    With class labels `y`, each class's rows are shuffled and spread evenly through the
    order, and its first CURVE_HEAD_PER_CLASS rows go to the very front, so even the first
    learning-curve step sees every class. Without labels it is a plain permutation.
    """
    rng = np.random.default_rng([seed, n])
    if y is None:
        return rng.permutation(n)
    key = np.empty(n)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        m = len(members)
        position = (np.arange(m) + rng.random(m)) / m  # a random point in the row's own slot of [0, 1)
        position[:CURVE_HEAD_PER_CLASS] -= 2.0
        key[members] = position
    return np.argsort(key, kind="stable")


def _head_rows(y: np.ndarray) -> int:
    counts = np.bincount(y)
    return int(np.minimum(counts[counts > 0], CURVE_HEAD_PER_CLASS).sum())


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _full_proba(classes: np.ndarray, proba: np.ndarray, n_classes: int | None) -> np.ndarray:
    """Probabilities with one column per class 0..n_classes-1, whatever classes the model saw."""
    classes = np.asarray(classes, dtype=np.int64)
    n_classes = n_classes or int(classes.max()) + 1
    if proba.shape[1] == n_classes and np.array_equal(classes, np.arange(n_classes)):
        return proba
    full = np.zeros((len(proba), n_classes), dtype=proba.dtype)
    full[:, classes] = proba
    return full


def _predict(model: Any, X: np.ndarray, classification: bool,
             n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions and (for classifiers that have them) probabilities.

    A classifier with probabilities predicts their argmax, so the reported metrics, log
    loss included, describe the very predictions `predict_rows` serves.
    """
    if classification and hasattr(model, "predict_proba"):
        proba = _full_proba(model.classes_, model.predict_proba(X), n_classes)
        return proba.argmax(axis=1), proba
    return np.asarray(model.predict(X)), None


@contextlib.contextmanager
def _tree_pool(n_jobs: int) -> Iterator[ThreadPoolExecutor | None]:
    """A thread pool for per-tree predictions when the worker has more than one thread, else None."""
    if n_jobs <= 1:
        yield None
        return
    with ThreadPoolExecutor(n_jobs, thread_name_prefix="livetrain-trees") as pool:
        yield pool


class _ForestSums:
    """Running sums of a forest's tree outputs on fixed rows, so each tree is evaluated once.

    The mean over the trees added so far is what the forest's predict_proba / predict gives
    (scikit-learn adds the same per-tree outputs; with n_jobs > 1 in another order, so equal
    up to rounding).
    """

    CHUNK = 16  # trees evaluated at once: bounds the memory of in-flight outputs

    def __init__(self, X: np.ndarray, classification: bool) -> None:
        self.X = X
        self.classification = classification
        self.total: np.ndarray | None = None
        self.trees = 0

    def _tree_output(self, tree: Any) -> np.ndarray:
        # X is already float32 and C-contiguous, the forest's own input format
        if self.classification:
            return tree.predict_proba(self.X, check_input=False)
        return tree.predict(self.X, check_input=False)

    def add(self, trees: list[Any], pool: ThreadPoolExecutor | None) -> None:
        """Add the outputs of `trees` (in order, so the sums do not depend on thread timing)."""
        for start in range(0, len(trees), self.CHUNK):
            chunk = trees[start:start + self.CHUNK]
            outputs = pool.map(self._tree_output, chunk) if pool else map(self._tree_output, chunk)
            for output in outputs:
                if self.total is None:
                    self.total = np.zeros_like(output, dtype=np.float64)
                self.total += output
        self.trees += len(trees)

    def mean(self) -> np.ndarray:
        """The forest's output with the trees added so far."""
        return self.total / self.trees


class _StagedProba:
    """Walks AdaBoostClassifier.staged_predict_proba forward, once, stopping at the stages asked for."""

    def __init__(self, model: Any, X: np.ndarray, n_classes: int) -> None:
        self.stages: Iterator[np.ndarray] = model.staged_predict_proba(X)
        self.classes = model.classes_
        self.n_classes = n_classes
        self.stage = 0
        self.current: np.ndarray | None = None

    def at(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, probabilities) of the first `size` learners; sizes must not decrease."""
        while self.stage < size:
            self.current = next(self.stages)
            self.stage += 1
        proba = _full_proba(self.classes, self.current, self.n_classes)
        return proba.argmax(axis=1), proba


class _StagedMedian:
    """AdaBoostRegressor's weighted median of the first k learners, each learner predicted once.

    (scikit-learn's staged_predict re-predicts every earlier learner at every stage, which
    is quadratic in the number of learners.)
    """

    def __init__(self, model: Any, X: np.ndarray) -> None:
        self.model = model
        self.X = X
        self.columns: list[np.ndarray] = []

    def at(self, size: int) -> tuple[np.ndarray, None]:
        """(weighted-median predictions of the first `size` learners, None)."""
        for learner in self.model.estimators_[len(self.columns):size]:
            self.columns.append(learner.predict(self.X))
        predictions = np.stack(self.columns[:size], axis=1)  # rows x learners
        weights = self.model.estimator_weights_[:size]
        ranked = np.argsort(predictions, axis=1)
        cumulative = np.cumsum(weights[ranked], axis=1)
        # the first learner, in order of prediction, at which half the total weight is reached
        median_rank = (cumulative >= 0.5 * cumulative[:, -1:]).argmax(axis=1)
        rows = np.arange(len(predictions))
        return predictions[rows, ranked[rows, median_rank]], None


@contextlib.contextmanager
def _convergence_warnings() -> Iterator[list[str]]:
    """Collect scikit-learn's ConvergenceWarnings (once each) for the outcome instead of the worker's stderr.

    Other warnings pass through as they would have. warnings.catch_warnings is process-wide;
    a worker process trains one run at a time.
    """
    from sklearn.exceptions import ConvergenceWarning

    messages: list[str] = []
    recorded: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                yield messages
            finally:
                recorded = list(caught)
    finally:
        for item in recorded:
            if issubclass(item.category, ConvergenceWarning):
                text = str(item.message).strip()
                if text not in messages:
                    messages.append(text)
            else:
                warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)


def feature_importances(model: Any) -> list[float] | None:
    """feature_importances_ of trees and ensembles; mean |coefficient| over classes/outputs for linear models."""
    values = getattr(model, "feature_importances_", None)
    if values is None:
        coef = getattr(model, "coef_", None)
        # SVR with a linear kernel has coef_ too, but the catalog offers importances for linear models only
        if coef is None or not type(model).__module__.startswith("sklearn.linear_model"):
            return None
        values = np.abs(np.atleast_2d(coef)).mean(axis=0)
    return [_finite_or_none(v) for v in np.asarray(values, dtype=np.float64)]


def predict_rows(model: Any, task: str, X, *, data: DatasetArrays | None = None) -> dict[str, Any]:
    """Predictions for preprocessed feature rows: class indices with probabilities, or values in target units."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValidationError("rows must be a 2-D array: one list of feature values per row", code="bad_input")
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise ValidationError(f"each row must have {expected} features, got {X.shape[1]}", code="bad_input")
    if task == "classification":
        n_classes = (data.info.n_classes if data is not None else 0) or None
        pred, proba = _predict(model, X, True, n_classes)
        return {"predicted": [int(p) for p in pred], "probabilities": None if proba is None else proba.tolist()}
    pred = np.asarray(model.predict(X), dtype=np.float64)
    if data is not None:
        pred = np.asarray(data.unscale_target(pred), dtype=np.float64)
    return {"predicted": pred.tolist(), "probabilities": None}
