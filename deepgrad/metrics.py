"""Classification metrics on labels or scores: accuracy, top-k, confusion matrix, P/R/F1.

Every function accepts ndarrays, lists or Tensors and is vectorised (``np.bincount`` over
``num_classes * true + pred``), with no Python loop over samples. Predictions may be given as
labels, shape (N,), or as scores (logits or probabilities), shape (N, C), which are reduced with
``argmax`` over the classes.

PARITY: the definitions follow scikit-learn's ``accuracy_score``, ``top_k_accuracy_score``,
``confusion_matrix`` and ``precision_recall_fscore_support`` with ``zero_division=0``; the
classes are always ``0 .. num_classes - 1`` (sklearn uses the labels that occur), and macro
averages skip classes that occur in neither ``y_true`` nor ``y_pred``, which is what sklearn's
default label set amounts to.
"""

from __future__ import annotations

import numpy as np

from deepgrad.tensor import Tensor

_AVERAGES = ("macro", "micro", "weighted", None)


def _to_numpy(x, name: str) -> np.ndarray:
    """ndarray view of a Tensor, ndarray, list or scalar."""
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be numeric, got an object array")
    return arr


def _labels(x, name: str) -> np.ndarray:
    """Check and return integer class labels, shape (N,), as int64."""
    arr = _to_numpy(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{name} must hold integer class labels, got {arr[i]} at index {i}")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    neg = arr < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise ValueError(f"{name} has a negative label {arr[i]} at index {i}")
    return arr


def _predicted(y_pred, name: str = "y_pred") -> np.ndarray:
    """Labels from (N,) labels or (N, C) scores (argmax over the classes)."""
    arr = _to_numpy(y_pred, name)
    if arr.ndim == 2:
        if arr.shape[1] == 0:
            raise ValueError(f"{name} scores have no class column, shape {arr.shape}")
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError(f"{name} scores contain NaN")
        return arr.argmax(axis=1).astype(np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be labels (N,) or scores (N, C), got shape {arr.shape}")
    return _labels(arr, name)


def _same_length(y_true: np.ndarray, y_pred: np.ndarray, pred_name: str = "y_pred") -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} samples but {pred_name} has {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("metrics of an empty set of samples are undefined (N = 0)")


def _num_classes(num_classes: int | None, *labels: np.ndarray) -> int:
    """``num_classes`` checked against the labels, or inferred as max label + 1."""
    top = max(int(lab.max()) for lab in labels)
    if num_classes is None:
        return top + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}")
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if top >= num_classes:
        raise ValueError(f"label {top} is out of range for num_classes={num_classes} "
                         f"(labels must lie in 0..{num_classes - 1})")
    return int(num_classes)


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted class is the true class.

    Args:
        y_true: true class labels, shape (N,).
        y_pred: predicted labels, shape (N,), or scores (logits / probabilities), shape (N, C),
            reduced with ``argmax`` over the classes.

    Returns:
        ``mean(pred == true)``, a float in [0, 1].

    Raises:
        ValueError: if the lengths differ (both are named), N is 0, or a label is negative.
    """
    t = _labels(y_true, "y_true")
    p = _predicted(y_pred)
    _same_length(t, p)
    return float(np.count_nonzero(t == p) / len(t))


def top_k_accuracy(y_true, scores, k: int = 5) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores.

    A sample counts as correct when fewer than ``k`` classes score strictly higher than its true
    class, so ties are resolved in favour of the true class.

    Args:
        y_true: true class labels, shape (N,), each below C.
        scores: logits or probabilities, shape (N, C).
        k: how many of the best classes count, 1 <= k <= C (k = 1 is :func:`accuracy` up to
            ties).

    Returns:
        The top-k accuracy, a float in [0, 1].

    Raises:
        ValueError: for a bad shape, length mismatch, k outside 1..C or a label >= C.
    """
    t = _labels(y_true, "y_true")
    s = _to_numpy(scores, "scores")
    if s.ndim != 2:
        raise ValueError(f"scores must have shape (N, C), got {s.shape}")
    _same_length(t, s, "scores")
    c = s.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= c:
        raise ValueError(f"k must be an int in 1..{c} (the number of classes), got {k!r}")
    if int(t.max()) >= c:
        i = int(np.argmax(t >= c))
        raise ValueError(f"y_true label {t[i]} at index {i} is out of range for scores with "
                         f"{c} classes")
    if s.dtype.kind == "f" and np.isnan(s).any():
        raise ValueError("scores contain NaN")
    true_score = np.take_along_axis(s, t[:, None], axis=1)
    rank = np.count_nonzero(s > true_score, axis=1)
    return float(np.count_nonzero(rank < k) / len(t))


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true: true class labels, shape (N,).
        y_pred: predicted labels (N,) or scores (N, C) (argmax).
        num_classes: number of classes C; inferred as the largest label + 1 when None.

    Returns:
        int64 array (C, C): entry ``[i, j]`` counts samples of true class i predicted as j
        (rows = true, columns = predicted, as scikit-learn).

    Raises:
        ValueError: for a length mismatch, a negative label or a label >= ``num_classes``.
    """
    t = _labels(y_true, "y_true")
    p = _predicted(y_pred)
    _same_length(t, p)
    c = _num_classes(num_classes, t, p)
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c).astype(np.int64, copy=False)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (sklearn's ``zero_division=0``)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_f1(
    y_true,
    y_pred,
    average: str | None = "macro",
    num_classes: int | None = None,
) -> tuple[float, float, float] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 score, per class or averaged.

    Per class c: ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``f1 = 2 TP / (2 TP + FP + FN)`` (the harmonic mean of the two); a ratio whose denominator
    is 0 counts as 0.

    Args:
        y_true: true class labels, shape (N,).
        y_pred: predicted labels (N,) or scores (N, C) (argmax).
        average: ``"macro"`` (unweighted mean over the classes that occur in ``y_true`` or
            ``y_pred``), ``"weighted"`` (mean weighted by each class's support, its count in
            ``y_true``), ``"micro"`` (from the global TP/FP/FN counts; equals the accuracy for
            single-label data), or None for per-class arrays.
        num_classes: number of classes C; inferred as the largest label + 1 when None.

    Returns:
        ``(precision, recall, f1)``: floats, or float64 arrays of shape (C,) when ``average``
        is None.

    Raises:
        ValueError: for an unknown ``average``, a length mismatch or bad labels.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {list(_AVERAGES)}, got {average!r}")
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)  # TP + FP
    support = cm.sum(axis=1)    # TP + FN
    if average == "micro":
        total_tp, total_pred, total_true = tp.sum(), predicted.sum(), support.sum()
        p = float(_safe_div(total_tp, total_pred))
        r = float(_safe_div(total_tp, total_true))
        return p, r, float(_safe_div(2 * total_tp, total_pred + total_true))
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, predicted + support)
    if average is None:
        return precision, recall, f1
    if average == "macro":
        weights = ((predicted + support) > 0).astype(np.float64)
    else:  # weighted
        weights = support.astype(np.float64)
    weights /= weights.sum()  # > 0: N >= 1, so some class occurs
    return float(precision @ weights), float(recall @ weights), float(f1 @ weights)


def classification_summary(y_true, y_pred, num_classes: int | None = None) -> dict:
    """Accuracy, macro/weighted precision-recall-F1, per-class figures and the confusion matrix,
    as JSON-ready Python values (what ``deepgrad train`` writes into summary.json).

    Args:
        y_true: integer labels (N,).
        y_pred: predicted labels (N,) or scores (N, C).
        num_classes: number of classes (default: inferred from the labels).

    Returns:
        ``{"accuracy", "macro": {precision, recall, f1}, "weighted": {...},
        "per_class": {"precision": [...], "recall": [...], "f1": [...], "support": [...]},
        "confusion_matrix": [[...], ...]}`` (rows = true class, columns = predicted).
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    out = {"accuracy": accuracy(y_true, y_pred)}
    for average in ("macro", "weighted"):
        p, r, f = precision_recall_f1(y_true, y_pred, average=average, num_classes=len(cm))
        out[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    p, r, f = precision_recall_f1(y_true, y_pred, average=None, num_classes=len(cm))
    out["per_class"] = {"precision": [float(v) for v in p], "recall": [float(v) for v in r],
                        "f1": [float(v) for v in f],
                        "support": [int(v) for v in cm.sum(axis=1)]}
    out["confusion_matrix"] = cm.tolist()
    return out
