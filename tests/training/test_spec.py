"""Network specs and hyper-parameters, validated at the API edge with messages naming the field or layer."""

from __future__ import annotations

import pytest

from livetrain.errors import ValidationError
from livetrain.training.spec import HyperParams, NetworkSpec, parse_hyperparams, parse_layer, parse_network_spec


def hp_for(body, spec=None, *, max_epochs=100, n_train=120):
    spec = spec or parse_network_spec({"layer_sizes": [4, 5, 3]})
    return parse_hyperparams(body, spec, max_epochs=max_epochs, n_train=n_train)


def layers_spec(**body):
    return parse_network_spec({"layers": [{"type": "Linear", "out_features": 3}], **body})


def test_layer_sizes_get_nielsen_semantics():
    spec = parse_network_spec({"layer_sizes": [784, 30, 10]})
    assert spec.kind == "layer_sizes"
    assert spec.layer_sizes == [784, 30, 10]
    assert (spec.loss, spec.optimizer, spec.learning_rate) == ("quadratic", "sgd", 3.0)
    assert spec.init == "scaled" and spec.seed == 0
    assert spec.wants_images is False


def test_whole_floats_are_accepted_as_widths():
    assert parse_network_spec({"layer_sizes": [784.0, 30, 10]}).layer_sizes == [784, 30, 10]


@pytest.mark.parametrize("sizes, problem", [
    (None, "layer_sizes must be a list of at least two"),
    ([784], "layer_sizes must be a list of at least two"),
    ("784,30,10", "layer_sizes must be a list"),
    ([784, 0, 10], r"layer_sizes\[1\] must be in \[1, 1000000\]"),
    ([784, -3, 10], r"layer_sizes\[1\] must be in"),
    ([784, 30.5, 10], r"layer_sizes\[1\] must be a whole number"),
    ([784, "30", 10], r"layer_sizes\[1\] must be a number"),
    ([784, True, 10], r"layer_sizes\[1\] must be a number"),
    ([784, 2_000_000, 10], r"layer_sizes\[1\] must be in"),
    ([2] * 201, "at most 200 layers"),
])
def test_bad_layer_sizes_are_refused_naming_the_entry(sizes, problem):
    with pytest.raises(ValidationError, match=problem):
        parse_network_spec({"layer_sizes": sizes})


def test_layers_default_to_adam_and_cross_entropy():
    spec = layers_spec()
    assert spec.kind == "layers"
    assert (spec.loss, spec.optimizer, spec.learning_rate, spec.momentum) == ("cross_entropy", "adam", 0.001, 0.0)
    sgd = layers_spec(optimizer="SGD")
    assert (sgd.optimizer, sgd.learning_rate, sgd.momentum) == ("sgd", 0.01, 0.9)


def test_layer_types_are_matched_case_insensitively_and_get_defaults():
    assert parse_layer(0, {"type": "linear", "out_features": 5}) == {"type": "Linear", "out_features": 5, "bias": True}
    assert parse_layer(2, {"type": "dropout"}) == {"type": "Dropout", "p": 0.5}
    assert parse_layer(1, {"type": "CONV2D", "out_channels": 4, "kernel_size": 3}) == {
        "type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 1, "padding": 0}


def test_image_layers_make_the_spec_want_images():
    spec = parse_network_spec({"layers": [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3},
                                          {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]})
    assert spec.wants_images is True


@pytest.mark.parametrize("index, layer, problem", [
    (0, "Linear", r"layers\[0\] must be an object with a 'type'"),
    (1, {"out_features": 3}, r"layers\[1\] must be an object with a 'type'"),
    (2, {"type": "Transformer"}, r"layers\[2\]: unknown layer type 'Transformer'"),
    (3, {"type": "Linear"}, r"layers\[3\] \(Linear\): 'out_features' is required"),
    (4, {"type": "Linear", "out_features": 3, "activation": "relu"},
     r"layers\[4\] \(Linear\): unknown parameter\(s\) activation"),
    (5, {"type": "Linear", "out_features": 0}, r"layers\[5\]\.out_features must be in"),
    (6, {"type": "Linear", "out_features": "ten"}, r"layers\[6\]\.out_features must be a number"),
    (7, {"type": "Linear", "out_features": 3, "bias": "yes"}, r"layers\[7\]\.bias must be true or false"),
    (8, {"type": "Dropout", "p": 1.0}, r"layers\[8\] \(Dropout\): p must be below 1"),
    (9, {"type": "Dropout", "p": 1.5}, r"layers\[9\]\.p must be in"),
    (10, {"type": "Conv2d", "out_channels": 4}, r"layers\[10\] \(Conv2d\): 'kernel_size' is required"),
    (11, {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": -1}, r"layers\[11\]\.padding must be in"),
])
def test_bad_layers_are_refused_naming_the_layer(index, layer, problem):
    with pytest.raises(ValidationError, match=problem) as caught:
        parse_layer(index, layer)
    detail = caught.value.detail
    # structure errors carry the layer's index, a bad value its field path: either way the layer is named
    assert detail.get("layer") == index or detail.get("field", "").startswith(f"layers[{index}].")


@pytest.mark.parametrize("body, problem", [
    ({"layers": []}, "layers must be a non-empty list"),
    ({"layers": {"type": "Linear"}}, "layers must be a non-empty list"),
    ({"layers": [{"type": "Linear", "out_features": 3}], "layer_sizes": [4, 3]}, "either layer_sizes or layers"),
    ({"layers": [{"type": "Flatten"}] * 201}, "at most 200 layers"),
    ({"loss": "hinge"}, "loss must be one of cross_entropy, mse"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam, adamw"),
    ({"learning_rate": 0}, r"learning_rate must be in \(0.0, 100.0\]"),
    ({"learning_rate": 101}, "learning_rate must be in"),
    ({"learning_rate": float("nan")}, "learning_rate must be in"),
    ({"momentum": 1.0}, "momentum must be in"),
    ({"weight_decay": -0.1}, "weight_decay must be in"),
    ({"seed": -1}, "seed must be in"),
    ({"seed": 2**31}, "seed must be in"),
])
def test_bad_network_options_are_refused(body, problem):
    full = {"layers": [{"type": "Linear", "out_features": 3}], **body}
    with pytest.raises(ValidationError, match=problem):
        parse_network_spec(full)


def test_init_choice_for_layer_sizes():
    assert parse_network_spec({"layer_sizes": [4, 3], "init": "Standard"}).init == "standard"
    with pytest.raises(ValidationError, match="init must be one of scaled, standard"):
        parse_network_spec({"layer_sizes": [4, 3], "init": "xavier"})


@pytest.mark.parametrize("spec", [
    parse_network_spec({"layer_sizes": [64, 30, 10], "seed": 7}),
    parse_network_spec({"layers": [{"type": "Linear", "out_features": 3}, {"type": "ReLU"}], "optimizer": "adamw",
                        "weight_decay": 0.01}),
])
def test_spec_survives_the_trip_to_a_worker(spec):
    assert NetworkSpec.from_dict(spec.to_dict()) == spec
    assert None not in spec.to_dict().values()


def test_nielsen_train_defaults_are_the_original_servers():
    hp = hp_for({})
    assert (hp.epochs, hp.batch_size, hp.learning_rate, hp.optimizer, hp.momentum) == (5, 10, 3.0, "sgd", 0.0)
    assert HyperParams.from_dict(hp.to_dict()) == hp


def test_batch_size_is_an_alias_of_mini_batch_size():
    assert hp_for({"batch_size": 7}).batch_size == 7
    assert hp_for({"mini_batch_size": 9, "batch_size": 7}).batch_size == 9


def test_layer_spec_train_defaults_come_from_the_spec():
    spec = layers_spec(optimizer="sgd", learning_rate=0.05, momentum=0.5)
    hp = hp_for({}, spec)
    assert (hp.batch_size, hp.learning_rate, hp.optimizer, hp.momentum) == (32, 0.05, "sgd", 0.5)
    switched = hp_for({"optimizer": "adam"}, spec)
    assert (switched.optimizer, switched.momentum) == ("adam", 0.0)


@pytest.mark.parametrize("body, problem", [
    ({"epochs": 0}, r"epochs must be in \[1, 100\]"),
    ({"epochs": 101}, r"epochs must be in \[1, 100\]"),
    ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"epochs": "5"}, "epochs must be a number"),
    ({"epochs": True}, "epochs must be a number"),
    ({"mini_batch_size": 0}, r"mini_batch_size must be in \[1, 120\]"),
    ({"mini_batch_size": 121}, r"mini_batch_size must be in \[1, 120\]"),
    ({"learning_rate": 0.0}, "learning_rate must be in"),
    ({"learning_rate": -1}, "learning_rate must be in"),
    ({"learning_rate": 1e6}, "learning_rate must be in"),
    ({"seed": -5}, "seed must be in"),
    ({"optimizer": "adam"}, "optimizer cannot be changed for a layer_sizes network"),
    ({"momentum": 0.9}, "momentum cannot be changed for a layer_sizes network"),
])
def test_bad_hyperparameters_are_refused_naming_the_field(body, problem):
    with pytest.raises(ValidationError, match=problem):
        hp_for(body)


def test_layer_spec_optimizer_must_be_known():
    with pytest.raises(ValidationError, match="optimizer must be one of"):
        hp_for({"optimizer": "lbfgs"}, layers_spec())


# -- Embedding ---------------------------------------------------------------------------------

EMBED = {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8}


def test_embedding_layer_is_parsed_first():
    spec = parse_network_spec({"layers": [EMBED, {"type": "Flatten"}, {"type": "Linear", "out_features": 2}],
                               "loss": "mse"})
    assert spec.layers[0] == {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8}
    assert spec.wants_images is False
    assert NetworkSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("index", [1, 2])
def test_embedding_anywhere_but_first_is_refused_with_its_field_path(index):
    layers = [{"type": "Linear", "out_features": 4}, {"type": "ReLU"}]
    layers.insert(index, EMBED)
    with pytest.raises(ValidationError, match=rf"layers\[{index}\] \(Embedding\) must be the first layer") as caught:
        parse_network_spec({"layers": layers})
    assert caught.value.detail == {"layer": index, "field": f"layers[{index}].type"}


@pytest.mark.parametrize("params, field, problem", [
    ({"num_embeddings": 1, "embedding_dim": 8}, "num_embeddings", r"must be in \[2, 100000\], got 1"),
    ({"num_embeddings": 100_001, "embedding_dim": 8}, "num_embeddings", r"must be in \[2, 100000\]"),
    ({"num_embeddings": 10, "embedding_dim": 0}, "embedding_dim", r"must be in \[1, 1024\], got 0"),
    ({"num_embeddings": 10, "embedding_dim": 1025}, "embedding_dim", r"must be in \[1, 1024\]"),
    ({"num_embeddings": 10.5, "embedding_dim": 8}, "num_embeddings", "must be a whole number"),
    ({"embedding_dim": 8}, "num_embeddings", "'num_embeddings' is required"),
    ({"num_embeddings": 10}, "embedding_dim", "'embedding_dim' is required"),
])
def test_bad_embedding_sizes_are_refused_naming_the_field(params, field, problem):
    with pytest.raises(ValidationError, match=problem) as caught:
        parse_layer(0, {"type": "Embedding", **params})
    assert caught.value.detail["field"] == f"layers[0].{field}"


def test_embedding_size_bounds_are_accepted():
    assert parse_layer(0, {"type": "embedding", "num_embeddings": 2, "embedding_dim": 1024}) == {
        "type": "Embedding", "num_embeddings": 2, "embedding_dim": 1024}
    widest = parse_layer(0, {"type": "Embedding", "num_embeddings": 100_000, "embedding_dim": 1})
    assert widest["num_embeddings"] == 100_000


@pytest.mark.parametrize("task, text_kind, metric", [
    ("classification", None, "f1"),  # f1 is a text dataset's epoch metric only
    ("classification", None, "perplexity"),
    ("regression", None, "mae"),
    ("regression", None, "rmse"),  # no epoch reports rmse (the final metrics do)
    ("regression", "regression", "rmse"),
    ("classification", "binary_classification", "exact_match"),
    ("sequence", "generation", "exact_match"),  # only question answering decodes answers
    ("sequence", "generation", "r2"),
])
def test_a_control_watching_a_metric_the_dataset_never_reports_is_refused(task, text_kind, metric):
    spec = layers_spec()
    for control in ("early_stopping", "lr_schedule"):
        body = {"early_stopping": {"metric": metric}} if control == "early_stopping" else {
            "lr_schedule": {"type": "reduce_on_plateau", "metric": metric}}
        with pytest.raises(ValidationError) as error:
            parse_hyperparams(body, spec, max_epochs=10, n_train=100, task=task, text_kind=text_kind)
        assert error.value.detail == {"field": f"{control}.metric"}
        assert f"{metric!r} is never reported for a {task} dataset" in error.value.message


@pytest.mark.parametrize("task, text_kind, metric", [
    ("classification", None, "accuracy"),
    ("classification", "multiclass_classification", "f1"),
    ("regression", None, "r2"),
    ("regression", "regression", "mae"),
    ("sequence", "generation", "perplexity"),
    ("sequence", "summarization", "accuracy"),
    ("sequence", "question_answering", "exact_match"),
    ("regression", None, "val_loss"),
])
def test_a_control_watching_a_metric_the_dataset_reports_is_accepted(task, text_kind, metric):
    hp = parse_hyperparams({"early_stopping": {"metric": metric}}, layers_spec(), max_epochs=10, n_train=100,
                           task=task, text_kind=text_kind)
    assert hp.early_stopping["metric"] == metric


def test_the_default_mini_batch_fits_a_small_training_split():
    # a text dataset typed in sample by sample has fewer training rows than the default batch of 32
    assert parse_hyperparams({}, layers_spec(), max_epochs=10, n_train=9).batch_size == 9
    nielsen = parse_network_spec({"layer_sizes": [4, 5, 3]})
    assert parse_hyperparams({}, nielsen, max_epochs=10, n_train=6).batch_size == 6
    assert parse_hyperparams({}, layers_spec(), max_epochs=10, n_train=500).batch_size == 32
    with pytest.raises(ValidationError, match=r"mini_batch_size must be in \[1, 9\], got 32"):
        parse_hyperparams({"mini_batch_size": 32}, layers_spec(), max_epochs=10, n_train=9)  # asked for: refused
