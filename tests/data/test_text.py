"""Tokenizers, token categories, vocabularies and the encoding of the six text dataset kinds."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from livetrain.data import text
from livetrain.errors import ValidationError


def test_word_tokenizer_lowercases_and_splits_words_numbers_and_punctuation():
    assert text.tokenize("Don't PANIC: 3.14 is pi, OK?", "word") == [
        "don't", "panic", ":", "3.14", "is", "pi", ",", "ok", "?"]
    assert text.tokenize("  ", "word") == []


def test_char_tokenizer_keeps_every_character_and_its_case():
    assert text.tokenize("Hi!\r\n", "char") == ["H", "i", "!", "\n"]


@pytest.mark.parametrize("token, category", [
    ("<pad>", "special"), ("<sep>", "special"), ("<mask>", "special"),
    ("42", "numeric"), ("3.14", "numeric"), ("1,000", "numeric"),
    ("hello", "alphabetic"), ("don't", "alphabetic"), ("Élan", "alphabetic"),
    ("!", "punctuation"), ("...", "punctuation"), ("$", "punctuation"), ("«", "punctuation"),
    ("abc1", "general"), (" ", "general"), ("€", "general"), ("🙂", "general"),
])
def test_categories_come_from_the_characters(token, category):
    assert text.categorize(token) == category


def test_unknown_tokens_map_to_unk_and_decoding_drops_specials():
    vocab = text.Vocab(list(text.SPECIALS) + ["the", "cat", "sat"], "word")
    assert vocab.encode("The dog sat") == [5, text.UNK_ID, 7]
    assert vocab.decode([text.BOS_ID, 5, 6, 7, text.EOS_ID, 6]) == "the cat sat"
    assert vocab.size == 8


def test_a_vocabulary_with_a_deleted_id_keeps_the_other_ids():
    vocab = text.vocab_from_array(np.asarray(list(text.SPECIALS) + ["a", "", "c"]), "char")
    assert vocab.tokens[6] is None
    assert vocab.encode("abc") == [5, text.UNK_ID, 7]


def test_word_detokenizer_puts_no_space_before_closing_punctuation():
    assert text.detokenize(["hello", ",", "world", "!"], "word") == "hello, world!"


def test_pick_tokens_by_frequency_then_alphabet_within_min_freq_and_room():
    counts = text.count_tokens(["b a a c", "a b d"], "word")
    assert text.pick_tokens(counts, min_freq=2, room=10, existing=set()) == [("a", 3), ("b", 2)]
    assert text.pick_tokens(counts, min_freq=1, room=3, existing={"a"}) == [("b", 2), ("c", 1), ("d", 1)]


def test_a_sequence_example_masks_the_prompt_and_predicts_the_target_and_eos():
    x, y, cut = text.sequence_example([10, 11], [20, 21], max_len=10)
    assert x == [text.BOS_ID, 10, 11, text.SEP_ID, 20, 21]
    assert y == [-100, -100, -100, 20, 21, text.EOS_ID]
    assert not cut


def test_a_long_prompt_is_cut_first_so_the_target_fits():
    x, y, cut = text.sequence_example(list(range(100, 120)), [20, 21, 22], max_len=10)
    assert cut and len(x) == 10
    assert [t for t in y if t != -100] == [20, 21, 22, text.EOS_ID]


def _vocab(level="word", extra=()):
    return text.Vocab(list(text.SPECIALS) + list(extra), level)


def test_binary_classification_is_split_stratified_and_padded():
    rows = text.normalize_rows("binary_classification",
                               [{"text": "good film", "label": 1}, {"text": "bad film", "label": 0}] * 10)
    encoded = text.encode_dataset("binary_classification", rows, _vocab(extra=["good", "bad", "film"]), max_len=4,
                                  fractions=(0.6, 0.2, 0.2), seed=0)
    assert encoded.task == "classification" and encoded.classes == [0, 1]
    assert encoded.X["train"].shape == (12, 4) and encoded.X["train"].dtype == np.float32
    assert sorted(np.bincount(encoded.y["test"])) == [2, 2]  # stratified
    assert encoded.summary["class_balance"] == {"0": 10, "1": 10}
    assert encoded.summary["preview"][0]["tokens"] == 2


def test_truncation_is_counted():
    rows = text.normalize_rows("multiclass_classification",
                               [{"text": "a b c d e f", "label": k} for k in ("x", "y", "z")] * 3)
    encoded = text.encode_dataset("multiclass_classification", rows, _vocab(extra="abcdef"), max_len=4,
                                  fractions=(0.4, 0.3, 0.3), seed=0)
    assert encoded.summary["truncated"] == 9
    assert encoded.summary["preview"][0]["truncated"] is True


def test_regression_targets_are_standardized_on_the_training_split():
    rows = text.normalize_rows("regression", [{"text": f"w{i}", "target": str(i)} for i in range(20)])
    encoded = text.encode_dataset("regression", rows, _vocab(), max_len=3, fractions=(0.7, 0.15, 0.15), seed=1)
    assert encoded.y["train"].shape == (14, 1)
    assert abs(float(encoded.y["train"].mean())) < 1e-6
    mean, std = encoded.meta["target_mean"][0], encoded.meta["target_std"][0]
    restored = encoded.y["test"][:, 0] * std + mean
    assert all(float(v).is_integer() for v in np.round(restored, 4))


def test_question_answering_examples_are_lm_sequences_with_references():
    rows = text.normalize_rows("question_answering",
                               [{"question": "q", "context": "c", "answer": "ab"}] * 5)
    encoded = text.encode_dataset("question_answering", rows, _vocab("char", "qcab"), max_len=12,
                                  fractions=(0.6, 0.2, 0.2), seed=0)
    x, y = encoded.X["train"][0], encoded.y["train"][0]
    # <bos> q <sep> c <sep> a b | targets only from the last <sep> on
    assert x[:7].tolist() == [text.BOS_ID, 5, text.SEP_ID, 6, text.SEP_ID, 7, 8]
    assert y[:7].tolist() == [-100, -100, -100, -100, 7, 8, text.EOS_ID]
    assert (y[7:] == -100).all() and encoded.y["train"].dtype == np.int64
    assert encoded.references["test"] == ["ab"]


def test_a_plain_text_is_cut_into_windows_so_one_text_makes_a_dataset():
    rows = text.normalize_rows("generation", ["abcabcabcabc"])
    encoded = text.encode_dataset("generation", rows, _vocab("char", "abc"), max_len=4,
                                  fractions=(0.6, 0.2, 0.2), seed=0)
    assert encoded.meta["mode"] == "text"
    assert sum(len(x) for x in encoded.X.values()) == 4  # <bos> + 12 characters + <eos>: 13 targets, windows of 4
    for split in encoded.X:
        for x, y in zip(encoded.X[split], encoded.y[split]):
            n = int((x != text.PAD_ID).sum())
            assert (x[1:n] == y[:n - 1]).all() and y[n - 1] != -100  # y is x shifted by one, every step counts


@pytest.mark.parametrize("kind, rows, code", [
    ("binary_classification", [{"text": " ", "label": 1}], "empty_text"),
    ("binary_classification", [{"text": "a", "label": None}], "missing_label"),
    ("binary_classification", [{"text": "a", "label": ""}], "missing_label"),
    ("summarization", [{"article": "a"}], "missing_column"),
    ("question_answering", [{"question": "q", "answer": ""}], "empty_text"),
    ("regression", [{"text": "a", "target": [1]}], "bad_label"),
])
def test_sample_checks_name_the_row(kind, rows, code):
    with pytest.raises(ValidationError) as info:
        text.normalize_rows(kind, [{"text": "fine", "label": 0, "target": 1}] * 0 + rows, first_row=3)
    assert info.value.code == code
    assert info.value.detail["row"] == 3


def test_labels_not_numeric_for_regression():
    rows = text.normalize_rows("regression", [{"text": "a", "target": 1}, {"text": "b", "target": "high"},
                                              {"text": "c", "target": 2}])
    with pytest.raises(ValidationError) as info:
        text.encode_dataset("regression", rows, _vocab(), max_len=4, fractions=(0.4, 0.3, 0.3), seed=0)
    assert info.value.code == "label_not_numeric" and info.value.detail["row"] == 2


def test_binary_needs_exactly_two_labels_and_every_class_two_samples():
    three = text.normalize_rows("binary_classification", [{"text": "a", "label": k} for k in "xyzxyz"])
    with pytest.raises(ValidationError, match="exactly two labels"):
        text.encode_dataset("binary_classification", three, _vocab(), max_len=4, fractions=(0.4, 0.3, 0.3), seed=0)
    lonely = text.normalize_rows("multiclass_classification", [{"text": "a", "label": k} for k in "xxyyz"])
    with pytest.raises(ValidationError) as info:
        text.encode_dataset("multiclass_classification", lonely, _vocab(), max_len=4, fractions=(0.4, 0.3, 0.3),
                            seed=0)
    assert info.value.code == "too_few_per_class"


def test_read_rows_takes_csv_tsv_jsonl_json_and_gzip():
    csv = b"text,label\n\"hello, world\",1\nbye,0\n"
    assert text.read_rows(csv, "a.csv", "binary_classification", max_rows=10)[0] == {"text": "hello, world",
                                                                                      "label": "1"}
    tsv = b"article\tsummary\nlong text\tshort\n"
    assert text.read_rows(tsv, "a.tsv", "summarization", max_rows=10) == [{"article": "long text",
                                                                           "summary": "short"}]
    jsonl = b'{"input": "hi", "target": "there"}\n\n{"text": "plain"}\n'
    rows = text.read_rows(jsonl, "a.jsonl", "generation", max_rows=10)
    assert rows == [{"target": "there", "input": "hi"}, {"target": "plain", "input": ""}]
    array = json.dumps([{"question": "q", "answer": "a"}]).encode()
    assert text.read_rows(gzip.compress(array), "qa.json.gz", "question_answering", max_rows=10)[0]["answer"] == "a"


def test_read_rows_refuses_a_file_without_the_kinds_columns():
    with pytest.raises(ValidationError) as info:
        text.read_rows(b"sentence,label\nhi,1\n", "a.csv", "binary_classification", max_rows=10)
    assert info.value.code == "missing_column" and "text,label" in info.value.message
