"""Text datasets: created from samples or an uploaded CSV / JSONL, appended to, encoded for predictions,
and the language models trained on them asked to generate.

A text dataset's files under `datasets/{id}/`:
- `arrays.npz`: the split arrays (see `livetrain.data.text`), plus `text_vocab` (the tokens the ids
  stand for, as the dataset was encoded) and `text_refs_{split}` (each example's target text, for
  the generated-text metrics), all plain unicode arrays, loaded without pickle;
- `table.parquet`: the samples as sent, with the split each is in (download as CSV, appending);
- `upload.csv` / `upload.jsonl`: the file as uploaded, until samples are appended.
"""

from __future__ import annotations

import io
import math
import time
import uuid
from typing import Any

import numpy as np

from livetrain.concurrency import run_blocking
from livetrain.data import text
from livetrain.data.stored import dataset_dir
from livetrain.errors import Conflict, PayloadTooLarge, ValidationError
from livetrain.services.vocabularies import finite_whole
from livetrain.store import Dataset
from livetrain.store.entities import ACTIVE_STATUSES

MAX_PROMPT_CHARS = 10_000
MAX_GENERATE_TOKENS = 500


def _form_number(value: Any) -> Any:
    """A form field's text as a number, when it is one."""
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


class TextDatasetService:
    """The text side of datasets and networks; `DatasetService` and `NetworkService` hand text work here."""

    def __init__(self, *, store, artifacts, settings, emitter, datasets, vocabularies, networks=None) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.emitter = emitter
        self.datasets = datasets
        self.vocabularies = vocabularies
        self.networks = networks

    # -- options --------------------------------------------------------------------------------
    def _options(self, body: dict[str, Any]) -> dict[str, Any]:
        from livetrain.services.datasets import _fractions, _seed
        from livetrain.services.networks import check_name
        from livetrain.services.vocabularies import check_level

        kind = body.get("kind")
        if kind not in text.KINDS:
            raise ValidationError("kind must be one of " + ", ".join(text.KINDS), code="bad_parameter",
                                  detail={"field": "kind"})
        vocabulary_id = body.get("vocabulary_id") or None
        level = check_level(body["level"]) if body.get("level") not in (None, "") else None
        if vocabulary_id is not None:
            vocabulary = self.vocabularies.get(vocabulary_id)
            if level is not None and vocabulary.level not in (None, level):
                raise ValidationError(f"vocabulary {vocabulary.id} is {vocabulary.level}-level, not {level}-level",
                                      code="bad_parameter", detail={"field": "level"})
            level = level or vocabulary.level
        level = level or text.default_level(kind)
        low, high = text.MAX_LEN_RANGE
        max_len = body.get("max_len")
        max_len = text.DEFAULT_MAX_LEN[level] if max_len in (None, "") else finite_whole(
            _form_number(max_len), "max_len", low, high)
        if isinstance(body.get("seed"), float) and not math.isfinite(body["seed"]):
            raise ValidationError("seed must be a whole number", code="bad_parameter", detail={"field": "seed"})
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 2000:
            raise ValidationError("description must be text of at most 2000 characters", code="bad_parameter",
                                  detail={"field": "description"})
        build = self.vocabularies.build_options({k: _form_number(body.get(k)) for k in ("min_freq", "max_size")})
        return {"kind": kind, "name": check_name(body["name"]) if body.get("name") else None,
                "description": description, "vocabulary_id": vocabulary_id, "level": level, "max_len": max_len,
                "fractions": _fractions(body.get("split")), "seed": _seed(body.get("seed")), **build}

    # -- creating -------------------------------------------------------------------------------
    def create_from_samples(self, body: dict[str, Any]) -> Dataset:
        """A text dataset from `samples` (a list of objects with the kind's columns) in a JSON body."""
        options = self._options(body)
        samples = body.get("samples")
        if not isinstance(samples, list) or not samples:
            hint = text.columns_hint(options["kind"])
            raise ValidationError(f"samples must be a non-empty list of objects with {hint}", code="bad_parameter",
                                  detail={"field": "samples"})
        if len(samples) > self.settings.max_upload_rows:
            raise ValidationError(f"at most {self.settings.max_upload_rows:,} samples", code="too_many_rows")
        rows = text.normalize_rows(options["kind"], samples)
        return self._create(rows, options, {"origin": "samples"}, source=f"text samples ({options['kind']})")

    def create_from_upload(self, spool, filename: str | None, form: dict[str, Any]) -> Dataset:
        """A text dataset from an uploaded CSV (header row) or JSONL file."""
        spool.finish()
        if spool.size > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"the file is {spool.size} bytes, over the limit of "
                                  f"{self.settings.max_upload_bytes} (LIVETRAIN_MAX_UPLOAD_BYTES)")
        options = self._options(form)
        filename = (filename or "upload.csv").replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload.csv"
        data = spool.path.read_bytes()
        rows = run_blocking(text.read_rows, data, filename, options["kind"], max_rows=self.settings.max_upload_rows)
        is_json = filename.lower().removesuffix(".gz").endswith((".jsonl", ".ndjson", ".json")) or (
            data.lstrip()[:1] in (b"{", b"["))
        suffix = ".jsonl" if is_json else ".csv"
        if data[:2] == b"\x1f\x8b":
            suffix += ".gz"
        options["name"] = options["name"] or _stem(filename) or "text"
        return self._create(rows, options, {"origin": "upload", "filename": filename},
                            source=f"uploaded file {filename}", upload=(spool, suffix))

    def _create(self, rows: list[dict[str, Any]], options: dict[str, Any], origin: dict[str, Any], *,
                source: str, upload=None) -> Dataset:
        dataset_id = uuid.uuid4().hex[:12]
        kind = options["kind"]
        own_vocabulary = None
        try:
            if options["vocabulary_id"] is None:
                if text.is_plain_text(kind, rows):  # an LM over the texts: its windows are split later
                    training = rows
                else:
                    parts = run_blocking(text.row_split, kind, rows, options["fractions"], options["seed"])
                    training = [rows[i] for i in parts[0]]
                texts = [t for row in training for t in text.source_texts(kind, row)]
                name = f"{(options['name'] or dataset_id)[:80]} vocabulary"
                own_vocabulary = self.vocabularies.create({"name": name, "level": options["level"]},
                                                          dataset_id=dataset_id)
                run_blocking(self.vocabularies.build, own_vocabulary.id, texts, options["level"], options)
                vocabulary_id = own_vocabulary.id
            else:
                vocabulary_id = options["vocabulary_id"]
                if self.vocabularies.get(vocabulary_id).level is None:
                    self.store.update_vocabulary(vocabulary_id, level=options["level"])
            vocab = self.vocabularies.vocab(vocabulary_id)
            result = run_blocking(self._prepare, dataset_id, rows, vocab, {**options, "vocabulary_id": vocabulary_id})
            if upload is not None:
                spool, suffix = upload
                ref = run_blocking(self.artifacts.adopt, spool, f"{dataset_dir(dataset_id)}/upload{suffix}")
                result["files"]["upload"] = {"path": ref.path, "sha256": ref.sha256}
            name = options["name"] or f"{kind.split('_')[0]}-{dataset_id[:4]}"
            return self.datasets._record(dataset_id, name, source, options["description"], result, origin)
        except BaseException:
            self.artifacts.delete(dataset_dir(dataset_id))
            if own_vocabulary is not None:
                self.store.delete_vocabulary(own_vocabulary.id)
            raise

    def _prepare(self, dataset_id: str, rows: list[dict[str, Any]], vocab: text.Vocab,
                 options: dict[str, Any]) -> dict[str, Any]:
        """Encode, write the arrays and the table; the dataset row's fields and the files' refs."""
        from livetrain.data.stored import write_table_file
        from livetrain.data.tabular import dataset_hash

        kind = options["kind"]
        encoded = text.encode_dataset(kind, rows, vocab, max_len=options["max_len"],
                                      fractions=options["fractions"], seed=options["seed"])
        frame = _frame(kind, rows, encoded.rows_split)
        arrays: dict[str, np.ndarray] = {"text_vocab": text.vocab_array(vocab)}
        for split in ("train", "val", "test"):
            arrays[f"X_{split}"] = encoded.X[split]
            arrays[f"y_{split}"] = encoded.y[split]
            if encoded.task == "sequence":
                arrays[f"text_refs_{split}"] = np.asarray(encoded.references[split], dtype=str)
        base = dataset_dir(dataset_id)
        files = {"table": write_table_file(self.artifacts, dataset_id, frame)}
        ref = self.artifacts.write(f"{base}/arrays.npz", lambda fh: np.savez(fh, **arrays))
        files["arrays"] = {"path": ref.path, "sha256": ref.sha256}
        feature_columns, target_columns = text.text_columns(kind)
        info = {"kind": kind, "vocabulary_id": options["vocabulary_id"], "level": vocab.level,
                "max_len": options["max_len"], "vocab_size": vocab.size, **text.SPECIAL_IDS,
                "mode": encoded.meta["mode"]}
        meta = {
            "text": info,
            "schema": {"features": feature_columns, "targets": target_columns, "task": encoded.task, "kind": kind,
                       "level": vocab.level, "max_len": options["max_len"]},
            "classes": encoded.classes,
            "feature_names": None,
            "split": {"fractions": list(options["fractions"]), "seed": options["seed"],
                      "stratified": encoded.task == "classification"},
            "vocabulary": {"min_freq": options.get("min_freq"), "max_size": options.get("max_size")},
            "summary": encoded.summary,
            "n_outputs": 1,
            "image": False,
            **{k: v for k, v in encoded.meta.items() if k != "mode"},
        }
        n_classes = len(encoded.classes) if encoded.classes else (vocab.size if encoded.task == "sequence" else 0)
        fields = {"task": encoded.task, "n_features": options["max_len"], "n_classes": n_classes,
                  "input_shape": [options["max_len"]], "n_train": len(encoded.X["train"]),
                  "n_val": len(encoded.X["val"]), "n_test": len(encoded.X["test"]),
                  "content_sha256": dataset_hash(frame), "meta": meta}
        return {"fields": fields, "files": files}

    # -- appending ------------------------------------------------------------------------------
    def append(self, dataset_id: str, body: Any) -> dict[str, Any]:
        """Add samples to a text dataset: every sample is encoded again with the dataset's own tokens and
        the whole is split again (the same seed and fractions); 409 while a run trains on it."""
        dataset = self.datasets.get(dataset_id)
        info = self.info(dataset)
        if not isinstance(body, dict):
            raise ValidationError("send a JSON object: one sample, or {'samples': [...]}", code="bad_parameter")
        samples = body["samples"] if "samples" in body else [body]
        if not isinstance(samples, list) or not samples:
            raise ValidationError("samples must be a non-empty list", code="bad_parameter", detail={"field": "samples"})
        active = self.store.list_runs(dataset_id=dataset.id, statuses=ACTIVE_STATUSES)
        if active:
            raise Conflict(f"dataset {dataset.id} is being trained on by run(s) {', '.join(r.id for r in active)}; "
                           "add samples when they end", code="dataset_in_use",
                           detail={"run_ids": [r.id for r in active]})
        rows = self.rows(dataset)
        if len(rows) + len(samples) > self.settings.max_upload_rows:
            raise ValidationError(f"a dataset holds at most {self.settings.max_upload_rows:,} samples",
                                  code="too_many_rows")
        new = text.normalize_rows(info["kind"], samples, first_row=len(rows) + 1)
        for row in rows:
            row.pop("split", None)
        vocab = self.vocab(dataset)
        split = dataset.meta.get("split") or {}
        options = {"kind": info["kind"], "max_len": info["max_len"], "vocabulary_id": info["vocabulary_id"],
                   "fractions": tuple(split.get("fractions") or (0.7, 0.15, 0.15)), "seed": split.get("seed", 0),
                   **(dataset.meta.get("vocabulary") or {})}
        staging = f"{dataset.id}-{uuid.uuid4().hex[:6]}"
        try:
            result = run_blocking(self._prepare, staging, rows + new, vocab, options)
            fields = result["fields"]
            if dataset.task == "classification" and fields["meta"]["classes"] != dataset.meta.get("classes"):
                networks = self.store.networks_using(dataset.id)
                if networks:
                    raise ValidationError(
                        f"the samples change the labels to {fields['meta']['classes']}, but network(s) "
                        f"{', '.join(networks)} are built for {dataset.meta.get('classes')}", code="new_label",
                        detail={"network_ids": networks})
            files = self._move_in(staging, dataset.id, result["files"])
        finally:
            self.artifacts.delete(dataset_dir(staging))
        if "upload" in dataset.files:  # the file as uploaded no longer is the dataset
            self.artifacts.delete(dataset.files["upload"]["path"])
        meta = {**dataset.meta, **fields["meta"]}
        meta["text"] = {**fields["meta"]["text"], "vocabulary_id": info["vocabulary_id"]}
        updated = Dataset(id=dataset.id, name=dataset.name, task=fields["task"], source=dataset.source,
                          n_features=fields["n_features"], n_classes=fields["n_classes"],
                          input_shape=fields["input_shape"], n_train=fields["n_train"], n_test=fields["n_test"],
                          n_val=fields["n_val"], description=dataset.description, meta=meta, builtin=False,
                          content_sha256=fields["content_sha256"], files=files, created_at=dataset.created_at)
        self.store.upsert_dataset(updated)
        if self.emitter is not None:
            self.emitter.resource("dataset_updated", {"dataset_id": dataset.id, "name": dataset.name,
                                                      "added": len(new), "n_rows": len(rows) + len(new),
                                                      "ts": time.time()})
        return {**self.datasets.detail(dataset.id), "added": len(new)}

    def _move_in(self, staging: str, dataset_id: str, files: dict[str, Any]) -> dict[str, Any]:
        """Copy a re-encoded dataset's files from their staging folder over the dataset's own."""
        out = {}
        for key, ref in files.items():
            name = ref["path"].rsplit("/", 1)[-1]
            data = self.artifacts.open_verified(ref["path"], ref["sha256"]).getvalue()
            moved = self.artifacts.write_bytes(f"{dataset_dir(dataset_id)}/{name}", data)
            out[key] = {"path": moved.path, "sha256": moved.sha256}
        return out

    # -- reading ----------------------------------------------------------------------------------
    @staticmethod
    def info(dataset: Dataset) -> dict[str, Any]:
        """The dataset's `meta["text"]`; 400 for a dataset that is not text."""
        info = dataset.meta.get("text")
        if not info:
            raise ValidationError(f"dataset {dataset.id} is not a text dataset", code="not_text")
        return info

    def rows(self, dataset: Dataset) -> list[dict[str, Any]]:
        """The samples as stored (with the split each is in)."""
        import pandas as pd

        if "table" not in dataset.files:  # a retraining's training set: arrays only, its samples are its original's
            raise ValidationError(f"dataset {dataset.id} was derived from dataset {dataset.meta.get('parent_id')} "
                                  "and has no samples of its own; use that one", code="derived_dataset")
        ref = dataset.files["table"]
        frame = pd.read_parquet(io.BytesIO(self.artifacts.open_verified(ref["path"], ref["sha256"]).getvalue()))
        records = frame.to_dict(orient="records")
        return [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))} for r in records]

    def training_texts(self, dataset: Dataset) -> tuple[list[str], str]:
        """The texts of a dataset's training samples (all of a plain-text LM's), and its level."""
        info = self.info(dataset)
        rows = self.rows(dataset)
        if not (info["kind"] == "generation" and info.get("mode") == "text"):  # windows of a text: all of it
            rows = [r for r in rows if r.get("split") == "train"] or rows
        return [t for row in rows for t in text.source_texts(info["kind"], row)], info["level"]

    def vocab(self, dataset: Dataset) -> text.Vocab:
        """The tokens the dataset was encoded with (its own copy, not the vocabulary as it is now)."""
        info = self.info(dataset)
        tokens = self.datasets.arrays(dataset).preprocessing["text_vocab"]
        return text.vocab_from_array(tokens, info["level"])

    def encode_inputs(self, dataset: Dataset, rows: list) -> np.ndarray:
        """Prediction inputs (texts, or objects with `text`) as the ids a classifier or regression network takes."""
        info = self.info(dataset)
        if dataset.task == "sequence":
            raise ValidationError("a language model does not predict labels; POST /api/networks/{id}/generate "
                                  "with a prompt", code="not_a_classifier")
        texts = []
        for i, row in enumerate(rows):
            value = row.get("text") if isinstance(row, dict) else row[0] if isinstance(row, list) and row else row
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"row {i}: send a text (a string, or an object with 'text')", code="bad_input",
                                      detail={"row": i})
            texts.append(value)
        return text.encode_texts(self.vocab(dataset), texts, info["max_len"])

    # -- templates -----------------------------------------------------------------------------------
    def template_names(self, dataset: Dataset) -> list[str]:
        """The templates that fit a dataset, the default first."""
        from livetrain.training.text_templates import names_for

        return names_for(dataset.task)

    def template(self, dataset: Dataset, name: str = "auto") -> dict[str, Any]:
        """A network body for the dataset from a named template ("auto": the kind's default)."""
        from livetrain.training.text_templates import template_body

        self.info(dataset)
        return template_body(dataset, name)

    # -- generating -----------------------------------------------------------------------------------
    def generate(self, network_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Sample text from a trained language model: its latest version (or `version`), until `<eos>` or
        `max_tokens`."""
        network = self.networks.get(network_id)
        dataset = self.datasets.get(network.dataset_id)
        info = dataset.meta.get("text")
        if not info or dataset.task != "sequence":
            what = (info or {}).get("kind") or dataset.task
            raise ValidationError(f"network {network.id} is not a language model: it was built on dataset "
                                  f"{dataset.id} ({what}); generate needs one of a question_answering, "
                                  "summarization or generation dataset", code="not_a_language_model")
        if not isinstance(body, dict):
            raise ValidationError("send a JSON object", code="bad_parameter")
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise ValidationError(f"prompt must be text of at most {MAX_PROMPT_CHARS:,} characters",
                                  code="bad_parameter", detail={"field": "prompt"})
        temperature = body.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not (
                0 < temperature <= 100) or temperature != temperature:
            raise ValidationError("temperature must be a number above 0 (at most 100)", code="bad_parameter",
                                  detail={"field": "temperature"})
        max_tokens = finite_whole(body.get("max_tokens", 100), "max_tokens", 1, MAX_GENERATE_TOKENS)
        seed = body.get("seed")
        seed = None if seed is None else finite_whole(seed, "seed", 0, 2**31 - 1)
        number = body.get("version")
        number = None if number is None else finite_whole(number, "version", 1, 2**31 - 1)
        version = self.networks.version(network, number)
        model, _ = run_blocking(self.networks._model, network, version)  # built as that version was trained
        vocab = run_blocking(self.vocab, dataset)
        start = text.encode_prompt(vocab, prompt, with_sep=info.get("mode") == "pairs", max_len=info["max_len"])
        ids, reason = run_blocking(sample_tokens, model, start, max_len=info["max_len"], max_tokens=max_tokens,
                                   temperature=float(temperature), seed=seed)
        return {"network_id": network.id, "version": version.version, "prompt": prompt,
                "text": vocab.decode(ids), "tokens": len(ids), "stopped": reason,
                "temperature": float(temperature), "seed": seed, "level": info["level"]}


def sample_tokens(model, start: list[int], *, max_len: int, max_tokens: int, temperature: float,
                  seed: int | None) -> tuple[list[int], str]:
    """Draw tokens one at a time from softmax(logits / temperature) after `start`; (tokens, why it stopped).

    The model sees at most its dataset's `max_len` latest tokens. `<pad>`, `<bos>` and `<sep>` are never drawn.
    """
    import torch

    from livetrain.training.text_metrics import logits_from

    generator = torch.Generator().manual_seed(seed if seed is not None else int.from_bytes(uuid.uuid4().bytes[:4]))
    ids = list(start)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_tokens):
            window = torch.tensor([ids[-max_len:]], dtype=torch.float32)
            logits = logits_from(model(window))[0, -1].double()
            logits[[text.PAD_ID, text.BOS_ID, text.SEP_ID]] = -math.inf
            probs = torch.softmax(logits / temperature, dim=0)
            token = int(torch.multinomial(probs, 1, generator=generator))
            if token == text.EOS_ID:
                return out, "eos"
            ids.append(token)
            out.append(token)
    return out, "max_tokens"


def _frame(kind: str, rows: list[dict[str, Any]], splits: list[str]):
    """The samples as a table (labels as text, so that any mix of labels fits one column) with their split."""
    import pandas as pd

    required, optional = text.COLUMNS[kind]
    columns = list(required + optional)
    data: dict[str, list] = {c: [] for c in columns}
    for row in rows:
        for c in columns:
            value = row.get(c, "")
            if kind == "regression" and c == "target":
                data[c].append(str(value))
            elif c == "label":
                data[c].append(str(value))
            else:
                data[c].append(value if isinstance(value, str) else "")
    data["split"] = list(splits)
    return pd.DataFrame(data)


def _stem(filename: str) -> str:
    name = filename
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix).removesuffix(suffix.upper())
    return name
