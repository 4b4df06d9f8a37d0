"""Vocabulary pages (the list with a create form, one vocabulary's tokens), and what the text forms list."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from livetrain.data import text
from livetrain.web import bp, svc

KIND_LABELS = {
    "binary_classification": ("Binary classification", "text,label\nwhat a great film,1\nboring and slow,0"),
    "multiclass_classification": ("Multi-class classification", "text,label\nthe match ended 2-1,sport\n"
                                                                 "a new album is out,music"),
    "regression": ("Regression on text", "text,target\nfive stars, loved it,5\nnot worth it,1"),
    "question_answering": ("Question answering", "question,context,answer\nwho wrote it?,it was written by Ann.,Ann"),
    "summarization": ("Summarization", "article,summary\nthe long story of the day ...,a short summary"),
    "generation": ("Text generation", "input,target\nhello,hi there\n(or a single text column)"),
}
TOKENS_PER_PAGE = 500


@bp.app_template_global()
def text_kinds() -> list[dict[str, Any]]:
    """The six text dataset kinds for the create form: key, label, columns, an example."""
    return [{"key": k, "label": KIND_LABELS[k][0], "columns": text.columns_hint(k), "example": KIND_LABELS[k][1]}
            for k in text.KINDS]


@bp.app_template_global()
def project_vocabularies() -> list[dict[str, Any]]:
    """The vocabularies a new text dataset may use (every vocabulary, newest first)."""
    return svc().vocabularies.list()


@bp.app_template_global()
def text_templates(task: str) -> list[dict[str, Any]]:
    """The network templates of a text dataset's task, the default first, with what each is."""
    from livetrain.training.text_templates import DESCRIPTIONS, names_for

    return [{"name": n, "description": DESCRIPTIONS[n]} for n in names_for(task)]


@bp.get("/vocabularies")
def vocabularies_page():
    """Every vocabulary, with a form to create one."""
    return render_template("vocabularies.html", vocabularies=svc().vocabularies.list())


@bp.get("/vocabularies/<vocabulary_id>")
def vocabulary_page(vocabulary_id: str):
    """One vocabulary: its tokens by id (a page at a time, of one category if asked), add, delete, build."""
    livetrain = svc()
    raw = request.args.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1
    category = request.args.get("category") or None
    if category not in (None, *text.CATEGORIES):
        category = None
    detail = livetrain.vocabularies.detail(vocabulary_id, limit=TOKENS_PER_PAGE,
                                           offset=(number - 1) * TOKENS_PER_PAGE, category=category)
    shown = detail["categories"].get(category, 0) if category else detail["size"]
    text_datasets = [{"id": d.id, "name": d.name, "level": d.meta["text"]["level"]}
                     for d in livetrain.store.list_datasets() if d.meta.get("text")]
    return render_template("vocabulary.html", vocabulary=detail, category=category, categories=text.CATEGORIES,
                           page=number, pages=max(1, -(-shown // TOKENS_PER_PAGE)), text_datasets=text_datasets)
