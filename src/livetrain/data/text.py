"""Text data: tokenizers, vocabularies and the six text dataset kinds encoded as token-id arrays.

Pure data work, no web and no database: the services hand rows and a vocabulary in, and get
arrays, a summary and the raw texts back.

A text dataset's arrays follow the layout every network in livetrain trains on:
- X is (N, T) token ids as float32, 0-padded (T is the dataset's `max_len`);
- y holds class ids (N,) int64 for classification, (N, 1) float32 for regression (standardized
  with the training split's mean and std, like an uploaded table's target), and (N, T) int64
  next-token targets for the three sequence kinds, -100 where no loss applies (the prompt and
  the padding).

The sequence kinds (question answering, summarization, generation) are trained as a decoder-only
language model over `<bos> input <sep> target <eos>`: X is that sequence without its last token,
y the same sequence shifted by one, so position t predicts token t+1, and only the target's
tokens (and its `<eos>`) count. A generation dataset of plain `text` (no input) is an LM over the
whole text; a text longer than `max_len` is cut into consecutive windows.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livetrain.errors import ValidationError

# -- tokens and their categories ------------------------------------------------------------

PAD, UNK, BOS, EOS, SEP = "<pad>", "<unk>", "<bos>", "<eos>", "<sep>"
SPECIALS = (PAD, UNK, BOS, EOS, SEP)  # ids 0..4 in every vocabulary, never deleted
SPECIAL_IDS = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3, "sep_id": 4}
PAD_ID, UNK_ID, BOS_ID, EOS_ID, SEP_ID = range(5)
IGNORE = -100  # a target position no loss is computed on
CATEGORIES = ("special", "numeric", "alphabetic", "punctuation", "general")
LEVELS = ("word", "char")
MAX_TOKEN_CHARS = 100
_SPECIAL_SHAPE = re.compile(r"^<[A-Za-z_][A-Za-z0-9_]{0,30}>$")  # `<mask>`: a user's own special token
_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)*$")

# words (letters, an apostrophe inside: "don't"), numbers ("3.14", "1,000"), any other single symbol
_WORD_PATTERN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+(?:[.,]\d+)*|[^\w\s]|_", re.UNICODE)


def categorize(token: str) -> str:
    """The category of a token, from its characters alone."""
    if token in SPECIALS or _SPECIAL_SHAPE.match(token):
        return "special"
    if _NUMBER.match(token):
        return "numeric"
    if token.replace("'", "").isalpha() and token[0] != "'" and token[-1] != "'":
        return "alphabetic"
    if all(ch in string.punctuation or unicodedata.category(ch).startswith("P") for ch in token):
        return "punctuation"
    return "general"


def check_token(token: Any) -> str:
    """A token a user may add: text of 1 to 100 characters."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise ValidationError(f"a token is text of 1 to {MAX_TOKEN_CHARS} characters, got {token!r:.60}",
                              code="bad_token", detail={"token": token if isinstance(token, str) else None})
    return token


def normalize_text(text: str) -> str:
    """Line endings as `\\n`, and Unicode in its composed form (so "é" is one character either way)."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))


def tokenize(text: str, level: str) -> list[str]:
    """Word level: lowercase words, numbers and single punctuation marks. Character level: every character."""
    text = normalize_text(text)
    if level == "char":
        return list(text)
    return _WORD_PATTERN.findall(text.lower())


_NO_SPACE_BEFORE = set(".,!?;:%)]}'\"")
_NO_SPACE_AFTER = set("([{$#\"")


def detokenize(tokens: Iterable[str], level: str) -> str:
    """Tokens back to text: characters joined; words with spaces, none before closing punctuation."""
    tokens = [t for t in tokens if t not in SPECIALS]
    if level == "char":
        return "".join(tokens)
    out: list[str] = []
    for token in tokens:
        if out and token not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append(token)
    return "".join(out)


# -- vocabularies -----------------------------------------------------------------------------


@dataclass
class Vocab:
    """Token ids <-> tokens; `tokens[i]` is the token with id i (None where one was deleted)."""

    tokens: list[str | None]
    level: str = "word"
    _ids: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._ids = {t: i for i, t in enumerate(self.tokens) if t is not None}

    @property
    def size(self) -> int:
        """How many ids there are (an Embedding's `num_embeddings`)."""
        return len(self.tokens)

    def id_of(self, token: str) -> int:
        """The token's id, or `<unk>`'s."""
        return self._ids.get(token, UNK_ID)

    def encode(self, text: str) -> list[int]:
        """A text's token ids; unknown tokens become `<unk>`."""
        ids = self._ids
        return [ids.get(t, UNK_ID) for t in tokenize(text, self.level)]

    def decode(self, ids: Iterable[int], *, stop_at_eos: bool = True) -> str:
        """Token ids back to text (specials and padding left out; up to the first `<eos>`)."""
        out = []
        for i in ids:
            i = int(i)
            if stop_at_eos and i == EOS_ID:
                break
            if 0 <= i < len(self.tokens) and self.tokens[i] is not None:
                out.append(self.tokens[i])
        return detokenize(out, self.level)


def count_tokens(texts: Iterable[str], level: str) -> Counter:
    """How often each token occurs in the texts."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(tokenize(text, level))
    return counts


def pick_tokens(counts: Counter, *, min_freq: int, room: int, existing: set[str]) -> list[tuple[str, int]]:
    """The most frequent new tokens (at least `min_freq` times; ties alphabetical), at most `room` of them."""
    candidates = [(t, n) for t, n in counts.items() if n >= min_freq and t not in existing and t not in SPECIALS
                  and len(t) <= MAX_TOKEN_CHARS]
    candidates.sort(key=lambda item: (-item[1], item[0]))
    return candidates[:max(0, room)]


# -- the six dataset kinds --------------------------------------------------------------------

KINDS = ("binary_classification", "multiclass_classification", "regression", "question_answering",
         "summarization", "generation")
SEQUENCE_KINDS = ("question_answering", "summarization", "generation")
TASK_OF = {"binary_classification": "classification", "multiclass_classification": "classification",
           "regression": "regression", "question_answering": "sequence", "summarization": "sequence",
           "generation": "sequence"}
# kind -> (required columns, optional columns); generation takes `input,target` or `text`
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "binary_classification": (("text", "label"), ()),
    "multiclass_classification": (("text", "label"), ()),
    "regression": (("text", "target"), ()),
    "question_answering": (("question", "answer"), ("context",)),
    "summarization": (("article", "summary"), ()),
    "generation": (("target",), ("input",)),
}
DEFAULT_MAX_LEN = {"word": 64, "char": 256}
MAX_LEN_RANGE = (4, 1024)
MAX_TEXT_CHARS = 100_000
PREVIEW_ROWS = 10
MAX_WINDOWS = 200_000  # windows a plain-text generation dataset may be cut into


def default_level(kind: str) -> str:
    """Words for the classifiers and regression, characters for the sequence kinds (a char LM)."""
    return "char" if kind in SEQUENCE_KINDS else "word"


def columns_hint(kind: str) -> str:
    """The columns a kind takes, for messages."""
    if kind == "generation":
        return "input,target (or a single text column)"
    required, optional = COLUMNS[kind]
    return ",".join(required[:1] + tuple(f"{c}?" for c in optional) + required[1:])


def normalize_rows(kind: str, rows: Sequence[Any], *, first_row: int = 1) -> list[dict[str, Any]]:
    """Rows of a kind as dicts of its columns, checked: texts present and not empty, labels present.

    Errors name the row (counting from `first_row`) and the column. A generation row given as
    `{"text": ...}` becomes `{"input": "", "target": text}`; plain strings are taken as that text.
    """
    required, optional = COLUMNS[kind]
    out = []
    for offset, raw in enumerate(rows):
        where = first_row + offset
        if isinstance(raw, str) and kind == "generation":
            raw = {"text": raw}
        if not isinstance(raw, dict):
            raise ValidationError(f"sample {where} must be an object with {columns_hint(kind)}", code="bad_sample",
                                  detail={"row": where})
        raw = {str(k).strip().lower(): v for k, v in raw.items()}
        if kind == "generation" and "target" not in raw and "text" in raw:
            raw = {"input": "", "target": raw["text"]}
        missing = [c for c in required if c not in raw]
        if missing:
            raise ValidationError(f"sample {where} has no {', '.join(missing)}; a {kind} sample has "
                                  f"{columns_hint(kind)}", code="missing_column",
                                  detail={"row": where, "field": missing[0]})
        row: dict[str, Any] = {}
        for column in required + optional:
            value = raw.get(column)
            is_label = column in ("label", "target") and kind in ("binary_classification",
                                                                  "multiclass_classification", "regression")
            if is_label:
                if value is None or (isinstance(value, str) and not value.strip()) or (
                        isinstance(value, float) and math.isnan(value)):
                    raise ValidationError(f"sample {where} has no {column}", code="missing_label",
                                          detail={"row": where, "field": column})
                if isinstance(value, bool):
                    value = str(value).lower()
                if not isinstance(value, (str, int, float)):
                    raise ValidationError(f"sample {where}: {column} must be text or a number", code="bad_label",
                                          detail={"row": where, "field": column})
                row[column] = value.strip() if isinstance(value, str) else value
                continue
            if value is None:
                value = ""
            if not isinstance(value, str):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = str(value)
                else:
                    raise ValidationError(f"sample {where}: {column} must be text", code="bad_text",
                                          detail={"row": where, "field": column})
            if len(value) > MAX_TEXT_CHARS:
                raise ValidationError(f"sample {where}: {column} is {len(value):,} characters, over the limit of "
                                      f"{MAX_TEXT_CHARS:,}", code="text_too_long",
                                      detail={"row": where, "field": column})
            if column in required and not value.strip():
                raise ValidationError(f"sample {where} has an empty {column}", code="empty_text",
                                      detail={"row": where, "field": column})
            row[column] = value
        out.append(row)
    return out


def read_rows(data: bytes, filename: str, kind: str, *, max_rows: int) -> list[dict[str, Any]]:
    """The samples of an uploaded CSV (comma or tab separated, a header row) or JSONL / JSON-array file."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValidationError(f"the file looks gzip-compressed but cannot be read: {exc}",
                                  code="unreadable_file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"the file is not UTF-8 text (byte {exc.start})", code="unreadable_file") from None
    name = filename.lower().removesuffix(".gz")
    stripped = text.lstrip()
    is_json = name.endswith((".jsonl", ".ndjson", ".json")) or (
        not name.endswith((".csv", ".tsv", ".txt")) and stripped[:1] in ("{", "["))
    if is_json:
        rows = _json_rows(stripped, max_rows)
        first = 1
    else:
        rows = _csv_rows(text, "\t" if name.endswith(".tsv") else None, kind, max_rows)
        first = 2  # line 1 is the header
    if not rows:
        raise ValidationError("the file has no samples", code="empty_dataset")
    return normalize_rows(kind, rows, first_row=first)


def _json_rows(text: str, max_rows: int) -> list[Any]:
    if text.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"the JSON array cannot be read: {exc.msg} (line {exc.lineno})",
                                  code="unreadable_file") from None
        if len(rows) > max_rows:
            raise ValidationError(f"the file has {len(rows):,} samples, over the limit of {max_rows:,}",
                                  code="too_many_rows")
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"line {number} is not JSON: {exc.msg}", code="unreadable_file",
                                  detail={"row": number}) from None
        if len(rows) > max_rows:
            raise ValidationError(f"the file has over {max_rows:,} samples (the limit)", code="too_many_rows")
    return rows


def _csv_rows(text: str, delimiter: str | None, kind: str, max_rows: int) -> list[dict[str, Any]]:
    import csv

    if delimiter is None:
        header = text.split("\n", 1)[0]
        delimiter = "\t" if header.count("\t") > header.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        raise ValidationError(f"the CSV cannot be read: {exc}", code="unreadable_file") from None
    if kind == "generation" and header == ["text"]:
        pass
    elif not set(COLUMNS[kind][0]) <= set(header):
        raise ValidationError(f"a {kind} file needs the columns {columns_hint(kind)}; its header is "
                              f"{','.join(header)}", code="missing_column", detail={"columns": header})
    rows = []
    try:
        for number, values in enumerate(reader, 2):
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise ValidationError(f"line {number} has {len(values)} fields, the header {len(header)}",
                                      code="unreadable_file", detail={"row": number})
            rows.append(dict(zip(header, values)))
            if len(rows) > max_rows:
                raise ValidationError(f"the file has over {max_rows:,} samples (the limit)", code="too_many_rows")
    except csv.Error as exc:
        raise ValidationError(f"the CSV cannot be read: {exc}", code="unreadable_file") from None
    return rows


def source_texts(kind: str, row: dict[str, Any]) -> list[str]:
    """Every text of a sample (what a vocabulary is built from)."""
    if kind in ("binary_classification", "multiclass_classification", "regression"):
        return [row["text"]]
    if kind == "question_answering":
        return [row["question"], row.get("context") or "", row["answer"]]
    if kind == "summarization":
        return [row["article"], row["summary"]]
    return [row.get("input") or "", row["target"]]


def _pair(kind: str, row: dict[str, Any]) -> tuple[str, str]:
    """(input, target) of a sequence sample."""
    if kind == "question_answering":
        return row["question"], row["answer"]
    if kind == "summarization":
        return row["article"], row["summary"]
    return row.get("input") or "", row["target"]


@dataclass
class Encoded:
    """A text dataset's split arrays and what the checks and the preview found."""

    task: str
    X: dict[str, np.ndarray]  # split -> (N, T)
    y: dict[str, np.ndarray]
    references: dict[str, list[str]]  # split -> target texts of the sequence kinds ("" for windows)
    classes: list[Any] | None
    meta: dict[str, Any]  # target_mean/std, n_outputs, mode
    summary: dict[str, Any]
    rows_split: list[str]  # each input row's split


def parse_labels(kind: str, rows: list[dict[str, Any]]) -> tuple[list[Any], np.ndarray]:
    """(classes, class id per row) for the classification kinds, with their checks."""
    labels = [r["label"] for r in rows]
    texts = [str(v) for v in labels]
    whole = all(re.fullmatch(r"[+-]?\d+", t.strip()) for t in texts)
    keys = [int(t) for t in texts] if whole else [t for t in texts]
    classes = sorted(set(keys))
    if kind == "binary_classification" and len(classes) != 2:
        shown = ", ".join(repr(c) for c in classes[:5])
        raise ValidationError(f"binary_classification needs exactly two labels, found {len(classes)}: {shown}"
                              + ("; use multiclass_classification" if len(classes) > 2 else ""),
                              code="bad_labels", detail={"classes": [str(c) for c in classes[:20]]})
    if len(classes) < 2:
        raise ValidationError("classification needs at least two labels, found one: " + repr(classes[0]),
                              code="bad_labels")
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.asarray([index[k] for k in keys], dtype=np.int64)


def parse_targets(rows: list[dict[str, Any]], first_row: int = 1) -> np.ndarray:
    """Regression targets as numbers; a row whose target is not a number is refused by name."""
    out = np.empty(len(rows), dtype=np.float64)
    for i, row in enumerate(rows):
        value = row["target"]
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ValidationError(f"sample {first_row + i}: the regression target {value!r:.40} is not a number",
                                  code="label_not_numeric", detail={"row": first_row + i, "field": "target"})
        out[i] = number
    return out


def sequence_example(prompt_ids: list[int], target_ids: list[int], max_len: int) -> tuple[
        list[int], list[int], bool]:
    """(x, y, truncated) of one LM example `<bos> prompt <sep> target <eos>`, at most `max_len` long.

    When the whole does not fit, the prompt is cut first (keeping its beginning) so that the target
    keeps at least half the room; then the target is cut (and loses its `<eos>` only if nothing is left).
    """
    room = max_len + 1 - 3  # <bos>, <sep>, <eos>
    truncated = len(prompt_ids) + len(target_ids) > room
    if truncated:
        keep_target = min(len(target_ids), max(room // 2, room - len(prompt_ids)))
        prompt_ids = prompt_ids[:max(0, room - keep_target)]
        target_ids = target_ids[:keep_target]
    head = [BOS_ID, *prompt_ids, SEP_ID]
    seq = head + target_ids + [EOS_ID]
    x, y = seq[:-1], seq[1:]
    y = [IGNORE] * (len(head) - 1) + y[len(head) - 1:]
    return x, y, truncated


def _windows(ids: list[int], max_len: int) -> list[tuple[list[int], list[int]]]:
    """A long token stream as consecutive (x, y) windows of `max_len`, each target predicted once."""
    out = []
    for start in range(0, max(1, len(ids) - 1), max_len):
        chunk = ids[start:start + max_len + 1]
        if len(chunk) < 2:
            break
        out.append((chunk[:-1], chunk[1:]))
    return out


def _pad(rows: list[list[int]], width: int, value: int, dtype) -> np.ndarray:
    out = np.full((len(rows), width), value, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def is_plain_text(kind: str, rows: list[dict[str, Any]]) -> bool:
    """True for a generation dataset of texts alone (no inputs): an LM over the texts, cut into windows."""
    return kind == "generation" and all(not (r.get("input") or "").strip() for r in rows)


def row_split(kind: str, rows: list[dict[str, Any]], fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Row positions of train, validation and test (seeded; stratified by label for classification).

    What `encode_dataset` splits by, so a vocabulary can be built from the training rows first.
    """
    from livetrain.data.tabular import split_indices

    task = TASK_OF[kind]
    if len(rows) < 3:
        raise ValidationError(f"{len(rows)} sample(s) cannot be split into training, validation and test parts; "
                              "send at least 3", code="too_few_samples", detail={"rows": len(rows)})
    if task == "classification":
        return list(split_indices(parse_labels(kind, rows)[1], "classification", fractions, seed))
    if task == "regression":
        return list(split_indices(parse_targets(rows), "regression", fractions, seed))
    return list(split_indices(np.zeros(len(rows)), "sequence", fractions, seed))


def encode_dataset(kind: str, rows: list[dict[str, Any]], vocab: Vocab, *, max_len: int,
                   fractions: Sequence[float], seed: int) -> Encoded:
    """Check, split (seeded; stratified for classification) and encode the samples of a text dataset."""
    from livetrain.data.tabular import split_indices

    task = TASK_OF[kind]
    n = len(rows)
    plain_text = is_plain_text(kind, rows)
    if n < 3 and not plain_text:
        raise ValidationError(f"{n} sample(s) cannot be split into training, validation and test parts; "
                              "send at least 3", code="too_few_samples", detail={"rows": n})
    classes = None
    meta: dict[str, Any] = {}
    token_counts: list[int] = []
    unknown = total = 0
    # --- targets, and the split they decide --------------------------------------------------
    if task == "classification":
        classes, labels = parse_labels(kind, rows)
    elif task == "regression":
        values = parse_targets(rows)
    # --- token ids: one example per row, or a plain text's windows --------------------------------
    per_row: list[list[tuple[list[int], Any, str]]] = []  # per row: (x, y, reference text) examples
    row_truncated: list[bool] = []
    for i, row in enumerate(rows):
        if task in ("classification", "regression"):
            ids = vocab.encode(row["text"])
            if not ids:
                raise ValidationError(f"sample {i + 1}'s text has no tokens", code="empty_text",
                                      detail={"row": i + 1, "field": "text"})
            counted = [ids]
            per_row.append([(ids[:max_len], None, "")])
            row_truncated.append(len(ids) > max_len)
        else:
            source, target = _pair(kind, row)
            target_ids = vocab.encode(target)
            if not target_ids:
                raise ValidationError(f"sample {i + 1}'s {_pair_names(kind)[1]} has no tokens", code="empty_text",
                                      detail={"row": i + 1, "field": _pair_names(kind)[1]})
            if plain_text:
                counted = [target_ids]
                per_row.append([(x, y, "") for x, y in _windows([BOS_ID, *target_ids, EOS_ID], max_len)])
                row_truncated.append(False)
            else:
                prompt_ids = vocab.encode(source)
                if kind == "question_answering" and (row.get("context") or "").strip():
                    prompt_ids = prompt_ids + [SEP_ID] + vocab.encode(row["context"])
                counted = [prompt_ids, target_ids]
                x, y, cut = sequence_example(prompt_ids, target_ids, max_len)
                per_row.append([(x, y, target)])
                row_truncated.append(cut)
        token_counts.append(sum(len(c) for c in counted))
        unknown += sum(c.count(UNK_ID) for c in counted)
        total += token_counts[-1]
    # --- split ------------------------------------------------------------------------------
    if plain_text:
        # windows are the examples: one long text can make a whole dataset
        examples = [e for group in per_row for e in group]
        if len(examples) > MAX_WINDOWS:
            raise ValidationError(f"the texts make {len(examples):,} windows of {max_len} tokens, over the limit of "
                                  f"{MAX_WINDOWS:,}", code="too_many_rows")
        if len(examples) < 3:
            raise ValidationError(f"the texts make only {len(examples)} window(s) of {max_len} tokens; send more text "
                                  "or a smaller max_len (at least 3 windows are split into training, validation "
                                  "and test parts)", code="too_few_samples")
        parts = split_indices(np.zeros(len(examples)), "sequence", fractions, seed)
        owner = [r for r, group in enumerate(per_row) for _ in group]
        rows_split = ["train"] * n
        for name, positions in zip(("train", "val", "test"), parts):
            for p in positions:
                rows_split[owner[p]] = name  # a row cut into windows in several splits shows the last
    else:
        examples = [group[0] for group in per_row]
        parts = row_split(kind, rows, fractions, seed)
        rows_split = [""] * n
        for name, positions in zip(("train", "val", "test"), parts):
            for p in positions:
                rows_split[p] = name
    X: dict[str, np.ndarray] = {}
    Y: dict[str, np.ndarray] = {}
    references: dict[str, list[str]] = {}
    for name, positions in zip(("train", "val", "test"), parts):
        chosen = [examples[p] for p in positions]
        X[name] = _pad([e[0] for e in chosen], max_len, PAD_ID, np.float32)
        references[name] = [e[2] for e in chosen]
        if task == "classification":
            Y[name] = labels[positions]
        elif task == "regression":
            Y[name] = values[positions]
        else:
            Y[name] = _pad([e[1] for e in chosen], max_len, IGNORE, np.int64)
    if task == "regression":
        mean = float(Y["train"].mean())
        std = float(Y["train"].std()) or 1.0
        meta.update(target_mean=[mean], target_std=[std], n_outputs=1)
        for name in Y:
            Y[name] = ((Y[name] - mean) / std).astype(np.float32).reshape(-1, 1)
    meta["mode"] = "text" if plain_text else ("pairs" if task == "sequence" else "text")
    summary = _summary(rows, rows_split, token_counts, row_truncated, unknown, total, classes,
                       labels if task == "classification" else None, max_len)
    return Encoded(task, X, Y, references, classes, meta, summary, rows_split)


def _pair_names(kind: str) -> tuple[str, str]:
    return {"question_answering": ("question", "answer"), "summarization": ("article", "summary")}.get(
        kind, ("input", "target"))


def _summary(rows, rows_split, token_counts, row_truncated, unknown, total, classes, labels, max_len):
    counts = np.asarray(token_counts or [0])
    preview = []
    for row, n_tokens, cut, split in zip(rows[:PREVIEW_ROWS], token_counts, row_truncated, rows_split):
        shown = {k: (v if not isinstance(v, str) or len(v) <= 300 else v[:300] + "…") for k, v in row.items()}
        preview.append({**shown, "tokens": int(n_tokens), "truncated": bool(cut), "split": split})
    balance = None
    if classes is not None:
        found = np.bincount(labels, minlength=len(classes))
        balance = {str(c): int(k) for c, k in zip(classes, found)}
    return {
        "n_rows": len(rows), "preview": preview, "class_balance": balance, "missing": {},
        "truncated": int(sum(row_truncated)), "max_len": max_len,
        "tokens": {"mean": round(float(counts.mean()), 2), "max": int(counts.max()), "min": int(counts.min()),
                   "total": int(total)},
        "unknown_share": round(unknown / total, 4) if total else 0.0,
    }


def text_columns(kind: str) -> tuple[list[str], list[str]]:
    """(feature columns, target columns) of a kind, for the dataset's schema."""
    required, optional = COLUMNS[kind]
    if kind in ("binary_classification", "multiclass_classification", "regression"):
        return ["text"], [required[1]]
    if kind == "question_answering":
        return ["question", "context"], ["answer"]
    if kind == "summarization":
        return ["article"], ["summary"]
    return ["input"], ["target"]


def encode_prompt(vocab: Vocab, prompt: str, *, with_sep: bool, max_len: int) -> list[int]:
    """The ids a generation starts from: `<bos> prompt` (and `<sep>` for a dataset of input -> target pairs)."""
    ids = [BOS_ID, *vocab.encode(prompt)]
    if with_sep:
        ids.append(SEP_ID)
    return ids[-max_len:] if len(ids) > max_len else ids


def encode_texts(vocab: Vocab, texts: Sequence[str], max_len: int) -> np.ndarray:
    """Texts as (N, max_len) float32 ids for a classifier or a regression network (predictions)."""
    return _pad([vocab.encode(t)[:max_len] for t in texts], max_len, PAD_ID, np.float32)


def vocab_array(vocab: Vocab) -> np.ndarray:
    """The vocabulary as a unicode array (stored beside the arrays; loads without pickle)."""
    return np.asarray([t if t is not None else "" for t in vocab.tokens], dtype=str)


def vocab_from_array(tokens: np.ndarray, level: str) -> Vocab:
    """Inverse of `vocab_array` (an empty string is a deleted id)."""
    return Vocab([str(t) or None for t in tokens], level)
