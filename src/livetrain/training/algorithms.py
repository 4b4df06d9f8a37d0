"""The catalog of scikit-learn algorithms a run can train, with their tunable parameters.

Each `Algorithm` says which tasks it serves, how a live run is split into steps (its
`strategy`), which parameters a user may set (with types, ranges and defaults) and which
settings are fixed. `resolve_params` is the check at the API edge; `build_estimator`
turns checked parameters into an unfitted estimator. scikit-learn is imported only when
an estimator is built, so importing this module is cheap.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livetrain.errors import ValidationError

TASKS = ("classification", "regression")
STRATEGIES = ("epochs", "estimators", "staged", "learning_curve")
PARAM_TYPES = ("int", "float", "choice", "bool", "int_list")

DEFAULT_STEPS = 10
MIN_STEPS, MAX_STEPS = 1, 100

# Placeholders in `Algorithm.fixed`, filled in when an estimator is built.
RUN_SEED = "<run seed>"
WORKER_THREADS = "<worker threads>"

SIZE_LABELS = {"epochs": "epoch", "staged": "estimators", "learning_curve": "rows"}


@dataclass
class Param:
    """One tunable parameter: its type, default and allowed values."""

    name: str
    type: str  # one of PARAM_TYPES
    default: Any
    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None
    log: bool = False  # a slider for it should be logarithmic
    nullable: bool = False  # None (JSON null) is allowed and means "no limit" / "automatic"
    help: str = ""
    min_items: int | None = None  # int_list only
    max_items: int | None = None
    tasks: tuple[str, ...] | None = None  # None: the parameter applies to every task of its algorithm

    def applies_to(self, task: str) -> bool:
        """True when the parameter exists for `task`."""
        return self.tasks is None or task in self.tasks

    def to_dict(self) -> dict[str, Any]:
        """JSON for the catalog (fields that do not apply to the type are left out)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "default": self.default,
                               "nullable": self.nullable, "help": self.help}
        if self.type in ("int", "float", "int_list"):
            out.update(min=self.min, max=self.max, log=self.log)
        if self.type == "int_list":
            out.update(min_items=self.min_items, max_items=self.max_items)
        if self.type == "choice":
            out["choices"] = list(self.choices or [])
        if self.tasks is not None:
            out["tasks"] = list(self.tasks)
        return out

    def check(self, value: Any, field_name: str) -> Any:
        """The value in canonical form (ints as int, lists as lists), or a bad_parameter error."""
        if value is None and self.nullable:
            return None
        if self.type == "int":
            number = _as_int(value)
            if number is None or not self.min <= number <= self.max:
                raise _bad(field_name, f"must be an integer between {_num(self.min)} and {_num(self.max)}"
                           + (" (or null)" if self.nullable else ""))
            return number
        if self.type == "float":
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or not self.min <= value <= self.max):
                raise _bad(field_name, f"must be a number between {_num(self.min)} and {_num(self.max)}"
                           + (" (or null)" if self.nullable else ""))
            return float(value)
        if self.type == "bool":
            if not isinstance(value, bool):
                raise _bad(field_name, "must be true or false")
            return value
        if self.type == "choice":
            # bool == 1 in Python, so a choice list of ints would accept true without this check
            if isinstance(value, bool) or value not in self.choices:
                raise _bad(field_name, "must be one of " + ", ".join(repr(c) for c in self.choices))
            return value
        if self.type == "int_list":
            items = [_as_int(v) for v in value] if isinstance(value, (list, tuple)) else None
            if (items is None or not self.min_items <= len(items) <= self.max_items
                    or any(i is None or not self.min <= i <= self.max for i in items)):
                raise _bad(field_name, f"must be a list of {self.min_items} to {self.max_items} integers, "
                                       f"each between {_num(self.min)} and {_num(self.max)}")
            return items
        raise AssertionError(f"parameter {self.name} has unknown type {self.type!r}")


@dataclass
class Algorithm:
    """A family of scikit-learn estimators, for classification and/or regression."""

    key: str
    names: dict[str, str]  # task -> display name
    tasks: tuple[str, ...]
    strategy: str  # one of STRATEGIES: how a live run is split into steps
    params: list[Param]
    fixed: dict[str, dict[str, Any]]  # task -> estimator settings no user can change
    how_it_works: str
    analogy: str
    multi_output: bool  # predicts several regression targets at once, natively
    has_importances: bool
    estimators: dict[str, str]  # task -> dotted path of the scikit-learn class
    # tunable values -> estimator keyword arguments, where the names or forms differ
    translate: Callable[[str, dict[str, Any]], dict[str, Any]] | None = field(default=None, repr=False)
    # (task, keyword arguments) -> estimator, where building is more than calling the class
    build: Callable[[str, dict[str, Any]], Any] | None = field(default=None, repr=False)

    @property
    def size_label(self) -> str:
        """What `StepResult.size` counts for this algorithm."""
        if self.strategy == "estimators":
            return "trees" if self.key == "random_forest" else "estimators"
        return SIZE_LABELS[self.strategy]

    def params_for(self, task: str) -> list[Param]:
        """The parameters that exist for `task`."""
        return [p for p in self.params if p.applies_to(task)]

    def to_dict(self) -> dict[str, Any]:
        """JSON for GET /api/algorithms."""
        return {
            "key": self.key,
            "names": dict(self.names),
            "tasks": list(self.tasks),
            "strategy": self.strategy,
            "size_label": self.size_label,
            "params": [p.to_dict() for p in self.params],
            "fixed": {task: dict(values) for task, values in self.fixed.items()},
            "estimators": {task: path.rsplit(".", 1)[1] for task, path in self.estimators.items()},
            "how_it_works": self.how_it_works,
            "analogy": self.analogy,
            "multi_output": self.multi_output,
            "has_importances": self.has_importances,
        }


def _as_int(value: Any) -> int | None:
    """An int from an int or a whole float (JSON has one number type); None otherwise (bool included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _num(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bad(field_name: str, problem: str) -> ValidationError:
    return ValidationError(f"{field_name}: {problem}", code="bad_parameter", detail={"field": field_name})


# --- builders for the algorithms whose estimator is more than its class called with keywords ---

def _translate_forest(task: str, p: dict[str, Any]) -> dict[str, Any]:
    return {**p, "max_features": 1.0 if p["max_features"] == "all" else p["max_features"]}


def _translate_adaboost(task: str, p: dict[str, Any]) -> dict[str, Any]:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    tree = DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor
    out = {k: v for k, v in p.items() if k != "max_depth"}
    # AdaBoost gives each tree its own random_state drawn from the ensemble's
    out["estimator"] = tree(max_depth=p["max_depth"])
    return out


def _translate_mlp(task: str, p: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in p.items() if k not in ("epochs", "hidden_layer_sizes", "batch_size")}
    out["hidden_layer_sizes"] = tuple(p["hidden_layer_sizes"])
    out["batch_size"] = "auto" if p["batch_size"] is None else p["batch_size"]
    out["max_iter"] = p["epochs"]  # what a plain fit would run; live runs call partial_fit once per epoch
    return out


def _build_svm(task: str, kwargs: dict[str, Any]) -> Any:
    from sklearn.svm import SVC, SVR

    if task == "regression":
        return SVR(**kwargs)
    from sklearn.calibration import CalibratedClassifierCV

    # SVC(probability=True) is deprecated since scikit-learn 1.9; this is its documented
    # replacement: Platt scaling fitted on cross-validated decision values, then one SVC on
    # all rows. The fold count is lowered for tiny training sets (see estimators.py).
    method = kwargs.pop("calibration")
    folds = kwargs.pop("calibration_folds")
    return CalibratedClassifierCV(SVC(**kwargs), method=method, cv=folds, ensemble=False)


def _instantiate(path: str, kwargs: dict[str, Any]) -> Any:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**kwargs)


# --- the catalog ---

_TREE_SHAPE = [
    Param("max_depth", "int", None, 1, 100, nullable=True,
          help="How many questions deep a tree may go; null grows until leaves are pure."),
    Param("min_samples_split", "int", 2, 2, 100, help="Rows a node needs before it may be split."),
    Param("min_samples_leaf", "int", 1, 1, 100, help="Rows every leaf must keep."),
]
_CRITERIA = [
    Param("criterion", "choice", "gini", choices=["gini", "entropy", "log_loss"], tasks=("classification",),
          help="How the quality of a split is measured."),
    # absolute_error is left out: it is orders of magnitude slower on a small server
    Param("criterion", "choice", "squared_error", choices=["squared_error", "friedman_mse"],
          tasks=("regression",), help="How the quality of a split is measured."),
]

ALGORITHMS: dict[str, Algorithm] = {a.key: a for a in [
    Algorithm(
        key="random_forest",
        names={"classification": "Random forest", "regression": "Random forest"},
        tasks=TASKS,
        strategy="estimators",
        params=[
            Param("n_estimators", "int", 100, 1, 1000, help="Trees in the forest."),
            *_TREE_SHAPE,
            *_CRITERIA,
            Param("max_features", "choice", "sqrt", choices=["sqrt", "log2", "all"],
                  help="Features each split may look at; fewer makes the trees more different from each other."),
            Param("bootstrap", "bool", True, help="Train each tree on a resample of the rows drawn with replacement."),
        ],
        fixed={task: {"warm_start": True, "random_state": RUN_SEED, "n_jobs": WORKER_THREADS} for task in TASKS},
        how_it_works=(
            "Many decision trees are grown, each on a random resample of the rows and looking at a random subset "
            "of features at every split. A prediction is the average of the trees' votes, which cancels out much "
            "of the noise any single tree picks up."
        ),
        analogy=(
            "Like asking a hundred people who each saw only part of the evidence, and going with the majority."
        ),
        multi_output=True,
        has_importances=True,
        estimators={"classification": "sklearn.ensemble.RandomForestClassifier",
                    "regression": "sklearn.ensemble.RandomForestRegressor"},
        translate=_translate_forest,
    ),
    Algorithm(
        key="gradient_boosting",
        names={"classification": "Gradient boosting", "regression": "Gradient boosting"},
        tasks=TASKS,
        strategy="estimators",
        params=[
            Param("n_estimators", "int", 100, 1, 1000, help="Boosting stages (small trees added one after another)."),
            Param("learning_rate", "float", 0.1, 0.001, 1.0, log=True,
                  help="How much each new tree corrects; smaller needs more trees but generalizes better."),
            Param("max_depth", "int", 3, 1, 20, help="Depth of each small tree."),
            Param("subsample", "float", 1.0, 0.1, 1.0,
                  help="Fraction of rows each tree sees; below 1 adds randomness that can reduce overfitting."),
            Param("min_samples_leaf", "int", 1, 1, 100, help="Rows every leaf must keep."),
            Param("loss", "choice", "squared_error", choices=["squared_error", "absolute_error", "huber"],
                  tasks=("regression",), help="What the stages minimize; absolute_error and huber resist outliers."),
        ],
        fixed={task: {"warm_start": True, "random_state": RUN_SEED} for task in TASKS},
        how_it_works=(
            "Small trees are added one at a time, each fitted to the mistakes the ensemble so far still makes. "
            "The learning rate scales every correction, so the model improves in many small steps."
        ),
        analogy=(
            "Like a student who reviews the exam questions they got wrong, again and again, each pass fixing a "
            "little more."
        ),
        multi_output=False,
        has_importances=True,
        estimators={"classification": "sklearn.ensemble.GradientBoostingClassifier",
                    "regression": "sklearn.ensemble.GradientBoostingRegressor"},
    ),
    Algorithm(
        key="adaboost",
        names={"classification": "AdaBoost", "regression": "AdaBoost"},
        tasks=TASKS,
        strategy="staged",
        params=[
            Param("n_estimators", "int", 50, 1, 1000, help="Weak learners (small trees) in the ensemble."),
            Param("learning_rate", "float", 1.0, 0.001, 10.0, log=True, help="Weight given to each new learner."),
            Param("max_depth", "int", 1, 1, 10, tasks=("classification",),
                  help="Depth of each weak tree (1 is a single yes/no question)."),
            Param("max_depth", "int", 3, 1, 10, tasks=("regression",), help="Depth of each weak tree."),
            Param("loss", "choice", "linear", choices=["linear", "square", "exponential"], tasks=("regression",),
                  help="How errors turn into row weights for the next learner."),
        ],
        fixed={task: {"random_state": RUN_SEED} for task in TASKS},
        how_it_works=(
            "Weak learners are trained one after another; rows the ensemble gets wrong gain weight, so the next "
            "learner concentrates on them. The final prediction is a weighted vote (for regression a weighted "
            "median) of all learners."
        ),
        analogy=(
            "Like a panel of so-so experts where each new member is briefed on the cases the others got wrong, "
            "and better members get a louder voice."
        ),
        multi_output=False,
        has_importances=True,
        estimators={"classification": "sklearn.ensemble.AdaBoostClassifier",
                    "regression": "sklearn.ensemble.AdaBoostRegressor"},
        translate=_translate_adaboost,
    ),
    Algorithm(
        key="mlp",
        names={"classification": "Neural network (MLP)", "regression": "Neural network (MLP)"},
        tasks=TASKS,
        strategy="epochs",
        params=[
            Param("hidden_layer_sizes", "int_list", [100], 1, 1024, min_items=1, max_items=4,
                  help="Neurons in each hidden layer."),
            Param("activation", "choice", "relu", choices=["relu", "tanh", "logistic"],
                  help="The non-linearity after each hidden layer."),
            Param("solver", "choice", "adam", choices=["adam", "sgd"], help="How the weights are updated."),
            Param("learning_rate_init", "float", 0.001, 1e-5, 1.0, log=True, help="Step size of the updates."),
            Param("alpha", "float", 0.0001, 1e-7, 10.0, log=True, help="L2 penalty on the weights."),
            Param("batch_size", "int", None, 1, 4096, nullable=True,
                  help="Rows per update; null means min(200, training rows)."),
            Param("momentum", "float", 0.9, 0.0, 0.999, help="Momentum of the sgd solver (adam ignores it)."),
            Param("epochs", "int", 20, 1, 500, help="Passes over the training rows; each is one live step."),
        ],
        # shuffle=False: the trainer shuffles every epoch itself, because partial_fit with an int
        # random_state would replay the very same order each epoch
        fixed={task: {"random_state": RUN_SEED, "shuffle": False} for task in TASKS},
        how_it_works=(
            "Layers of simple units each compute a weighted sum of their inputs and pass it through a "
            "non-linearity. Training nudges every weight a little against the gradient of the error, pass "
            "after pass over the data."
        ),
        analogy=(
            "Like tuning a huge mixing desk by ear: after each song you move every slider slightly in the "
            "direction that made it sound better."
        ),
        multi_output=True,
        has_importances=False,
        estimators={"classification": "sklearn.neural_network.MLPClassifier",
                    "regression": "sklearn.neural_network.MLPRegressor"},
        translate=_translate_mlp,
    ),
    Algorithm(
        key="svm",
        names={"classification": "Support vector machine", "regression": "Support vector regression"},
        tasks=TASKS,
        strategy="learning_curve",
        params=[
            Param("C", "float", 1.0, 0.001, 1000.0, log=True,
                  help="Penalty for mistakes on training rows; larger fits them more tightly."),
            Param("kernel", "choice", "rbf", choices=["rbf", "linear", "poly", "sigmoid"],
                  help="The similarity measure between rows."),
            Param("gamma", "choice", "scale", choices=["scale", "auto"],
                  help="Reach of a single row for rbf, poly and sigmoid kernels."),
            Param("degree", "int", 3, 1, 5, help="Degree of the poly kernel."),
            Param("epsilon", "float", 0.1, 0.0, 10.0, tasks=("regression",),
                  help="Errors smaller than this (in standardized target units) cost nothing."),
        ],
        fixed={"classification": {"calibration": "sigmoid", "calibration_folds": 5}, "regression": {}},
        how_it_works=(
            "The model finds the boundary that separates the classes with the widest possible margin, using a "
            "kernel to bend that boundary when a straight one will not do. Probabilities come from a sigmoid "
            "fitted to cross-validated scores."
        ),
        analogy=(
            "Like laying a road between two villages so that it stays as far as possible from the nearest house "
            "on either side."
        ),
        multi_output=False,
        has_importances=False,
        estimators={"classification": "sklearn.svm.SVC", "regression": "sklearn.svm.SVR"},
        build=_build_svm,
    ),
    Algorithm(
        key="linear",
        names={"classification": "Logistic regression", "regression": "Linear regression (ridge)"},
        tasks=TASKS,
        strategy="learning_curve",
        params=[
            Param("C", "float", 1.0, 1e-4, 1e4, log=True, tasks=("classification",),
                  help="Inverse strength of the L2 penalty; larger trusts the training rows more."),
            Param("max_iter", "int", 1000, 10, 10000, tasks=("classification",),
                  help="Solver iterations allowed before giving up on convergence."),
            Param("alpha", "float", 1.0, 1e-4, 1e4, log=True, tasks=("regression",),
                  help="Strength of the L2 penalty that keeps coefficients small."),
        ],
        fixed={"classification": {}, "regression": {}},
        how_it_works=(
            "Every feature gets a weight and the prediction is their weighted sum (for classification squeezed "
            "into probabilities). A penalty on large weights keeps the model from leaning too hard on any one "
            "feature."
        ),
        analogy="Like a recipe that says how much each ingredient adds to the taste.",
        multi_output=True,
        has_importances=True,
        estimators={"classification": "sklearn.linear_model.LogisticRegression",
                    "regression": "sklearn.linear_model.Ridge"},
    ),
    Algorithm(
        key="decision_tree",
        names={"classification": "Decision tree", "regression": "Decision tree"},
        tasks=TASKS,
        strategy="learning_curve",
        params=[*_TREE_SHAPE, *_CRITERIA],
        fixed={task: {"random_state": RUN_SEED} for task in TASKS},
        how_it_works=(
            "The tree asks one yes/no question about a feature at a time, choosing each question to split the "
            "rows into purer groups. A prediction follows the answers down to a leaf."
        ),
        analogy="Like a game of twenty questions, or a flowchart a help desk follows.",
        multi_output=True,
        has_importances=True,
        estimators={"classification": "sklearn.tree.DecisionTreeClassifier",
                    "regression": "sklearn.tree.DecisionTreeRegressor"},
    ),
    Algorithm(
        key="knn",
        names={"classification": "k-nearest neighbours", "regression": "k-nearest neighbours"},
        tasks=TASKS,
        strategy="learning_curve",
        params=[
            Param("n_neighbors", "int", 5, 1, 100,
                  help="Neighbours consulted (capped at the training rows available)."),
            Param("weights", "choice", "uniform", choices=["uniform", "distance"],
                  help="Whether closer neighbours count more."),
            Param("metric", "choice", "euclidean", choices=["euclidean", "manhattan", "chebyshev"],
                  help="How distance between rows is measured."),
        ],
        fixed={task: {"n_jobs": WORKER_THREADS} for task in TASKS},
        how_it_works=(
            "Nothing is learned up front: the training rows are stored. A new row gets the majority class (or "
            "the average value) of the k stored rows closest to it."
        ),
        analogy="Like guessing a house's price from the prices of the few most similar houses nearby.",
        multi_output=True,
        has_importances=False,
        estimators={"classification": "sklearn.neighbors.KNeighborsClassifier",
                    "regression": "sklearn.neighbors.KNeighborsRegressor"},
    ),
    Algorithm(
        key="naive_bayes",
        names={"classification": "Naive Bayes (Gaussian)"},
        tasks=("classification",),
        strategy="learning_curve",
        params=[
            Param("var_smoothing", "float", 1e-9, 1e-12, 1.0, log=True,
                  help="Share of the largest feature variance added to every variance, for stability."),
        ],
        fixed={"classification": {}},
        how_it_works=(
            "For each class the model learns the mean and spread of every feature. A new row goes to the class "
            "under which its values are most typical, counting each feature as independent evidence."
        ),
        analogy=(
            "Like a doctor who weighs each symptom separately against what is typical for each illness, and "
            "picks the illness that fits best overall."
        ),
        multi_output=False,
        has_importances=False,
        estimators={"classification": "sklearn.naive_bayes.GaussianNB"},
    ),
]}


def catalog() -> list[dict[str, Any]]:
    """Every algorithm as JSON, in catalog order."""
    return [a.to_dict() for a in ALGORITHMS.values()]


# The project's own torch networks run in experiments too: a run names a network instead of an
# algorithm, and trains with the network's hyper-parameters (POST /api/networks/{id}/train's body).
NETWORK_RUNS: dict[str, Any] = {
    "key": "network",
    "start_with": "network_id",
    "tasks": list(TASKS),
    "params": [
        Param("epochs", "int", 5, 1, 10_000, help="Passes over the training rows; each is one live step.").to_dict(),
        Param("mini_batch_size", "int", 10, 1, 100_000, log=True,
              help="Rows per gradient step (layer_sizes networks default to 10, others to 32).").to_dict(),
        Param("learning_rate", "float", 3.0, 1e-6, 1000.0, log=True,
              help="Step size (layer_sizes networks default to 3.0, others to their optimizer's default).").to_dict(),
        Param("optimizer", "choice", "sgd", choices=["sgd", "adam", "adamw"],
              help="Defaults to the network's own (adam for layer specs); layer_sizes networks always use plain "
                   "SGD.").to_dict(),
    ],
    "how_it_works": (
        "A network of layers you define (POST /api/networks) turns each row into outputs through weighted sums "
        "and simple non-linear functions. Training nudges every weight against the gradient of the error, "
        "a mini-batch at a time, and each pass over the data is one epoch."
    ),
    "analogy": (
        "Like a team passing a draft down a line of editors: each reshapes it a little, and after every round "
        "of feedback each adjusts how much they change."
    ),
}


def get_algorithm(key: str) -> Algorithm:
    """The algorithm called `key`, or an unknown_algorithm error listing the keys."""
    algorithm = ALGORITHMS.get(key) if isinstance(key, str) else None
    if algorithm is None:
        raise ValidationError(f"unknown algorithm {key!r}; expected one of {', '.join(ALGORITHMS)}",
                              code="unknown_algorithm", detail={"field": "algorithm"})
    return algorithm


def check_task(algorithm: Algorithm, task: str) -> None:
    """Raise unsupported_task unless the algorithm serves `task`."""
    if task not in algorithm.tasks:
        raise ValidationError(
            f"{algorithm.key} does not do {task}; it does {' and '.join(algorithm.tasks)}",
            code="unsupported_task", detail={"field": "task"},
        )


def resolve_params(key: str, task: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Every parameter of the algorithm for `task`: given values checked, the rest at their defaults."""
    algorithm = get_algorithm(key)
    check_task(algorithm, task)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _bad("params", "must be an object of parameter names and values")
    known = {p.name: p for p in algorithm.params_for(task)}
    for name in params:
        if name not in known:
            raise _bad(f"params.{name}", f"is not a parameter of {key} for {task}; "
                                         f"expected one of {', '.join(known)}")
    return {name: p.check(params[name], f"params.{name}") if name in params else _copy(p.default)
            for name, p in known.items()}


def resolve_steps(steps: Any) -> int:
    """How many live steps a run is split into, checked (MIN_STEPS..MAX_STEPS)."""
    number = _as_int(steps)
    if number is None or not MIN_STEPS <= number <= MAX_STEPS:
        raise _bad("steps", f"must be an integer between {MIN_STEPS} and {MAX_STEPS}")
    return number


def build_estimator(key: str, task: str, params: dict[str, Any] | None, seed: int, *, n_jobs: int = 1) -> Any:
    """An unfitted scikit-learn estimator: the checked parameters plus the algorithm's fixed settings."""
    algorithm = get_algorithm(key)
    resolved = resolve_params(key, task, params)
    kwargs = algorithm.translate(task, resolved) if algorithm.translate else resolved
    for name, value in algorithm.fixed[task].items():
        kwargs[name] = seed if value == RUN_SEED else n_jobs if value == WORKER_THREADS else value
    if algorithm.build:
        return algorithm.build(task, kwargs)
    return _instantiate(algorithm.estimators[task], kwargs)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
