"""Building torch models from specs: sizes inferred, shapes checked by a dry run, errors naming the layer."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from livetrain.errors import ValidationError
from livetrain.training.model import (
    build_model,
    check_embedding_inputs,
    describe_layers,
    input_shape_for,
    output_size,
    parameter_count,
)
from livetrain.training.spec import parse_network_spec

DIGITS = ([1, 8, 8], "classification", 10)
IRIS = ([4], "classification", 3)
DIABETES = ([10], "regression", 0)
SEMIPRIMES = ([4], "regression", 0)  # four digits per row, two targets (the factors)


def build(body, dataset=DIGITS, max_parameters=10_000_000, **options):
    shape, task, n_classes = dataset
    return build_model(parse_network_spec(body), shape, task, n_classes, max_parameters=max_parameters, **options)


def layers(*specs, **body):
    return {"layers": list(specs), **body}


def test_layer_sizes_build_sigmoid_layers_with_nielsen_parameter_count():
    model = build({"layer_sizes": [64, 30, 10]})
    assert [type(m).__name__ for m in model] == ["Linear", "Sigmoid", "Linear", "Sigmoid"]
    assert parameter_count(model) == 64 * 30 + 30 + 30 * 10 + 10
    out = model(torch.rand(5, 64))
    assert out.shape == (5, 10) and ((out > 0) & (out < 1)).all()


@pytest.mark.parametrize("init, weight_std", [("scaled", 1 / math.sqrt(784)), ("standard", 1.0)])
def test_nielsen_initialisation(init, weight_std):
    model = build({"layer_sizes": [784, 100, 10], "init": init}, dataset=([1, 28, 28], "classification", 10))
    weights, biases = model[0].weight.detach(), model[0].bias.detach()
    assert float(weights.std()) == pytest.approx(weight_std, rel=0.05)
    assert float(biases.std()) == pytest.approx(1.0, rel=0.3)  # biases are N(0, 1) either way


def test_same_seed_same_weights_other_seed_other_weights():
    a = build({"layer_sizes": [64, 30, 10], "seed": 1})
    b = build({"layer_sizes": [64, 30, 10], "seed": 1})
    c = build({"layer_sizes": [64, 30, 10], "seed": 2})
    assert torch.equal(a[0].weight, b[0].weight)
    assert not torch.equal(a[0].weight, c[0].weight)
    d = build(layers({"type": "Linear", "out_features": 10}, seed=3))
    e = build(layers({"type": "Linear", "out_features": 10}, seed=3))
    assert torch.equal(d[0].weight, e[0].weight)


@pytest.mark.parametrize("sizes, problem", [
    ([63, 30, 10], "layer_sizes starts with 63 inputs but the dataset has 64 features"),
    ([64, 30, 9], "layer_sizes ends with 9 outputs but the dataset has 10 classes"),
])
def test_layer_sizes_must_fit_the_dataset(sizes, problem):
    with pytest.raises(ValidationError, match=problem):
        build({"layer_sizes": sizes})


def test_layer_sizes_refuse_regression():
    with pytest.raises(ValidationError, match="layer_sizes networks classify"):
        build({"layer_sizes": [10, 1]}, dataset=DIABETES)


def test_layer_sizes_over_the_parameter_cap_are_refused_before_allocating():
    with pytest.raises(ValidationError, match="1,000,009,000,003 parameters, over the limit of 5,000") as caught:
        build({"layer_sizes": [4, 1_000_000, 1_000_000, 3]}, dataset=IRIS, max_parameters=5000)
    assert caught.value.code == "too_large"


def test_linear_sizes_are_inferred_from_the_data():
    model = build(layers({"type": "Linear", "out_features": 16}, {"type": "ReLU"},
                         {"type": "Dropout", "p": 0.2}, {"type": "Linear", "out_features": 10}))
    assert (model[0].in_features, model[3].in_features) == (64, 16)
    assert parameter_count(model) == 64 * 16 + 16 + 16 * 10 + 10
    assert model.training  # built ready to train


def test_conv_net_keeps_the_image_shape():
    spec = layers({"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
                  {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
                  {"type": "Flatten"}, {"type": "Linear", "out_features": 10})
    model = build(spec)
    table = describe_layers(model, parse_network_spec(spec), [1, 8, 8])
    assert [(row["type"], row["output_shape"]) for row in table] == [
        ("Conv2d", [4, 8, 8]), ("BatchNorm2d", [4, 8, 8]), ("ReLU", [4, 8, 8]),
        ("MaxPool2d", [4, 4, 4]), ("Flatten", [64]), ("Linear", [10])]
    assert sum(row["parameters"] for row in table) == parameter_count(model)
    assert model.training  # describing does not leave BatchNorm in eval mode


def test_input_shape_flattens_images_for_dense_nets_only():
    dense = parse_network_spec(layers({"type": "Linear", "out_features": 10}))
    conv = parse_network_spec(layers({"type": "Conv2d", "out_channels": 2, "kernel_size": 3}))
    assert input_shape_for(dense, [1, 8, 8]) == (64,)
    assert input_shape_for(conv, [1, 8, 8]) == (1, 8, 8)
    with pytest.raises(ValidationError, match="need image data; this dataset's rows have shape \\[4\\]"):
        input_shape_for(conv, [4])


@pytest.mark.parametrize("spec, dataset, layer, problem", [
    (layers({"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "Linear", "out_features": 10}),
     DIGITS, 1,
     r"layers\[1\] \(Linear\) expects flat \(add a Flatten layer before it\) or a sequence \(length x features\) "
     r"input but receives shape \[4, 6, 6\]"),
    (layers({"type": "Conv2d", "out_channels": 4, "kernel_size": 9}, {"type": "Flatten"},
            {"type": "Linear", "out_features": 10}),
     DIGITS, 0, r"layers\[0\] \(Conv2d\) cannot take input of shape \[1, 8, 8\]"),
    (layers({"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "MaxPool2d", "kernel_size": 7},
            {"type": "Flatten"}, {"type": "Linear", "out_features": 10}),
     DIGITS, 1, r"layers\[1\] \(MaxPool2d\) cannot take input of shape \[4, 6, 6\]"),
    (layers({"type": "Linear", "out_features": 8, "in_features": 5}, {"type": "Linear", "out_features": 3}),
     IRIS, 0, r"layers\[0\] \(Linear\): in_features is 5 but the input has 4 features"),
    (layers({"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "in_channels": 3}, {"type": "Flatten"},
            {"type": "Linear", "out_features": 10}),
     DIGITS, 0, r"layers\[0\] \(Conv2d\): in_channels is 3 but the input has 1 channels"),
    (layers({"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "Flatten"}, {"type": "BatchNorm2d"},
            {"type": "Linear", "out_features": 10}),
     DIGITS, 2, r"layers\[2\] \(BatchNorm2d\) expects channels x height x width input but receives shape \[72\]"),
    (layers({"type": "Linear", "out_features": 8}, {"type": "Linear", "out_features": 4}),
     IRIS, 1, r"the last layer must give 3 output\(s\) for this classification dataset, it gives \[4\]"),
])
def test_shape_errors_name_the_failing_layer(spec, dataset, layer, problem):
    with pytest.raises(ValidationError, match=problem) as caught:
        build(spec, dataset=dataset)
    assert caught.value.detail == {"layer": layer}


def test_cross_entropy_needs_classification():
    with pytest.raises(ValidationError, match="cross_entropy needs a classification dataset"):
        build(layers({"type": "Linear", "out_features": 1}), dataset=DIABETES)
    model = build(layers({"type": "Linear", "out_features": 1}, loss="mse"), dataset=DIABETES)
    assert model(torch.zeros(3, 10)).shape == (3, 1)


def test_layer_spec_over_the_parameter_cap_names_the_layer():
    with pytest.raises(ValidationError, match=r"more than 1,000 parameters \(at layers\[2\]\)") as caught:
        build(layers({"type": "Linear", "out_features": 10}, {"type": "ReLU"},
                     {"type": "Linear", "out_features": 100}, {"type": "Linear", "out_features": 3}),
              dataset=IRIS, max_parameters=1000)
    assert caught.value.code == "too_large"
    assert caught.value.detail == {"layer": 2}


def test_a_huge_layer_is_refused_without_being_built():
    # 1,000,000 x 1,000,000 weights would need 4 TB: refused by counting, not by running out of memory
    with pytest.raises(ValidationError, match="parameters") as caught:
        build(layers({"type": "Linear", "out_features": 1_000_000}, {"type": "Linear", "out_features": 1_000_000},
                     {"type": "Linear", "out_features": 10}))
    assert caught.value.code == "too_large"


def test_built_model_is_a_plain_sequential_of_torch_modules():
    model = build(layers({"type": "Linear", "out_features": 10}, {"type": "LeakyReLU", "negative_slope": 0.2},
                         {"type": "GELU"}, {"type": "Tanh"}, {"type": "Linear", "out_features": 10}))
    assert isinstance(model, nn.Sequential)
    assert isinstance(model[1], nn.LeakyReLU) and model[1].negative_slope == 0.2
    # weights_only loading needs nothing but tensors in the state_dict
    assert all(isinstance(v, torch.Tensor) for v in model.state_dict().values())


@pytest.mark.parametrize("layer", [
    {"type": "Conv2d", "out_channels": 100_000, "kernel_size": 1},  # few weights, vast activations
    {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 50_000},
])
def test_a_layer_with_vast_activations_is_refused_before_the_dry_run(layer):
    spec = parse_network_spec({"layers": [layer, {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]})
    with pytest.raises(ValidationError) as caught:
        build_model(spec, [1, 28, 28], "classification", 10, max_parameters=10**9)
    assert caught.value.code == "too_large"
    assert "layers[0] (Conv2d)" in caught.value.message
    assert "values per example" in caught.value.message


# -- embeddings, several regression targets ------------------------------------------------------

EMBED_HEAD = layers({"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8}, {"type": "Flatten"},
                    {"type": "Linear", "out_features": 64}, {"type": "ReLU"}, {"type": "Linear", "out_features": 2},
                    loss="mse", learning_rate=0.003)


def test_output_size_is_classes_or_regression_targets():
    assert output_size("classification", 10) == 10
    assert output_size("regression", 0) == 1
    assert output_size("regression", 0, 2) == 2
    assert output_size("classification", 3, 2) == 3  # n_outputs is for regression only


def test_embedding_over_digits_with_a_two_output_head():
    model = build(EMBED_HEAD, SEMIPRIMES, n_outputs=2)
    table = describe_layers(model, parse_network_spec(EMBED_HEAD), [4])
    assert [(row["type"], row["output_shape"], row["parameters"]) for row in table] == [
        ("Embedding", [4, 8], 10 * 8), ("Flatten", [32], 0), ("Linear", [64], 32 * 64 + 64),
        ("ReLU", [64], 0), ("Linear", [2], 64 * 2 + 2)]
    assert parameter_count(model) == 80 + 32 * 64 + 64 + 64 * 2 + 2
    assert model.training
    out = model(torch.tensor([[1.0, 2.0, 3.0, 9.0], [0.0, 0.0, 0.0, 0.0]]))  # floats, as feature rows arrive
    assert out.shape == (2, 2)
    # the same digit in two positions looks up the same vector
    embedded = model[0](torch.tensor([[7.0, 7.0, 0.0, 0.0]]))
    assert torch.equal(embedded[0, 0], embedded[0, 1])


def test_embedding_state_dict_is_torchs():
    model = build(EMBED_HEAD, SEMIPRIMES, n_outputs=2)
    assert isinstance(model[0], nn.Embedding)
    assert model.state_dict()["0.weight"].shape == (10, 8)


def test_embedding_output_needs_a_flatten_or_a_pool_before_the_output():
    # a Linear acts per position on a sequence, so without a Flatten the output is still one per digit
    spec = layers({"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8},
                  {"type": "Linear", "out_features": 1}, loss="mse")
    with pytest.raises(ValidationError, match=r"the last layer must give 1 output\(s\) .* it gives \[4, 1\]"):
        build(spec, SEMIPRIMES)


def test_embedding_counts_against_the_parameter_cap():
    spec = layers({"type": "Embedding", "num_embeddings": 100_000, "embedding_dim": 1024}, {"type": "Flatten"},
                  {"type": "Linear", "out_features": 1}, loss="mse")
    with pytest.raises(ValidationError, match=r"more than 1,000,000 parameters \(at layers\[0\]\)") as caught:
        build(spec, SEMIPRIMES, max_parameters=1_000_000)
    assert caught.value.code == "too_large"


def test_embedding_counts_against_the_activation_cap():
    spec = layers({"type": "Embedding", "num_embeddings": 10, "embedding_dim": 1024}, {"type": "Flatten"},
                  {"type": "Linear", "out_features": 1}, loss="mse")
    with pytest.raises(ValidationError, match=r"layers\[0\] \(Embedding\) would produce 5,120,000 values per "
                                              r"example.*smaller embedding_dim") as caught:
        build(spec, ([5000], "regression", 0))
    assert caught.value.code == "too_large"


def test_an_embedding_stored_out_of_place_is_refused_at_build():
    spec = parse_network_spec(layers({"type": "Flatten"}, {"type": "Linear", "out_features": 1}, loss="mse"))
    spec.layers.insert(1, {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 4})  # as if from old storage
    with pytest.raises(ValidationError, match=r"layers\[1\] \(Embedding\) must be the first layer"):
        build_model(spec, [4], "regression", 0, max_parameters=10**6)


@pytest.mark.parametrize("value", [10.0, -1.0, 2.5, float("nan")])
def test_embedding_inputs_must_be_whole_numbers_in_range(value):
    model = build(EMBED_HEAD, SEMIPRIMES, n_outputs=2)
    X = np.zeros((5, 4), dtype=np.float32)
    X[3, 2] = value
    problem = (r"layers\[0\] \(Embedding\) takes whole numbers in \[0, 10\) as inputs, but the train split has "
               rf"{re.escape(repr(float(value)))} \(row 3, feature 2\)")
    with pytest.raises(ValidationError, match=problem):
        check_embedding_inputs(model, X, "the train split")
    model.eval()  # predicting: inputs are checked as they arrive
    with pytest.raises(ValidationError, match=r"layers\[0\] \(Embedding\) .* but the input has"):
        model(torch.from_numpy(X))
    check_embedding_inputs(model, np.full((5, 4), 9.0, dtype=np.float32), "the train split")  # in range: no error


def test_input_check_ignores_networks_without_an_embedding():
    check_embedding_inputs(build(layers({"type": "Linear", "out_features": 3}), IRIS), np.full((2, 4), -0.5), "x")


def test_regression_with_two_targets_needs_two_outputs():
    spec = layers({"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "out_features": 1},
                  loss="mse")
    with pytest.raises(ValidationError, match=r"the last layer must give 2 output\(s\) for this regression dataset, "
                                              r"it gives \[1\]") as caught:
        build(spec, SEMIPRIMES, n_outputs=2)
    assert caught.value.detail == {"layer": 2}
    assert build(spec, SEMIPRIMES)[-1].out_features == 1  # one target unless told otherwise


def test_layer_sizes_for_several_targets_name_the_outputs_a_layer_spec_needs():
    with pytest.raises(ValidationError, match=r"layer_sizes networks classify.*last Linear giving 2 output\(s\)"):
        build({"layer_sizes": [4, 30, 2]}, SEMIPRIMES, n_outputs=2)
