"""Request and response schemas: they validate types at the edge and document the API (OpenAPI)."""

from __future__ import annotations

from apiflask import Schema, fields
from apiflask.validators import Length, OneOf, Range
from marshmallow import EXCLUDE

from livetrain.errors import ValidationError
from livetrain.training.spec import CONTROLS

MAX_INDEX = 2**31 - 1  # offsets, sequence numbers and indexes beyond this fit no database integer


NOT_A_NUMBER = "Not a valid number: send a JSON number, not a string."


class WholeNumber(fields.Integer):
    """An integer field that refuses 2.5 instead of truncating it to 2, and "10" instead of reading it.

    Not marshmallow's `strict=True`: that refuses 10.0 too, and JSON has one number type, so 10.0 is
    the number 10 (the scikit-learn parameters take it the same way). Only text is refused.
    """

    def _validated(self, value):
        if isinstance(value, str):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class Number(fields.Float):
    """A float field that refuses "0.1": a string is never read as a number."""

    default_error_messages = {"invalid": NOT_A_NUMBER}

    def _validated(self, value):
        if isinstance(value, str):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class Flag(fields.Boolean):
    """A boolean field that takes only true and false, not "yes", "1" or 1."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def optional_list(inner: fields.Field, **kwargs) -> fields.List:
    """A list field that may be left out but not sent as null (marshmallow would let null through)."""
    return fields.List(inner, load_default=None, allow_none=False, **kwargs)


class Loose(Schema):
    """Unknown fields are ignored, so clients of the original server keep working."""

    class Meta:
        unknown = EXCLUDE


class NetworkIn(Loose):
    layer_sizes = optional_list(WholeNumber(), validate=Length(min=2, max=200),
                                metadata={"description": "Nielsen network widths, e.g. [784, 30, 10]"})
    layers = optional_list(fields.Dict(), validate=Length(min=1, max=200),
                           metadata={"description": "Layer specs, e.g. [{'type': 'Linear', 'out_features': 10}]"})
    heads = optional_list(fields.Dict(), validate=Length(min=1, max=16), metadata={
        "description": "Named outputs, e.g. [{'name': 'p', 'task': 'regression', 'target': 0}]; see docs/api.md"})
    name = fields.String(load_default=None)
    dataset_id = fields.String(load_default=None, metadata={"description": "default: mnist if present, else digits"})
    dataset = fields.String(load_default=None, metadata={"description": "alias of dataset_id"})
    loss = fields.String(load_default=None, validate=OneOf(["cross_entropy", "mse"]))
    optimizer = fields.String(load_default=None, validate=OneOf(["sgd", "adam", "adamw"]))
    learning_rate = Number(load_default=None)
    momentum = Number(load_default=None)
    weight_decay = Number(load_default=None)
    init = fields.String(load_default=None, validate=OneOf(["scaled", "standard"]))
    seed = WholeNumber(load_default=None, validate=Range(min=0, max=2**31 - 1))
    template = fields.String(load_default=None, metadata={
        "description": "text datasets: auto or a template name of GET /api/templates?dataset_id=..."})


class TrainIn(Loose):
    epochs = WholeNumber(load_default=None, metadata={"description": "default 5"})
    mini_batch_size = WholeNumber(load_default=None, metadata={"description": "default 10 (layer_sizes)"})
    batch_size = WholeNumber(load_default=None, metadata={"description": "alias of mini_batch_size"})
    learning_rate = Number(load_default=None, metadata={"description": "default 3.0 (layer_sizes)"})
    optimizer = fields.String(load_default=None, validate=OneOf(["sgd", "adam", "adamw"]))
    momentum = Number(load_default=None)
    weight_decay = Number(load_default=None)
    seed = WholeNumber(load_default=None)
    # the training controls have no load_default, so a control left out is absent and one sent as null is
    # None: on a resume, null switches off what the run would inherit (see `train_body`)
    lr_schedule = fields.Raw(allow_none=True, metadata={
        "description": "a learning-rate schedule stepped each epoch: {'type': 'step', 'step_size', 'gamma'}, "
                       "{'type': 'exponential', 'gamma'}, {'type': 'cosine', 't_max', 'eta_min'} or "
                       "{'type': 'reduce_on_plateau', 'factor', 'patience', 'min_lr', 'metric', 'mode'}; "
                       "null: a constant rate"})
    clip_grad_norm = Number(allow_none=True, metadata={
        "description": "clip the gradients' total norm to this; null: no clipping"})
    early_stopping = fields.Raw(allow_none=True, metadata={
        "description": "{'metric': 'val_loss', 'patience': 5, 'min_delta': 0, 'mode': inferred}; the run keeps "
                       "its best epoch's weights; null: no early stopping"})
    resume = Flag(load_default=False, metadata={"description": "continue from the latest checkpoint"})
    experiment_id = fields.String(load_default=None, metadata={"description": "default: the default experiment"})
    queue = fields.String(load_default=None, metadata={
        "description": "the Celery queue of the workers to run it (e.g. gpu); default: the run it continues or "
                       "repeats, else LIVETRAIN_DEFAULT_QUEUE"})
    monitor = Flag(load_default=None, metadata={
        "description": "sample weights and gradients while training (weights_update, training_stats); "
                       "default true for a network of layers"})
    monitor_every = WholeNumber(load_default=None, validate=Range(min=1, max=1_000_000), metadata={
        "description": "sample every N steps; default: by time, at most 4 a second"})
    # checked by the service (livetrain.training.monitor_options), whose 400 names the field
    monitor_explode_above = fields.Raw(load_default=None, metadata={
        "description": "warn of exploding gradients when their global norm is above this; default 1000"})
    monitor_vanish_below = fields.Raw(load_default=None, metadata={
        "description": "warn of vanishing gradients when a layer's norm is below this; default 1e-7"})


class ExperimentIn(Loose):
    name = fields.String(load_default=None)
    description = fields.String(load_default=None)


class ExperimentRunIn(TrainIn):
    algorithm = fields.String(load_default=None, metadata={"description": "a key of GET /api/algorithms"})
    dataset_id = fields.String(load_default=None)
    dataset = fields.String(load_default=None, metadata={"description": "alias of dataset_id"})
    params = fields.Dict(load_default=None, metadata={"description": "the algorithm's tunable parameters"})
    steps = fields.Raw(load_default=None, metadata={"description": "live steps the run is split into (default 10)"})
    network_id = fields.String(load_default=None, metadata={"description": "train this network instead"})


class LeaderboardQuery(Loose):
    metric = fields.String(load_default=None, metadata={"description": "default: accuracy (r2 for regression)"})
    split = fields.String(load_default="test", validate=OneOf(["train", "val", "test"]))
    limit = fields.Integer(load_default=None, validate=Range(min=1, max=MAX_INDEX),
                           metadata={"description": "keep the first N ranked and N unranked runs (default: all)"})


class PageQuery(Loose):
    limit = fields.Integer(load_default=50, validate=Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=Range(min=0, max=MAX_INDEX))


# the field a multi-head network's predict takes; declared where it is refused, so it is not dropped silently
NO_HEAD = {"description": "not taken here (400): a head's own predictions come from POST "
                          "/api/networks/{id}/predict"}


def refuse_head(body: dict, where: str) -> None:
    """400 for `head` on a predict that answers with the model's default output only."""
    if body.get("head") is not None:
        raise ValidationError(f"{where} answers with the model's default output and takes no head; for one head's "
                              "predictions (or \"*\" for all) use POST /api/networks/{id}/predict",
                              detail={"field": "head"})


class RowsIn(Loose):
    head = fields.Raw(load_default=None, metadata=NO_HEAD)
    rows = optional_list(fields.Raw(), metadata={
        "description": "raw rows: objects by column name, or lists in column order"})
    row = fields.Raw(load_default=None, metadata={"description": "one raw row"})
    inputs = optional_list(fields.Raw(), metadata={"description": "alias of rows"})
    input = fields.Raw(load_default=None, metadata={"description": "alias of row"})


class PredictIn(Loose):
    input = fields.Raw(load_default=None, metadata={"description": "one example's features (a row object for "
                                                                   "uploaded tables)"})
    inputs = optional_list(fields.Raw(), metadata={"description": "a batch"})
    rows = optional_list(fields.Raw(), metadata={"description": "raw table rows (uploaded data)"})
    row = fields.Raw(load_default=None, metadata={"description": "one raw table row"})
    n = fields.Raw(load_default=None, metadata={"description": "factorization networks: the number to factor"})
    scaled = Flag(load_default=False,
                  metadata={"description": "inputs are already preprocessed (skip the dataset's scaling)"})


class RunsQuery(Loose):
    network_id = fields.String(load_default=None)
    experiment_id = fields.String(load_default=None)
    dataset_id = fields.String(load_default=None)
    algorithm = fields.String(load_default=None)
    status = fields.String(load_default=None, validate=OneOf(
        ["queued", "running", "completed", "failed", "cancelled", "interrupted"]))
    limit = fields.Integer(load_default=50, validate=Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=Range(min=0, max=MAX_INDEX))


class MetricsQuery(Loose):
    after_seq = fields.Integer(load_default=0, validate=Range(min=0, max=MAX_INDEX))
    format = fields.String(load_default="json", validate=OneOf(["json", "csv"]))


class ExamplesQuery(Loose):
    kind = fields.String(load_default="right", validate=OneOf(["right", "wrong"]))
    index = fields.Integer(load_default=None, validate=Range(min=0, max=MAX_INDEX))


def present(data: dict) -> dict:
    """Drop the fields a client did not send."""
    return {k: v for k, v in data.items() if v is not None}


def train_body(data: dict) -> dict:
    """`present`, except that a training control sent as null is kept: a resume inherits its source's
    controls, and null is how a client switches one off for the new run."""
    return {k: v for k, v in data.items() if v is not None or k in CONTROLS}


class ModelIn(Loose):
    name = fields.String(required=True, metadata={"description": "1-100 letters, digits, '-', '_', '.'"})
    description = fields.String(load_default=None)


class ModelVersionIn(Loose):
    network_id = fields.String(load_default=None, metadata={"description": "with version: a network version"})
    version = fields.Raw(load_default=None, metadata={"description": "the network's version number"})
    run_id = fields.String(load_default=None, metadata={"description": "a completed scikit-learn (or network) run"})


class AliasIn(Loose):
    version = fields.Raw(required=True, metadata={"description": "the model version the alias points at"})
    reason = fields.String(load_default=None)


class ReasonIn(Loose):
    reason = fields.String(load_default=None)


class ModelPredictIn(PredictIn):
    head = fields.Raw(load_default=None, metadata=NO_HEAD)
    version = fields.Raw(load_default=None, metadata={"description": "a model version (default: the champion)"})
    alias = fields.String(load_default=None, metadata={"description": "an alias (default: champion)"})


class NetworkPredictIn(PredictIn):
    version = fields.Raw(load_default=None, metadata={
        "description": "a network version (default: the registry's champion, else the latest)"})
    head = fields.String(load_default=None, metadata={
        "description": "a head's name: that head's own predictions; \"*\": every head's, by name"})


class FeedbackIn(Loose):
    prediction_id = fields.String(load_default=None)
    input = fields.Raw(load_default=None, metadata={"description": "an input, as predict takes it"})
    row = fields.Raw(load_default=None, metadata={"description": "alias of input"})
    label = fields.Raw(load_default=None, metadata={"description": "the true label (class name or index, or value)"})
    note = fields.String(load_default=None)


class PolicyIn(Loose):
    min_feedback = fields.Raw(load_default=50)
    metric = fields.String(load_default=None)
    margin = fields.Raw(load_default=0.0)
    holdout_fraction = fields.Raw(load_default=0.2)
    decide_on = fields.String(load_default="dataset")
    epochs = fields.Raw(load_default=None)
    learning_rate = fields.Raw(load_default=None)
    batch_size = fields.Raw(load_default=None)
    train = fields.Dict(load_default=None)


class LogsQuery(Loose):
    level = fields.String(load_default="debug", validate=OneOf(["debug", "info", "warning", "error"]),
                          metadata={"description": "lines at or above this level"})
    q = fields.String(load_default=None, validate=Length(max=200),
                      metadata={"description": "only lines whose message contains this text (any case)"})
    source = fields.String(load_default=None, validate=OneOf(["server", "worker", "trainer", "monitor"]))
    # a query string's true / false (Flag takes only JSON booleans)
    fold = fields.Boolean(load_default=False, metadata={"description": "fold repeated consecutive lines into one "
                                                                       "with count"})
    after_seq = fields.Integer(load_default=0, validate=Range(min=0, max=MAX_INDEX))
    limit = fields.Integer(load_default=1000, validate=Range(min=1, max=10000),
                           metadata={"description": "at most this many lines, the last ones"})
