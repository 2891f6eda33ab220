"""Tests of deepgrad.metrics: hand-computed cases, a brute-force reference, and sklearn parity."""

from __future__ import annotations

import numpy as np
import pytest

from deepgrad.metrics import accuracy, confusion_matrix, precision_recall_f1, top_k_accuracy
from deepgrad.tensor import from_numpy

Y_TRUE = [0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0, 1]


# ---------------------------------------------------------------------- brute-force reference
def ref_confusion(t, p, c):
    cm = np.zeros((c, c), dtype=np.int64)
    for a, b in zip(t, p):
        cm[a, b] += 1
    return cm


def ref_prf(t, p, c, average):
    """Per-class loops straight from the definitions (zero division -> 0)."""
    prec, rec, f1, support, present = [], [], [], [], []
    for k in range(c):
        tp = sum(1 for a, b in zip(t, p) if a == k and b == k)
        fp = sum(1 for a, b in zip(t, p) if a != k and b == k)
        fn = sum(1 for a, b in zip(t, p) if a == k and b != k)
        pk = tp / (tp + fp) if tp + fp else 0.0
        rk = tp / (tp + fn) if tp + fn else 0.0
        prec.append(pk)
        rec.append(rk)
        f1.append(2 * pk * rk / (pk + rk) if pk + rk else 0.0)
        support.append(tp + fn)
        present.append(tp + fp + fn > 0)
    if average is None:
        return np.array(prec), np.array(rec), np.array(f1)
    if average == "micro":
        acc = sum(1 for a, b in zip(t, p) if a == b) / len(t)
        return acc, acc, acc
    if average == "macro":
        idx = [k for k in range(c) if present[k]]
        return tuple(float(np.mean([m[k] for k in idx])) for m in (prec, rec, f1))
    w = np.array(support, dtype=float) / sum(support)
    return tuple(float(np.dot(w, m)) for m in (prec, rec, f1))


def ref_top_k(t, s, k):
    hits = 0
    for label, row in zip(t, s):
        better = sum(1 for v in row if v > row[label])
        hits += better < k
    return hits / len(t)


# ---------------------------------------------------------------------- hand-computed cases
def test_accuracy_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 7)
    assert accuracy([1, 2, 3], [1, 2, 3]) == 1.0
    assert accuracy([1, 2, 3], [0, 0, 0]) == 0.0


def test_accuracy_from_scores_and_tensors():
    logits = np.array([[2.0, 1.0, 0.0], [0.1, 0.5, 0.2], [0.0, 0.0, 3.0], [1.0, 0.0, 0.5]],
                      dtype=np.float32)
    y = np.array([0, 1, 1, 2])
    assert accuracy(y, logits) == pytest.approx(0.5)
    assert accuracy(from_numpy(y), from_numpy(logits)) == pytest.approx(0.5)
    assert accuracy(from_numpy(y), list(logits.argmax(1))) == pytest.approx(0.5)


def test_confusion_matrix_hand():
    expected = np.array([[1, 1, 0],
                         [0, 2, 0],
                         [1, 1, 1]])
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    cm5 = confusion_matrix(Y_TRUE, Y_PRED, num_classes=5)
    assert cm5.shape == (5, 5)
    np.testing.assert_array_equal(cm5[:3, :3], expected)
    assert cm5[3:].sum() == 0 and cm5[:, 3:].sum() == 0


def test_precision_recall_f1_hand():
    # class 0: tp 1, fp 1, fn 1 -> p 1/2, r 1/2, f1 1/2
    # class 1: tp 2, fp 2, fn 0 -> p 1/2, r 1,   f1 2/3
    # class 2: tp 1, fp 0, fn 2 -> p 1,   r 1/3, f1 1/2
    p, r, f = precision_recall_f1(Y_TRUE, Y_PRED, average=None)
    np.testing.assert_allclose(p, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(r, [0.5, 1.0, 1 / 3])
    np.testing.assert_allclose(f, [0.5, 2 / 3, 0.5])
    p, r, f = precision_recall_f1(Y_TRUE, Y_PRED, average="macro")
    assert (p, r, f) == pytest.approx((2 / 3, (0.5 + 1 + 1 / 3) / 3, (0.5 + 2 / 3 + 0.5) / 3))
    p, r, f = precision_recall_f1(Y_TRUE, Y_PRED, average="weighted")
    w = np.array([2, 2, 3]) / 7
    assert p == pytest.approx(w @ [0.5, 0.5, 1.0])
    assert r == pytest.approx(w @ [0.5, 1.0, 1 / 3])
    assert f == pytest.approx(w @ [0.5, 2 / 3, 0.5])
    assert precision_recall_f1(Y_TRUE, Y_PRED, average="micro") == pytest.approx((4 / 7,) * 3)


def test_zero_division_is_zero():
    # class 1 is never predicted (precision 0/0) and class 2 never occurs in y_true (recall 0/0)
    p, r, f = precision_recall_f1([0, 1, 1], [0, 0, 2], average=None)
    np.testing.assert_allclose(p, [0.5, 0.0, 0.0])
    np.testing.assert_allclose(r, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(f, [2 / 3, 0.0, 0.0])
    assert np.all(np.isfinite(p))


def test_macro_skips_classes_absent_from_both():
    # class 1 occurs nowhere: per class it is 0, but macro averages classes 0 and 2 only
    p, r, f = precision_recall_f1([0, 2, 2], [0, 2, 0], average=None, num_classes=4)
    assert p.shape == (4,)
    pm, rm, fm = precision_recall_f1([0, 2, 2], [0, 2, 0], average="macro", num_classes=4)
    assert pm == pytest.approx((p[0] + p[2]) / 2)
    assert rm == pytest.approx((r[0] + r[2]) / 2)
    assert fm == pytest.approx((f[0] + f[2]) / 2)


def test_top_k_hand():
    scores = np.array([[0.1, 0.5, 0.4],   # true 2: rank 2
                       [0.7, 0.2, 0.1],   # true 0: rank 1
                       [0.3, 0.3, 0.4],   # true 1: tie with class 0, rank 2 (ties favour it)
                       [0.2, 0.3, 0.5]])  # true 0: rank 3
    y = [2, 0, 1, 0]
    assert top_k_accuracy(y, scores, k=1) == pytest.approx(1 / 4)
    assert top_k_accuracy(y, scores, k=2) == pytest.approx(3 / 4)
    assert top_k_accuracy(y, scores, k=3) == 1.0
    assert top_k_accuracy(from_numpy(np.array(y)), from_numpy(scores), k=2) == pytest.approx(0.75)


# ---------------------------------------------------------------------- random vs reference
@pytest.mark.parametrize("seed", range(5))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 7))
    n = int(rng.integers(1, 60))
    t = rng.integers(0, c, n)
    p = rng.integers(0, c, n)
    np.testing.assert_array_equal(confusion_matrix(t, p, c), ref_confusion(t, p, c))
    assert accuracy(t, p) == pytest.approx(np.mean(t == p))
    for average in ("macro", "micro", "weighted"):
        got = precision_recall_f1(t, p, average=average, num_classes=c)
        assert got == pytest.approx(ref_prf(t, p, c, average)), average
    got = precision_recall_f1(t, p, average=None, num_classes=c)
    for a, b in zip(got, ref_prf(t, p, c, None)):
        np.testing.assert_allclose(a, b)
    scores = rng.integers(0, 4, (n, c)).astype(np.float64)  # small ints: many ties
    for k in range(1, c + 1):
        assert top_k_accuracy(t, scores, k) == pytest.approx(ref_top_k(t, scores, k)), k


@pytest.mark.parametrize("seed", range(3))
def test_against_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(100 + seed)
    c, n = 5, 80
    t = rng.integers(0, c, n)
    p = rng.integers(0, c, n)
    np.testing.assert_array_equal(confusion_matrix(t, p, c),
                                  sk.confusion_matrix(t, p, labels=range(c)))
    assert accuracy(t, p) == pytest.approx(sk.accuracy_score(t, p))
    for average in ("macro", "micro", "weighted", None):
        ours = precision_recall_f1(t, p, average=average)
        theirs = sk.precision_recall_fscore_support(t, p, average=average, zero_division=0)[:3]
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, err_msg=str(average))
    scores = rng.standard_normal((n, c))  # continuous: no ties, sklearn's tie rule is moot
    for k in (1, 2, 4):
        assert top_k_accuracy(t, scores, k) == pytest.approx(
            sk.top_k_accuracy_score(t, scores, k=k, labels=range(c)))


def test_vectorised_on_large_input():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 10, 200_000)
    p = np.where(rng.random(200_000) < 0.9, t, rng.integers(0, 10, 200_000))
    cm = confusion_matrix(t, p)
    assert cm.sum() == 200_000
    assert accuracy(t, p) == pytest.approx(np.trace(cm) / 200_000)


# ---------------------------------------------------------------------- errors
def test_length_mismatch_names_both():
    with pytest.raises(ValueError, match="y_true has 3 samples but y_pred has 2"):
        accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="y_true has 2 samples but scores has 3"):
        top_k_accuracy([0, 1], np.zeros((3, 4)), k=1)
    with pytest.raises(ValueError, match="y_true has 1 samples but y_pred has 2"):
        precision_recall_f1([0], [0, 1])


def test_label_errors():
    with pytest.raises(ValueError, match="negative label -1 at index 1"):
        confusion_matrix([0, -1], [0, 0])
    with pytest.raises(ValueError, match="y_pred has a negative label"):
        accuracy([0, 1], [0, -3])
    with pytest.raises(ValueError, match="label 3 is out of range for num_classes=3"):
        confusion_matrix([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="integer class labels, got 0.5"):
        accuracy([0.0, 0.5], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
    with pytest.raises(ValueError, match="out of range for scores with 2 classes"):
        top_k_accuracy([0, 2], np.zeros((2, 2)), k=1)
    assert accuracy(np.array([0.0, 1.0]), [0, 1]) == 1.0  # integral floats are labels


def test_bad_arguments():
    with pytest.raises(ValueError, match="average must be one of"):
        precision_recall_f1([0, 1], [0, 1], average="samples")
    with pytest.raises(ValueError, match="k must be an int in 1..3"):
        top_k_accuracy([0], np.zeros((1, 3)), k=4)
    with pytest.raises(ValueError, match="k must be an int"):
        top_k_accuracy([0], np.zeros((1, 3)), k=0)
    with pytest.raises(ValueError, match=r"scores must have shape \(N, C\)"):
        top_k_accuracy([0], np.zeros(3), k=1)
    with pytest.raises(ValueError, match="NaN"):
        accuracy([0], np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="labels"):
        accuracy(np.zeros((2, 2, 2)), [0, 1])
