"""Vocabularies: tokens with stable ids and categories, typed in by users or built from a text dataset.

What keeps datasets sound while their vocabulary changes:
- a token's id never changes and is never given to another token (a deleted token's id stays
  free), so the ids a dataset was encoded with keep meaning the same tokens;
- a dataset stores the tokens it was encoded with beside its arrays, and encodes anything later
  (appended samples, prediction inputs, generation prompts) with that copy, so tokens added to
  the vocabulary afterwards change neither its ids nor the size of the networks built on it;
- a vocabulary a dataset uses cannot lose tokens, and cannot be deleted (409): what the
  vocabulary page shows is always what its datasets mean.
The five special tokens (`<pad>`=0, `<unk>`, `<bos>`, `<eos>`, `<sep>`) are in every vocabulary
and are never deleted.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from livetrain.data.text import (
    LEVELS,
    SPECIALS,
    Vocab,
    categorize,
    check_token,
    count_tokens,
    pick_tokens,
)
from livetrain.errors import Conflict, NotFound, ValidationError
from livetrain.services.common import whole_number
from livetrain.store.entities import Vocabulary, VocabularyToken

MAX_TOKENS_PER_REQUEST = 10_000
MAX_VOCABULARY = 100_000  # an Embedding's num_embeddings may not be larger
DEFAULT_MAX_SIZE = 20_000
TOKEN_PAGE = 500


def check_level(value: Any, field: str = "level") -> str:
    """"word" or "char"."""
    if value not in LEVELS:
        raise ValidationError(f"{field} must be word or char", code="bad_parameter", detail={"field": field})
    return value


def finite_whole(value: Any, name: str, low: int, high: int) -> int:
    """`whole_number`, refusing NaN and infinity (which JSON bodies can carry) with the same message."""
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return whole_number(value, name, low, high)


def _bounded(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().isdigit():  # a form field
        value = int(value)
    return finite_whole(value, name, low, high)


class VocabularyService:
    """Creates, lists, edits and builds vocabularies; gives datasets the `Vocab` they encode with."""

    def __init__(self, *, store, emitter=None) -> None:
        self.store = store
        self.emitter = emitter

    # -- reading ---------------------------------------------------------------------------
    def get(self, vocabulary_id: Any) -> Vocabulary:
        """The vocabulary, or 404."""
        if not isinstance(vocabulary_id, str):
            raise ValidationError("vocabulary_id must be a string", code="bad_parameter",
                                  detail={"field": "vocabulary_id"})
        vocabulary = self.store.get_vocabulary(vocabulary_id)
        if vocabulary is None:
            raise NotFound(f"no vocabulary {vocabulary_id!r}")
        return vocabulary

    def used_by(self, vocabulary_id: str) -> list[str]:
        """Ids of the datasets encoded with this vocabulary."""
        return [d.id for d in self.store.list_datasets()
                if (d.meta.get("text") or {}).get("vocabulary_id") == vocabulary_id]

    def summary(self, vocabulary: Vocabulary, used_by: list[str] | None = None) -> dict[str, Any]:
        """The vocabulary with its size and its tokens counted by category."""
        categories = self.store.count_vocabulary_tokens(vocabulary.id)
        return {**vocabulary.to_dict(), "size": sum(categories.values()), "num_embeddings": vocabulary.next_id,
                "categories": categories,
                "used_by": used_by if used_by is not None else self.used_by(vocabulary.id)}

    def list(self) -> list[dict[str, Any]]:
        """Every vocabulary, newest first."""
        datasets = self.store.list_datasets()
        users: dict[str, list[str]] = {}
        for d in datasets:
            vid = (d.meta.get("text") or {}).get("vocabulary_id")
            if vid:
                users.setdefault(vid, []).append(d.id)
        return [self.summary(v, users.get(v.id, [])) for v in self.store.list_vocabularies()]

    def detail(self, vocabulary_id: str, *, limit: int | None = None, offset: int = 0,
               category: str | None = None) -> dict[str, Any]:
        """The vocabulary and its tokens by id (a page of them: `limit` from `offset`, of one `category`)."""
        vocabulary = self.get(vocabulary_id)
        if category is not None and category not in ("special", "numeric", "alphabetic", "punctuation", "general"):
            raise ValidationError("category must be special, numeric, alphabetic, punctuation or general",
                                  code="bad_parameter", detail={"field": "category"})
        tokens = self.store.vocabulary_tokens(vocabulary.id, limit=limit, offset=offset, category=category)
        return {**self.summary(vocabulary), "tokens": [t.to_dict() for t in tokens], "offset": offset}

    def vocab(self, vocabulary_id: str) -> Vocab:
        """The vocabulary as a `Vocab` (id -> token, with the holes deleted tokens left)."""
        vocabulary = self.get(vocabulary_id)
        tokens: list[str | None] = [None] * vocabulary.next_id
        for token in self.store.vocabulary_tokens(vocabulary.id):
            tokens[token.token_id] = token.text
        return Vocab(tokens, vocabulary.level or "word")

    # -- creating and deleting ---------------------------------------------------------------
    def create(self, body: dict[str, Any], *, dataset_id: str | None = None) -> Vocabulary:
        """A vocabulary holding the special tokens, and `tokens` if given."""
        from livetrain.services.networks import check_name

        if not isinstance(body, dict):
            raise ValidationError("send a JSON object", code="bad_parameter")
        vocabulary_id = uuid.uuid4().hex[:12]
        name = check_name(body["name"]) if body.get("name") is not None else f"vocabulary-{vocabulary_id[:6]}"
        level = check_level(body["level"]) if body.get("level") is not None else None
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 2000:
            raise ValidationError("description must be text of at most 2000 characters", code="bad_parameter",
                                  detail={"field": "description"})
        extra = self._token_list(body.get("tokens"), level) if body.get("tokens") is not None else []
        vocabulary = Vocabulary(id=vocabulary_id, name=name, level=level, dataset_id=dataset_id,
                                description=description)
        specials = [VocabularyToken(vocabulary_id, i, t, "special") for i, t in enumerate(SPECIALS)]
        self.store.create_vocabulary(vocabulary, specials)
        if extra:
            self.store.add_vocabulary_tokens(vocabulary_id, [(t, categorize(t), None) for t in extra])
        self._announce("vocabulary_created", vocabulary)
        return self.get(vocabulary_id)

    def delete(self, vocabulary_id: str) -> dict[str, Any]:
        """Delete a vocabulary no dataset uses (409 otherwise)."""
        vocabulary = self.get(vocabulary_id)
        users = self.used_by(vocabulary.id)
        if users:
            raise Conflict(f"vocabulary {vocabulary.id} is used by dataset(s) {', '.join(users)}; delete them first",
                           code="vocabulary_in_use", detail={"dataset_ids": users})
        self.store.delete_vocabulary(vocabulary.id)
        self._announce("vocabulary_deleted", vocabulary)
        return {"vocabulary_id": vocabulary.id, "deleted": True}

    def forget_dataset(self, dataset_id: str) -> None:
        """A dataset was deleted: its own vocabulary goes too, unless another dataset uses it (it then stays
        as a project vocabulary)."""
        for vocabulary in self.store.list_vocabularies(dataset_id=dataset_id):
            if self.used_by(vocabulary.id):
                self.store.update_vocabulary(vocabulary.id, dataset_id=None)
            else:
                self.store.delete_vocabulary(vocabulary.id)
                self._announce("vocabulary_deleted", vocabulary)

    # -- tokens -------------------------------------------------------------------------------
    def _token_list(self, raw: Any, level: str | None) -> list[str]:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise ValidationError("tokens must be a token or a non-empty list of tokens", code="bad_parameter",
                                  detail={"field": "tokens"})
        if len(raw) > MAX_TOKENS_PER_REQUEST:
            raise ValidationError(f"at most {MAX_TOKENS_PER_REQUEST} tokens per request", code="bad_parameter",
                                  detail={"field": "tokens"})
        out = []
        for token in raw:
            token = check_token(token)
            if level == "char" and len(token) != 1 and categorize(token) != "special":
                raise ValidationError(f"{token!r}: a character vocabulary takes single characters (or special "
                                      "tokens such as <mask>)", code="bad_token", detail={"token": token})
            if level == "word" and any(c.isspace() for c in token):
                raise ValidationError(f"{token!r}: a word token has no spaces in it", code="bad_token",
                                      detail={"token": token})
            out.append(token)
        return out

    def add_tokens(self, vocabulary_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Add `token` or `tokens`; each gets the next free id and its category. Existing ones are reported."""
        vocabulary = self.get(vocabulary_id)
        if not isinstance(body, dict) or ("token" in body) == ("tokens" in body):
            raise ValidationError("send 'token' (one) or 'tokens' (a list)", code="bad_parameter")
        tokens = self._token_list(body.get("tokens", body.get("token")), vocabulary.level)
        if vocabulary.next_id + len(tokens) > MAX_VOCABULARY:
            raise ValidationError(f"a vocabulary holds at most {MAX_VOCABULARY:,} ids", code="too_large")
        added, existing = self.store.add_vocabulary_tokens(vocabulary.id, [(t, categorize(t), None) for t in tokens])
        if added:
            self._announce("vocabulary_updated", vocabulary, added=len(added))
        return {"vocabulary_id": vocabulary.id, "added": [t.to_dict() for t in added], "existing": existing,
                "size": sum(self.store.count_vocabulary_tokens(vocabulary.id).values())}

    def delete_token(self, vocabulary_id: str, token: str) -> dict[str, Any]:
        """Delete one token (not a special one, not from a vocabulary a dataset uses)."""
        vocabulary = self.get(vocabulary_id)
        if token in SPECIALS:
            raise Conflict(f"{token} is a special token; every vocabulary keeps it", code="special_token",
                           detail={"token": token})
        users = self.used_by(vocabulary.id)
        if users:
            raise Conflict(f"vocabulary {vocabulary.id} is used by dataset(s) {', '.join(users)}: their token ids "
                           "refer to its tokens, so none can be deleted (tokens can still be added)",
                           code="vocabulary_in_use", detail={"dataset_ids": users})
        removed = self.store.delete_vocabulary_token(vocabulary.id, token)
        if removed is None:
            raise NotFound(f"vocabulary {vocabulary.id} has no token {token!r}", code="unknown_token")
        self._announce("vocabulary_updated", vocabulary, removed=1)
        return {"vocabulary_id": vocabulary.id, "deleted": removed.to_dict()}

    # -- building from data ----------------------------------------------------------------------
    def build_options(self, body: dict[str, Any]) -> dict[str, int]:
        """min_freq (default 1) and max_size (default 20,000; specials included) of a build."""
        return {"min_freq": _bounded(body, "min_freq", 1, 1, 1_000_000),
                "max_size": _bounded(body, "max_size", DEFAULT_MAX_SIZE, len(SPECIALS) + 1, MAX_VOCABULARY)}

    def build(self, vocabulary_id: str, texts: list[str], level: str, options: dict[str, int]) -> dict[str, Any]:
        """Add the most frequent tokens of `texts` that the vocabulary lacks, until it holds `max_size`."""
        vocabulary = self.get(vocabulary_id)
        if vocabulary.level is not None and vocabulary.level != level:
            raise ValidationError(f"vocabulary {vocabulary.id} is {vocabulary.level}-level; it cannot take "
                                  f"{level}-level tokens", code="bad_parameter", detail={"field": "level"})
        if vocabulary.level is None:
            self.store.update_vocabulary(vocabulary.id, level=level)
        counts = count_tokens(texts, level)
        existing = {t.text for t in self.store.vocabulary_tokens(vocabulary.id)}
        room = options["max_size"] - len(existing)
        picked = pick_tokens(counts, min_freq=options["min_freq"], room=room, existing=existing)
        added, _ = self.store.add_vocabulary_tokens(vocabulary.id, [(t, categorize(t), n) for t, n in picked],
                                                    max_size=options["max_size"])
        below = sum(1 for n in counts.values() if n < options["min_freq"])
        if added:
            self._announce("vocabulary_updated", vocabulary, added=len(added))
        return {**self.summary(self.get(vocabulary.id)), "added": len(added), "distinct_tokens": len(counts),
                "below_min_freq": below, "level": level}

    def _announce(self, event: str, vocabulary: Vocabulary, **extra: Any) -> None:
        if self.emitter is not None:
            self.emitter.resource(event, {"vocabulary_id": vocabulary.id, "name": vocabulary.name,
                                          "dataset_id": vocabulary.dataset_id, **extra, "ts": time.time()})
