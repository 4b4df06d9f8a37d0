"""Named heads: parsed and checked against the layers and the dataset, built, trained together on the
weighted sum of their losses, and reported per head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livetrain.data.sources import load_dataset
from livetrain.errors import ValidationError
from livetrain.training.examples import collect_examples
from livetrain.training.model import HeadedModel, build_model, describe_layers, parameter_count
from livetrain.training.spec import memory_estimate, parse_hyperparams, parse_network_spec
from livetrain.training.trainer import make_engine, train
from tests.training.test_trainer import Recorder, digit_targets

MLP = [{"type": "Linear", "out_features": 32}, {"type": "ReLU"}, {"type": "Linear", "out_features": 16},
       {"type": "ReLU"}]
DIGIT_TRUNK = [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8}, {"type": "Flatten"},
               {"type": "Linear", "out_features": 64}, {"type": "ReLU"}]
TWO_TARGETS = {"layers": DIGIT_TRUNK, "learning_rate": 0.003, "heads": [
    {"name": "mod7", "task": "regression", "target": 0},
    {"name": "hundreds", "task": "regression", "target": 1, "loss": "huber", "weight": 2.0}]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def heads_body(*heads, layers=MLP, **body):
    return {"layers": layers, "heads": list(heads), **body}


def build_for(body, shape=(30,), task="classification", n_classes=2, n_outputs=1):
    return build_model(parse_network_spec(body), list(shape), task, n_classes, max_parameters=10**7,
                       n_outputs=n_outputs)


# -- parsing ------------------------------------------------------------------------------------

def test_heads_get_defaults_from_their_task():
    spec = parse_network_spec(heads_body({"name": "kind", "task": "classification"},
                                         {"name": "yes", "task": "binary", "attach": 1},
                                         {"name": "size", "task": "regression", "target": 2}))
    assert spec.heads == [
        {"name": "kind", "task": "classification", "attach": 3, "loss": "cross_entropy", "weight": 1.0, "target": 0},
        {"name": "yes", "task": "binary", "attach": 1, "loss": "bce_with_logits", "weight": 1.0, "target": 0},
        {"name": "size", "task": "regression", "attach": 3, "loss": "mse", "weight": 1.0, "target": 2},
    ]
    assert spec.to_dict()["heads"] == spec.heads
    assert "heads" not in parse_network_spec({"layers": MLP}).to_dict()  # old specs are stored as before


@pytest.mark.parametrize("heads, problem, field", [
    ([{"name": "a", "task": "classification"}, {"name": "a", "task": "binary"}],
     r"heads\[1\]: the name 'a' is already used by heads\[0\]; head names must be unique", "heads[1].name"),
    ([{"name": "a", "task": "classification", "attach": 4}], r"heads\[0\]\.attach must be in \[0, 3\]",
     "heads[0].attach"),
    ([{"name": "a", "task": "classification", "attach": -1}], r"heads\[0\]\.attach must be in \[0, 3\]",
     "heads[0].attach"),
    ([{"name": "a", "task": "regression", "loss": "cross_entropy"}],
     r"heads\[0\]: loss 'cross_entropy' does not fit a regression head; use 'mse' or 'huber'", "heads[0].loss"),
    ([{"name": "a", "task": "classification", "loss": "mse"}],
     r"loss 'mse' does not fit a classification head; use 'cross_entropy'", "heads[0].loss"),
    ([{"name": "a", "task": "binary", "loss": "hinge"}], r"heads\[0\]\.loss must be one of", "heads[0].loss"),
    ([{"name": "a.b", "task": "binary"}], r"heads\[0\]: name must be 1-40 letters", "heads[0].name"),
    ([{"name": "a"}], r"heads\[0\]: 'task' is required", "heads[0].task"),
    ([{"name": "a", "task": "ranking"}], r"heads\[0\]\.task must be one of classification, binary", "heads[0].task"),
    ([{"name": "a", "task": "binary", "weight": 0}], r"heads\[0\]\.weight must be in \(0\.0, 1000\.0\]",
     "heads[0].weight"),
    ([{"name": "a", "task": "binary", "colour": "red"}], r"heads\[0\]: unknown parameter\(s\) colour", "heads[0]"),
    ([{"name": "a", "task": "binary", "target": -1}], r"heads\[0\]\.target must be in", "heads[0].target"),
    (["a"], r"heads\[0\]: must be an object", "heads[0]"),
])
def test_bad_heads_are_refused_naming_the_head_and_field(heads, problem, field):
    with pytest.raises(ValidationError, match=problem) as caught:
        parse_network_spec(heads_body(*heads))
    assert caught.value.detail["field"] == field


def test_heads_must_be_a_list_and_need_layers():
    with pytest.raises(ValidationError, match="heads must be a non-empty list"):
        parse_network_spec({"layers": MLP, "heads": []})
    with pytest.raises(ValidationError, match="heads need a network built from layers"):
        parse_network_spec({"layer_sizes": [30, 2], "heads": [{"name": "a", "task": "binary"}]})


# -- fitting the layers and the dataset ---------------------------------------------------------------

@pytest.mark.parametrize("body, dataset, problem", [
    (heads_body({"name": "r", "task": "regression"}), {}, r"heads\[0\] \(r\): a regression head does not fit "
                                                          r"this classification dataset; use classification or binary"),
    (heads_body({"name": "b", "task": "binary"}), {"n_classes": 3},
     r"heads\[0\] \(b\): a binary head does not fit this classification dataset with 3 classes"),
    (heads_body({"name": "c", "task": "classification", "target": 1}), {},
     r"heads\[0\] \(c\): target 1 is not a column of this dataset's targets: it has 1 \(0\)"),
    (heads_body({"name": "p", "task": "regression", "target": 0}, {"name": "q", "task": "regression", "target": 2}),
     {"task": "regression", "n_classes": 0, "n_outputs": 2},
     r"heads\[1\] \(q\): target 2 is not a column of this dataset's targets: it has 2 \(0-1\)"),
    (heads_body({"name": "p", "task": "regression", "target": 0}), {"task": "regression", "n_outputs": 2},
     r"no regression head predicts column\(s\) 1"),
    (heads_body({"name": "c", "task": "classification", "out_features": 3}), {},
     r"heads\[0\] \(c\): out_features is 3 but this dataset needs 2 \(its classes\)"),
    (heads_body({"name": "s", "task": "sequence"}), {"task": "sequence", "n_classes": 20},
     r"heads\[0\] \(s\): a sequence head needs a sequence \(length x features\) but layers\[3\] \(ReLU\) gives \[16\]"),
    (heads_body({"name": "c", "task": "classification"},
                layers=[{"type": "Embedding", "num_embeddings": 20, "embedding_dim": 8},
                        {"type": "LSTM", "hidden_size": 8, "pooling": "none"}]), {"shape": (12,)},
     r"heads\[0\] \(c\): a classification head needs a flat vector but layers\[1\] \(LSTM\) gives \[12, 8\]; "
     r"pool it first"),
])
def test_heads_that_do_not_fit_the_layers_or_the_dataset_are_refused(body, dataset, problem):
    with pytest.raises(ValidationError, match=problem):
        build_for(body, **dataset)


def test_a_classification_dataset_needs_a_head_that_classifies():
    # a language dataset's heads on a classification set: refused by task before anything else
    with pytest.raises(ValidationError, match="a sequence head does not fit this classification dataset"):
        build_for(heads_body({"name": "s", "task": "sequence"}))


def test_heads_are_linears_on_their_layers_listed_in_the_layer_table():
    body = heads_body({"name": "kind", "task": "classification"}, {"name": "early", "task": "binary", "attach": 1,
                                                                    "weight": 0.5})
    model = build_for(body)
    assert isinstance(model, HeadedModel)
    assert list(model.state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
                                        "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]
    rows = describe_layers(model, parse_network_spec(body), [30])
    assert rows[-2:] == [
        {"type": "Head", "name": "kind", "task": "classification", "attach": 3, "output_shape": [2],
         "parameters": 16 * 2 + 2},
        {"type": "Head", "name": "early", "task": "binary", "attach": 1, "output_shape": [1], "parameters": 32 + 1},
    ]
    assert sum(row["parameters"] for row in rows) == parameter_count(model)
    x = torch.randn(4, 30)
    outs = model(x)  # training mode: every head, for the loss
    assert {k: tuple(v.shape) for k, v in outs.items()} == {"kind": (4, 2), "early": (4, 1)}
    model.eval()  # eval mode: what the dataset's network gives, the first classifying head's logits
    assert torch.equal(model(x), outs["kind"].detach())


def test_a_binary_head_answers_as_two_class_logits_whose_softmax_is_its_sigmoid():
    model = build_for(heads_body({"name": "yes", "task": "binary"}))
    model.eval()
    x = torch.randn(5, 30)
    with torch.no_grad():
        logit = model.forward_heads(x)["yes"]
        two = model(x)
    assert two.shape == (5, 2)
    assert torch.allclose(two.softmax(dim=1)[:, 1:], torch.sigmoid(logit), atol=1e-6)


def test_a_sequence_head_predicts_per_position():
    layers = [{"type": "Embedding", "num_embeddings": 20, "embedding_dim": 8, "padding_idx": 0},
              {"type": "GRU", "hidden_size": 8, "pooling": "none"}]
    model = build_for(heads_body({"name": "next", "task": "sequence"}, layers=layers), shape=(12,),
                      task="sequence", n_classes=20)
    model.eval()
    assert model(torch.ones(3, 12)).shape == (3, 12, 20)


# -- training several heads ---------------------------------------------------------------------

def trained(body: dict, data, epochs: int):
    """A network of `body` built for `data` and trained `epochs` epochs at mini-batch 32: spec, model,
    hyper-parameters and the recorder that kept every epoch."""
    spec = parse_network_spec(body)
    model = build_model(spec, data.info.input_shape, data.info.task, data.info.n_classes, max_parameters=10**7,
                        n_outputs=data.n_outputs)
    hp = parse_hyperparams({"epochs": epochs, "batch_size": 32}, spec, max_epochs=10, n_train=len(data.X_train))
    rec = Recorder()
    train(model, spec, hp, data, rec)
    return spec, model, hp, rec


def test_one_head_per_target_column_learns_both_and_reports_each():
    data = digit_targets()
    spec, model, hp, rec = trained(TWO_TARGETS, data, epochs=4)
    first, last = rec.epochs[0], rec.epochs[-1]
    assert set(last.extra) == {"head.mod7.loss", "head.mod7.r2", "head.hundreds.loss", "head.hundreds.r2", "r2"}
    # the loss reported is the weighted total of the heads' losses
    assert last.val_loss == pytest.approx(1.0 * last.extra["head.mod7.loss"] + 2.0 * last.extra["head.hundreds.loss"])
    assert last.extra["head.hundreds.r2"] > 0.8  # n // 100 is read off the first two digits
    assert last.extra["head.hundreds.loss"] < first.extra["head.hundreds.loss"]
    assert last.train_loss < first.train_loss
    assert last.extra["r2"] == pytest.approx((last.extra["head.mod7.r2"] + last.extra["head.hundreds.r2"]) / 2)
    # predictions come back in target order, one column per target, as from a network without heads
    engine = make_engine(model, spec, hp, data)
    outputs = engine.outputs(data.X_test)
    assert outputs.shape == (len(data.X_test), 2)
    with torch.no_grad():
        model.eval()
        heads = model.forward_heads(torch.from_numpy(data.X_test))
    assert np.allclose(outputs[:, 1], heads["hundreds"][:, 0].numpy())


def test_a_classifier_with_a_binary_head_on_breast_cancer_learns_both():
    data = load_dataset("breast_cancer", "/nonexistent")
    body = heads_body({"name": "diagnosis", "task": "classification"},
                      {"name": "benign", "task": "binary", "attach": 1, "weight": 0.5}, learning_rate=0.01)
    spec, model, hp, rec = trained(body, data, epochs=5)
    last = rec.epochs[-1]
    assert last.extra["head.diagnosis.accuracy"] > 0.9
    assert last.extra["head.benign.accuracy"] > 0.9
    assert last.accuracy == last.extra["head.diagnosis.accuracy"]  # the run's accuracy is the first head's
    assert last.correct == round(last.accuracy * last.total)
    assert last.val_loss == pytest.approx(last.extra["head.diagnosis.loss"] + 0.5 * last.extra["head.benign.loss"])
    # right and wrong examples come from the first head, as for a network without heads
    examples = collect_examples(make_engine(model, spec, hp, data), model, data)
    assert examples["correct"] == last.correct
    assert len(examples["right"][0]["network_output"]) == 2


def test_an_auxiliary_classifier_on_an_earlier_layer_trains_with_the_main_one():
    data = load_dataset("digits", "/nonexistent")
    body = heads_body({"name": "main", "task": "classification"},
                      {"name": "aux", "task": "classification", "attach": 1, "weight": 0.3}, learning_rate=0.01)
    spec, model, hp, rec = trained(body, data, epochs=3)
    last = rec.epochs[-1]
    assert last.extra["head.main.accuracy"] > 0.85 and last.extra["head.aux.accuracy"] > 0.85  # chance: 0.1
    # the checkpoint loads into a fresh build and predicts the same
    fresh = build_model(spec, data.info.input_shape, "classification", 10, max_parameters=10**7)
    fresh.load_state_dict(rec.checkpoint()["model"])
    fresh.eval()
    model.eval()
    x = torch.from_numpy(data.X_test[:20])
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


# -- memory --------------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer, momentum, state", [("adam", 0.0, 2), ("adamw", 0.0, 2), ("sgd", 0.9, 1),
                                                         ("sgd", 0.0, 0)])
def test_memory_counts_parameters_gradients_and_optimizer_state(optimizer, momentum, state):
    assert memory_estimate(1000, optimizer, momentum) == {
        "parameters": 4000, "gradients": 4000, "optimizer_state": 4000 * state, "total": 8000 + 4000 * state}


def test_the_optimizer_state_estimate_is_what_torch_keeps():
    model = build_for(heads_body({"name": "kind", "task": "classification"}))
    optimizer = torch.optim.Adam(model.parameters())
    model.train()
    sum(v.sum() for v in model(torch.randn(2, 30)).values()).backward()
    optimizer.step()
    kept = sum(t.numel() * t.element_size() for s in optimizer.state.values() for k, t in s.items() if k != "step")
    assert kept == memory_estimate(parameter_count(model), "adam")["optimizer_state"]
