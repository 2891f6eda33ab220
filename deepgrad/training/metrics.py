"""Classification metrics computed on a batch's outputs (no gradient, no graph)."""

from __future__ import annotations

from deepgrad.tensor import Tensor


def correct_count(output: Tensor, target: Tensor) -> int | None:
    """Number of samples whose arg-max logit is the target class.

    Args:
        output: logits or scores, shape (N, C).
        target: class indices, integer shape (N,).

    Returns:
        The count, or None when this is not a classification batch (output not 2-D, float
        targets, or sizes that differ), so that ``fit`` reports no accuracy for regression.
    """
    out = output.data if isinstance(output, Tensor) else output
    tgt = target.data if isinstance(target, Tensor) else target
    if getattr(out, "ndim", 0) != 2 or getattr(tgt, "ndim", 0) != 1 or len(tgt) != len(out):
        return None
    if tgt.dtype.kind not in "iu":
        return None
    return int((out.argmax(axis=1) == tgt).sum())
