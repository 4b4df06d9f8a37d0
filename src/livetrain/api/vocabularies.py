"""Vocabularies and their tokens; network templates for text datasets; text generation."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import current_app, request

from livetrain.errors import ValidationError
from livetrain.services.common import whole_number

bp = APIBlueprint("vocabularies", __name__, url_prefix="/api/vocabularies", tag="Vocabularies")
text_bp = APIBlueprint("text", __name__, url_prefix="/api", tag="Text")


def _svc():
    return current_app.extensions["livetrain"]


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object", code="bad_parameter")
    return body


def _query_int(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit():
        raise ValidationError(f"{name} must be a whole number between {low} and {high}", code="bad_parameter",
                              detail={"field": name})
    return whole_number(int(raw), name, low, high)


@bp.get("")
def list_vocabularies():
    """Every vocabulary with its size, its tokens counted by category, and the datasets that use it."""
    return {"vocabularies": _svc().vocabularies.list()}


@bp.post("")
@bp.doc(responses={201: {"description": "the new vocabulary"}}, description=(
    "JSON `{\"name\", \"level\": \"word\"|\"char\" (optional; set by the first build otherwise), \"description\", "
    "\"tokens\": [...] (optional)}`. The special tokens `<pad>`=0, `<unk>`=1, `<bos>`=2, `<eos>`=3, `<sep>`=4 "
    "are always there."))
def create_vocabulary():
    """Create a project vocabulary (the special tokens, and any `tokens` sent)."""
    svc = _svc()
    vocabulary = svc.vocabularies.create(_body())
    return svc.vocabularies.detail(vocabulary.id), 201


@bp.get("/<vocabulary_id>")
@bp.doc(description="Query: `limit` (default 500, at most 100,000), `offset`, `category` "
                    "(special|numeric|alphabetic|punctuation|general).")
def get_vocabulary(vocabulary_id: str):
    """One vocabulary with a page of its tokens (id, token, category, count when built from data)."""
    return _svc().vocabularies.detail(vocabulary_id, limit=_query_int("limit", 500, 1, 100_000),
                                      offset=_query_int("offset", 0, 0, 2**31 - 1) or 0,
                                      category=request.args.get("category") or None)


@bp.delete("/<vocabulary_id>")
def delete_vocabulary(vocabulary_id: str):
    """Delete a vocabulary that no dataset uses (409 otherwise)."""
    return _svc().vocabularies.delete(vocabulary_id)


@bp.post("/<vocabulary_id>/tokens")
@bp.doc(responses={201: {"description": "the tokens added, and those already there"}},
        description="JSON `{\"token\": \"...\"}` or `{\"tokens\": [...]}` (at most 10,000). Each new token gets "
                    "the next free id (ids are never reused) and a category from its characters.")
def add_tokens(vocabulary_id: str):
    """Add one token or many."""
    return _svc().vocabularies.add_tokens(vocabulary_id, _body()), 201


@bp.delete("/<vocabulary_id>/tokens/<path:token>")
def delete_token(vocabulary_id: str, token: str):
    """Delete a token (URL-encoded; not a special one; 409 when a dataset uses the vocabulary)."""
    return _svc().vocabularies.delete_token(vocabulary_id, token)


@bp.delete("/<vocabulary_id>/tokens")
@bp.doc(description="The token in the query, `?token=...`: for tokens a URL path cannot carry, such as `.`.")
def delete_token_by_query(vocabulary_id: str):
    """Delete the token named by `?token=`."""
    token = request.args.get("token")
    if not token:
        raise ValidationError("name the token: ?token=...", code="bad_parameter", detail={"field": "token"})
    return _svc().vocabularies.delete_token(vocabulary_id, token)


@bp.post("/<vocabulary_id>/build")
@bp.doc(description="JSON `{\"dataset_id\", \"level\": \"word\"|\"char\" (default: the dataset's), \"min_freq\": 1, "
                    "\"max_size\": 20000}`: adds the most frequent tokens of the dataset's training texts that the "
                    "vocabulary lacks (seen at least `min_freq` times) until it holds `max_size` tokens, the "
                    "specials included.")
def build_vocabulary(vocabulary_id: str):
    """Add the tokens of a text dataset's training texts."""
    svc = _svc()
    body = _body()
    dataset = svc.datasets.get(body.get("dataset_id"))
    texts, level = svc.text_datasets.training_texts(dataset)
    if body.get("level") is not None:
        from livetrain.services.vocabularies import check_level

        level = check_level(body["level"])
    from livetrain.concurrency import run_blocking

    return run_blocking(svc.vocabularies.build, svc.vocabularies.get(vocabulary_id).id, texts, level,
                        svc.vocabularies.build_options(body))


@text_bp.get("/templates")
@text_bp.doc(description="Query: `dataset_id` (a text dataset). Each template's `body` can be sent to "
                         "POST /api/networks as it is (with `dataset_id`), or named there as `template`.")
def list_templates():
    """The network templates that fit a text dataset, its default first."""
    from livetrain.training.text_templates import catalog

    svc = _svc()
    dataset = svc.datasets.get(request.args.get("dataset_id") or "")
    svc.text_datasets.info(dataset)
    templates = catalog(dataset)
    return {"dataset_id": dataset.id, "task": dataset.task, "kind": dataset.meta["text"]["kind"],
            "default": templates[0]["name"], "templates": templates}


@text_bp.post("/networks/<network_id>/generate")
@text_bp.doc(description="JSON `{\"prompt\": \"\", \"temperature\": 1.0 (> 0), \"max_tokens\": 100 (1..500), "
                         "\"seed\" (optional), \"version\" (default: the latest)}`. For a dataset of input -> target "
                         "pairs the prompt is an input and the answer follows its `<sep>`.")
def generate(network_id: str):
    """Sample text from a trained language model, stopping at `<eos>` or after `max_tokens`."""
    return _svc().text_datasets.generate(network_id, _body())
