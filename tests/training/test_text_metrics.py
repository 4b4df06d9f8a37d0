"""Text metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from livetrain.training import text_metrics as m


def test_binary_f1_is_the_positive_classs():
    # truth 1 1 0 0 1, predicted 1 0 0 1 1: tp=2, fp=1, fn=1 -> F1 = 4 / (4 + 1 + 1)
    scores = m.classification_scores([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], 2)
    assert scores["accuracy"] == pytest.approx(0.6)
    assert scores["f1"] == pytest.approx(2 / 3)


def test_macro_f1_averages_every_class():
    # class 0: tp 1, fp 0, fn 1 -> 2/3; class 1: tp 1, fp 1, fn 0 -> 2/3; class 2: tp 1 -> 1
    scores = m.classification_scores([0, 0, 1, 2], [0, 1, 1, 2], 3)
    assert scores["f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert scores["accuracy"] == pytest.approx(0.75)


def test_r2_and_mae():
    # truth 1 2 3 (mean 2, total 2), predictions 1 2 4: residual 1 -> r2 0.5, mae 1/3
    scores = m.regression_scores([1, 2, 3], [1, 2, 4])
    assert scores["r2"] == pytest.approx(0.5)
    assert scores["mae"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("prediction, reference, em, f1", [
    ("The Eiffel Tower!", "eiffel tower", 1.0, 1.0),  # case, punctuation and the article go
    ("in Paris, France", "Paris", 0.0, 2 * (1 / 3) * 1 / (1 / 3 + 1)),  # 1 of 3 predicted words, all of 1
    ("the cat sat on the mat", "a cat on a mat", 0.0, 2 * 0.75 * 1.0 / 1.75),  # 3 of 4, 3 of 3
    ("blue", "red", 0.0, 0.0),
    ("the", "a", 1.0, 1.0),  # both normalize to nothing
])
def test_exact_match_and_token_f1(prediction, reference, em, f1):
    assert m.exact_match(prediction, reference) == em
    assert m.token_f1(prediction, reference) == pytest.approx(f1)


def test_repeated_words_count_with_multiplicity():
    # x: min(2, 1) = 1 shared, y: min(1, 2) = 1 shared -> P = R = 2/3
    assert m.token_f1("x x y", "x y y") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))


def test_rouge_on_a_worked_example():
    reference = "the cat was under the bed"  # 6 words
    prediction = "the cat was found under the bed"  # 7 words
    # ROUGE-1: all 6 reference words appear -> P 6/7, R 6/6
    assert m.rouge_n(prediction, reference, 1) == pytest.approx(2 * (6 / 7) * 1 / (6 / 7 + 1))
    # ROUGE-2: reference bigrams the-cat cat-was was-under under-the the-bed; prediction has 4 of them out of 6
    assert m.rouge_n(prediction, reference, 2) == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))
    # ROUGE-L: the LCS is the whole reference (6)
    assert m.rouge_l(prediction, reference) == pytest.approx(2 * (6 / 7) * 1 / (6 / 7 + 1))
    scores = m.rouge_scores([prediction, "nothing alike"], [reference, "at all"])
    assert scores["rouge1"] == pytest.approx(m.rouge_n(prediction, reference, 1) / 2)


def test_lcs_takes_order_into_account():
    assert m.lcs_length("a b c d".split(), "b d a c".split()) == 2
    assert m.rouge_l("d c b a", "a b c d") == pytest.approx(0.25)


def test_perplexity_is_exp_of_the_mean_cross_entropy_of_counted_targets():
    probs = np.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]])
    targets = np.array([[0, 1, -100]])  # the last position does not count
    assert m.perplexity(np.log(probs), targets) == pytest.approx(math.sqrt(1 / (0.5 * 0.8)))
    assert m.perplexity(np.zeros((1, 2, 4)), np.array([[2, 3]])) == pytest.approx(4.0)  # uniform over 4
    assert m.perplexity(np.zeros((1, 2, 4)), np.array([[-100, -100]])) is None


def test_prompt_lengths_end_where_the_targets_start():
    X = np.array([[2, 7, 4, 9, 0], [2, 4, 8, 0, 0]], dtype=np.float32)
    y = np.array([[-100, -100, 9, 3, -100], [-100, 8, 3, -100, -100]])
    assert m.prompt_lengths(X, y) == [3, 2]


def test_greedy_decoding_follows_the_most_likely_token_and_stops_at_eos():
    vocab = 8

    def logits_of(ids):  # a "model" that always predicts the previous token + 1, and eos after 7
        nxt = ids.long() + 1
        nxt[nxt > 7] = 3
        return torch.nn.functional.one_hot(nxt, vocab).float() * 10

    out = m.greedy_decode(logits_of, [[2, 5], [2, 4, 4, 4]], max_len=10, max_new=20)
    assert out == [[6, 7], [5, 6, 7]]
    assert m.greedy_decode(logits_of, [[2, 5]], max_len=3, max_new=20) == [[6]]  # max_len reached
