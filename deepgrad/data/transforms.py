"""Image transforms and augmentation, as ``torchvision.transforms``, vectorised over batches.

Every transform takes one image (C, H, W) or a whole batch (N, C, H, W), as an ndarray or a
Tensor, and returns the same kind of object. A random transform draws different parameters
for each image of a batch in one call (no Python loop over samples), from its own generator
(``seed`` / ``generator`` arguments) or else from the global one (:func:`deepgrad.manual_seed`).
Its two halves are public: ``get_params(shape)`` draws one row of parameters per image and
``apply(x, params)`` is deterministic, so a batch and its images taken one at a time can be
transformed identically.

:class:`TransformDataset` applies a transform inside the DataLoader and keeps the batched fast
path: the transform receives the whole gathered batch array.

PARITY: torchvision transforms act on one image at a time (per-sample randomness comes from
the loader calling them per sample); here a batch is one call with per-sample parameters.
Transforms act on data, not on the autograd graph.

Example:
    >>> train_tf = Compose([RandomCrop(28, padding=2, seed=0), Normalize([0.1307], [0.3081])])
    >>> loader = DataLoader(TransformDataset(TensorDataset(x, y), train_tf), batch_size=64)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from deepgrad._random import get_rng
from deepgrad.data.dataset import Dataset, _resolve_rng
from deepgrad.tensor import Tensor, from_numpy

Params = dict[str, np.ndarray]


def _unwrap(x) -> tuple[np.ndarray, bool]:
    """(ndarray, was_tensor) for a Tensor or array-like."""
    if isinstance(x, Tensor):
        return x.data, True
    return np.asarray(x), False


def _rewrap(arr: np.ndarray, was_tensor: bool):
    return from_numpy(arr) if was_tensor else arr


def _as_batch(arr: np.ndarray, who: str) -> tuple[np.ndarray, bool]:
    """View (C, H, W) as (1, C, H, W); return (batch, was_single)."""
    if arr.ndim == 3:
        return arr[None], True
    if arr.ndim == 4:
        return arr, False
    raise ValueError(f"{who} expects an image (C, H, W) or a batch (N, C, H, W), "
                     f"got shape {arr.shape}")


def _require_float(arr: np.ndarray, who: str) -> None:
    if arr.dtype.kind != "f":
        raise TypeError(f"{who} expects floating-point images, got {arr.dtype}; "
                        "apply ToFloat() first")


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if (len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                              for v in pair) or min(pair) < minimum):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class Compose:
    """Apply ``transforms`` (callables) in order, as ``torchvision.transforms.Compose``."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        body = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToFloat:
    """Convert images to floating point in [0, 1] (torchvision's ``ToTensor`` scaling).

    Integer images are divided by their dtype's maximum (uint8: 255); booleans become 0 and 1;
    floating images are only cast.

    Args:
        dtype: the floating dtype of the result.
    """

    def __init__(self, dtype: Any = np.float32):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"ToFloat: dtype must be a floating dtype, got {self.dtype}")

    def __call__(self, x):
        arr, tensor = _unwrap(x)
        out = arr.astype(self.dtype, copy=False)
        if arr.dtype.kind in "iu":
            out = out / self.dtype.type(np.iinfo(arr.dtype).max)
        return _rewrap(out, tensor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype.name})"


#: The same transform under a name that says what it does to uint8 images.
ScaleTo01 = ToFloat


def _normalize(arr: np.ndarray, mean: np.ndarray, std: np.ndarray, who: str) -> np.ndarray:
    _require_float(arr, who)
    if arr.ndim not in (3, 4):
        raise ValueError(f"{who} expects (C, H, W) or (N, C, H, W), got shape {arr.shape}")
    c = arr.shape[-3]
    if mean.size not in (1, c):
        raise ValueError(f"{who}: {mean.size} channel statistics for images with {c} channels "
                         f"(shape {arr.shape})")
    m = mean.astype(arr.dtype).reshape(-1, 1, 1)
    s = std.astype(arr.dtype).reshape(-1, 1, 1)
    return (arr - m) / s


class Normalize:
    """Per-channel ``(x - mean[c]) / std[c]``, as ``torchvision.transforms.Normalize``.

    Args:
        mean: one value per channel (or one for all).
        std: one positive value per channel (or one for all).
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1 or self.mean.size != self.std.size:
            raise ValueError(f"Normalize: mean and std must be sequences of the same length, "
                             f"got {self.mean.size} and {self.std.size}")
        if not (np.all(np.isfinite(self.mean)) and np.all(self.std > 0)):
            raise ValueError(f"Normalize: mean must be finite and std positive, got "
                             f"mean={self.mean.tolist()}, std={self.std.tolist()}")

    def __call__(self, x):
        arr, tensor = _unwrap(x)
        return _rewrap(_normalize(arr, self.mean, self.std, type(self).__name__), tensor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Standardize(Normalize):
    """Per-channel standardisation with statistics fitted on training data.

    ``fit(x_train)`` stores each channel's mean and standard deviation (over samples and
    pixels, in float64); the transform then applies ``(x - mean[c]) / std[c]`` as
    :class:`Normalize`. A constant channel (std 0) is only centred (std taken as 1, as
    scikit-learn's ``StandardScaler``).

    Args:
        per_channel: one mean/std per channel; False for a single mean/std over everything.

    Example:
        >>> x_test = Standardize().fit(x_train)(x_test)   # x_train (N, C, H, W)
    """

    def __init__(self, per_channel: bool = True):  # NOTE: unfitted, so no Normalize.__init__
        self.per_channel = bool(per_channel)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, x) -> Standardize:
        """Compute the statistics from training images (C, H, W) or (N, C, H, W); return self."""
        arr, _ = _unwrap(x)
        batch, _ = _as_batch(arr, "Standardize.fit")
        if batch.size == 0:
            raise ValueError(f"Standardize.fit: no data (shape {arr.shape})")
        axes = (0, 2, 3) if self.per_channel else None
        mean = np.atleast_1d(batch.mean(axis=axes, dtype=np.float64))
        std = np.atleast_1d(batch.std(axis=axes, dtype=np.float64))
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            raise ValueError("Standardize.fit: the data contain NaN or infinity")
        std[std == 0] = 1.0
        self.mean, self.std = mean, std
        return self

    def __call__(self, x):
        if self.mean is None:
            raise RuntimeError("Standardize: call fit(training_images) before transforming")
        return super().__call__(x)

    def __repr__(self) -> str:
        if self.mean is None:
            return f"{type(self).__name__}(per_channel={self.per_channel}, not fitted)"
        return super().__repr__()


class ScaleToRange:
    """Map values linearly from ``input_range`` to ``[low, high]`` (default [0, 1] -> [-1, 1]).

    Args:
        low: image of ``input_range[0]``.
        high: image of ``input_range[1]``.
        input_range: the interval of the input values, ``(a, b)`` with a < b.
    """

    def __init__(self, low: float = -1.0, high: float = 1.0,
                 input_range: tuple[float, float] = (0.0, 1.0)):
        a, b = (float(v) for v in input_range)
        if not b > a or not high != low:
            raise ValueError(f"ScaleToRange: need input_range a < b and low != high, got "
                             f"input_range={input_range}, low={low}, high={high}")
        self.low, self.high, self.input_range = float(low), float(high), (a, b)

    def __call__(self, x):
        arr, tensor = _unwrap(x)
        _require_float(arr, type(self).__name__)
        a, b = self.input_range
        scale = arr.dtype.type((self.high - self.low) / (b - a))
        return _rewrap((arr - arr.dtype.type(a)) * scale + arr.dtype.type(self.low), tensor)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(low={self.low}, high={self.high}, "
                f"input_range={self.input_range})")


class RandomTransform:
    """Base of the random transforms: ``__call__(x) = apply(x, get_params(shape of x))``.

    Args:
        seed: seed of the transform's own generator.
        generator: a NumPy Generator to draw from (mutually exclusive with ``seed``). With
            neither, draws come from the global generator.
    """

    def __init__(self, seed: int | None = None, generator: np.random.Generator | None = None):
        self.generator = _resolve_rng(seed, generator, type(self).__name__)

    def _rng(self) -> np.random.Generator:
        return self.generator if self.generator is not None else get_rng()

    def get_params(self, shape: tuple[int, ...]) -> Params:
        """Draw parameters for an input of ``shape``: arrays with one row per image (N or 1)."""
        if len(shape) not in (3, 4):
            raise ValueError(f"{type(self).__name__} expects an image (C, H, W) or a batch "
                             f"(N, C, H, W), got shape {tuple(shape)}")
        return self._draw(self._rng(), 1 if len(shape) == 3 else shape[0], tuple(shape))

    def _draw(self, rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> Params:
        raise NotImplementedError

    def apply(self, x, params: Params):
        """Transform ``x`` (image or batch) with the given per-image ``params``."""
        arr, tensor = _unwrap(x)
        batch, single = _as_batch(arr, type(self).__name__)
        n = batch.shape[0]
        for key, value in params.items():
            if len(value) != n:
                raise ValueError(f"{type(self).__name__}.apply: params[{key!r}] has "
                                 f"{len(value)} rows for {n} images")
        out = self._apply_batch(batch, params)
        return _rewrap(out[0] if single else out, tensor)

    def _apply_batch(self, x: np.ndarray, params: Params) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x):
        shape = x.shape if isinstance(x, Tensor) else np.shape(x)
        return self.apply(x, self.get_params(tuple(shape)))


def _shift(x: np.ndarray, dy: np.ndarray, dx: np.ndarray, size: tuple[int, int],
           fill: float) -> np.ndarray:
    """``out[n, c, i, j] = x[n, c, i + dy[n], j + dx[n]]``, ``fill`` outside x; out is (h, w).

    The batch is padded with ``fill`` just enough for every window, then all windows are
    gathered in one fancy index into a sliding-window view (each window row is a contiguous
    copy, several times faster than gathering pixel by pixel).
    """
    n, c, h_in, w_in = x.shape
    h, w = size
    if n == 0:
        return np.empty((0, c, h, w), dtype=x.dtype)
    pad_t, pad_l = max(0, -int(dy.min())), max(0, -int(dx.min()))
    pad_b, pad_r = max(0, int(dy.max()) + h - h_in), max(0, int(dx.max()) + w - w_in)
    if pad_t or pad_b or pad_l or pad_r:
        x = np.pad(x, ((0, 0), (0, 0), (pad_t, pad_b), (pad_l, pad_r)),
                   constant_values=np.asarray(fill, dtype=x.dtype))
    windows = sliding_window_view(x, (h, w), axis=(2, 3))  # (N, C, H', W', h, w)
    # NOTE: the advanced indices (N,) are separated by a slice, so they come first: (N, C, h, w)
    return windows[np.arange(n), :, dy + pad_t, dx + pad_l]


class RandomCrop(RandomTransform):
    """Crop a random ``size`` window after zero padding, as ``transforms.RandomCrop``.

    The input is padded by ``padding`` pixels of ``fill`` on every side, then the window's top
    left corner is drawn uniformly: ``top`` in ``0 .. H + 2 p - h`` then ``left`` in
    ``0 .. W + 2 p - w`` (one draw of N values each, in that order).

    Args:
        size: output size, an int (square) or (h, w).
        padding: pixels added on each side before cropping.
        fill: value of the padding.
        seed, generator: see :class:`RandomTransform`.

    Shape:
        (C, H, W) -> (C, h, w); (N, C, H, W) -> (N, C, h, w).
    """

    def __init__(self, size: int | tuple[int, int], padding: int = 0, fill: float = 0.0,
                 seed: int | None = None, generator: np.random.Generator | None = None):
        super().__init__(seed, generator)
        self.size = _pair(size, "RandomCrop size", 1)
        if isinstance(padding, bool) or not isinstance(padding, numbers.Integral) or padding < 0:
            raise ValueError(f"RandomCrop padding must be an int >= 0, got {padding!r}")
        self.padding = int(padding)
        self.fill = float(fill)

    def _draw(self, rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> Params:
        """``{"top", "left"}``: corners in padded coordinates, int64 arrays (N,)."""
        (h, w), p = self.size, self.padding
        span_h, span_w = shape[-2] + 2 * p - h, shape[-1] + 2 * p - w
        if span_h < 0 or span_w < 0:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded "
                             f"image ({shape[-2] + 2 * p}, {shape[-1] + 2 * p}) of input "
                             f"shape {shape} with padding {p}")
        top = rng.integers(0, span_h + 1, size=n)
        return {"top": top, "left": rng.integers(0, span_w + 1, size=n)}

    def _apply_batch(self, x: np.ndarray, params: Params) -> np.ndarray:
        p = self.padding
        dy = np.asarray(params["top"], dtype=np.int64) - p
        dx = np.asarray(params["left"], dtype=np.int64) - p
        return _shift(x, dy, dx, self.size, self.fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomShift(RandomTransform):
    """Translate each image by a random whole number of pixels, filling the gap with ``fill``.

    ``out[i, j] = x[i - dy, j - dx]`` with ``dy`` uniform in ``-max_dy .. max_dy`` and then
    ``dx`` in ``-max_dx .. max_dx`` (positive moves content down / right). Equivalent to
    ``RandomCrop(size=(H, W), padding=max_shift)`` for square shifts.

    Args:
        max_shift: largest shift, an int or (max_dy, max_dx).
        fill: value of the uncovered pixels.
        seed, generator: see :class:`RandomTransform`.
    """

    def __init__(self, max_shift: int | tuple[int, int], fill: float = 0.0,
                 seed: int | None = None, generator: np.random.Generator | None = None):
        super().__init__(seed, generator)
        self.max_shift = _pair(max_shift, "RandomShift max_shift", 0)
        self.fill = float(fill)

    def _draw(self, rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> Params:
        """``{"dy", "dx"}``: int64 arrays (N,)."""
        my, mx = self.max_shift
        dy = rng.integers(-my, my + 1, size=n)
        return {"dy": dy, "dx": rng.integers(-mx, mx + 1, size=n)}

    def _apply_batch(self, x: np.ndarray, params: Params) -> np.ndarray:
        dy = -np.asarray(params["dy"], dtype=np.int64)
        dx = -np.asarray(params["dx"], dtype=np.int64)
        return _shift(x, dy, dx, x.shape[-2:], self.fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_shift={self.max_shift})"


class RandomHorizontalFlip(RandomTransform):
    """Mirror each image left-right with probability ``p``, as ``RandomHorizontalFlip``.

    Args:
        p: probability of flipping each image.
        seed, generator: see :class:`RandomTransform`.
    """

    _axis = -1

    def __init__(self, p: float = 0.5, seed: int | None = None,
                 generator: np.random.Generator | None = None):
        super().__init__(seed, generator)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must lie in [0, 1], got {p}")
        self.p = float(p)

    def _draw(self, rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> Params:
        """``{"flip"}``: bool array (N,), ``uniform < p``."""
        return {"flip": rng.random(n) < self.p}

    def _apply_batch(self, x: np.ndarray, params: Params) -> np.ndarray:
        flip = np.asarray(params["flip"], dtype=bool)[:, None, None, None]
        return np.where(flip, np.flip(x, axis=self._axis), x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror each image upside down with probability ``p``, as ``RandomVerticalFlip``."""

    _axis = -2


def _rotation_coords(angles: np.ndarray, h: int, w: int,
                     dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates (row, col), each (N, h * w), of a rotation about the image centre.

    A positive angle turns the content counter-clockwise as displayed (row 0 at the top), as
    torchvision; the output pixel at offset (dy, dx) from the centre reads the input at
    ``(dx sin t + dy cos t, dx cos t - dy sin t)`` from the centre.
    """
    t = np.deg2rad(angles)
    cos, sin = np.cos(t), np.sin(t)
    # NOTE: snap so that multiples of 90 degrees land exactly on the pixel grid.
    for v in (cos, sin):
        v[np.abs(v) < 1e-12] = 0.0
        unit = np.abs(np.abs(v) - 1.0) < 1e-12
        v[unit] = np.sign(v[unit])
    ci, cj = (h - 1) / 2.0, (w - 1) / 2.0
    dy = np.repeat(np.arange(h, dtype=dtype) - dtype.type(ci), w)[None]  # (1, h * w)
    dx = np.tile(np.arange(w, dtype=dtype) - dtype.type(cj), h)[None]
    cos, sin = cos.astype(dtype)[:, None], sin.astype(dtype)[:, None]
    return dtype.type(ci) + dx * sin + dy * cos, dtype.type(cj) + dx * cos - dy * sin


def _rotate(x: np.ndarray, angles: np.ndarray, interpolation: str, fill: float) -> np.ndarray:
    n, c, h, w = x.shape
    work = x if x.dtype.kind == "f" else x.astype(np.float32)
    # NOTE: a 1-pixel border of ``fill`` lets every source index be clipped to -1..H (-1..W):
    # a pixel outside the image then reads the border, so no validity masks are needed.
    padded = np.pad(work, ((0, 0), (0, 0), (1, 1), (1, 1)),
                    constant_values=np.asarray(fill, dtype=work.dtype))
    flat = padded.reshape(-1)
    wp = w + 2
    base = ((np.arange(n)[:, None] * c + np.arange(c)) * ((h + 2) * wp))[:, :, None]  # (N,C,1)
    ys, xs = _rotation_coords(np.asarray(angles, dtype=np.float64), h, w, work.dtype)

    def rows(yi: np.ndarray) -> np.ndarray:  # offsets of the padded rows, (N, 1, h * w)
        return ((np.clip(yi, -1, h) + 1) * wp)[:, None, :]

    def cols(xi: np.ndarray) -> np.ndarray:
        return (np.clip(xi, -1, w) + 1)[:, None, :]

    if interpolation == "nearest":
        r = rows(np.floor(ys + 0.5).astype(np.intp))
        out = flat.take(base + (r + cols(np.floor(xs + 0.5).astype(np.intp))))
    else:
        y0, x0 = np.floor(ys), np.floor(xs)
        wy, wx = (ys - y0)[:, None, :], (xs - x0)[:, None, :]
        y0, x0 = y0.astype(np.intp), x0.astype(np.intp)
        r0, r1, c0, c1 = rows(y0), rows(y0 + 1), cols(x0), cols(x0 + 1)
        top, bottom = flat.take(base + (r0 + c0)), flat.take(base + (r1 + c0))
        top += (flat.take(base + (r0 + c1)) - top) * wx
        bottom += (flat.take(base + (r1 + c1)) - bottom) * wx
        out = top + (bottom - top) * wy
    out = out.reshape(n, c, h, w)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(x.dtype, copy=False)


class RandomRotation(RandomTransform):
    """Rotate each image about its centre by a random angle, as ``transforms.RandomRotation``.

    The angle (degrees, counter-clockwise) is uniform in ``degrees``; pixels whose source lies
    outside the image take ``fill``. Vectorised: one gather per interpolation corner for the
    whole batch.

    Args:
        degrees: d for the range (-d, d), or a pair (min, max).
        interpolation: ``"bilinear"`` or ``"nearest"``.
        fill: value of the pixels rotated in from outside.
        seed, generator: see :class:`RandomTransform`.

    Raises:
        ValueError: for a negative d, min > max, or an unknown interpolation.
    """

    def __init__(self, degrees: float | tuple[float, float], interpolation: str = "bilinear",
                 fill: float = 0.0, seed: int | None = None,
                 generator: np.random.Generator | None = None):
        super().__init__(seed, generator)
        if isinstance(degrees, numbers.Real):
            if degrees < 0:
                raise ValueError(f"RandomRotation: degrees must be >= 0, got {degrees}")
            lo, hi = -float(degrees), float(degrees)
        else:
            lo, hi = (float(v) for v in degrees)
            if lo > hi:
                raise ValueError(f"RandomRotation: degrees range {degrees} has min > max")
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"RandomRotation: interpolation must be 'bilinear' or 'nearest', "
                             f"got {interpolation!r}")
        self.degrees = (lo, hi)
        self.interpolation = interpolation
        self.fill = float(fill)

    def _draw(self, rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> Params:
        """``{"angle"}``: float64 degrees (N,)."""
        return {"angle": rng.uniform(self.degrees[0], self.degrees[1], size=n)}

    def _apply_batch(self, x: np.ndarray, params: Params) -> np.ndarray:
        return _rotate(x, params["angle"], self.interpolation, self.fill)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(degrees={self.degrees}, "
                f"interpolation={self.interpolation!r})")


class TransformDataset(Dataset):
    """A dataset whose samples pass through ``transform`` (and ``target_transform``).

    For a dataset with the batched fast path (``supports_batch``), :meth:`get_batch` applies
    the transforms once to the whole gathered batch arrays (N, ...), so the transforms of this
    module stay vectorised; single samples (``dataset[i]``) are transformed one at a time.

    Args:
        dataset: the wrapped dataset; its samples are ``(input, target, ...)`` tuples or single
            inputs.
        transform: applied to the input (the first field), or to the whole sample when samples
            are not tuples.
        target_transform: applied to the second field.
        batched: use the batched path when the dataset has one; False for transforms that
            only handle one sample at a time.
    """

    def __init__(self, dataset: Dataset, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, batched: bool = True):
        self.dataset = dataset
        self.transform = transform
        self.target_transform = target_transform
        self.batched = bool(batched)

    @property
    def supports_batch(self) -> bool:  # type: ignore[override]
        return self.batched and bool(getattr(self.dataset, "supports_batch", False))

    def __len__(self) -> int:
        return len(self.dataset)

    def _transform(self, sample):
        tup = isinstance(sample, tuple)
        if self.target_transform is not None and not (tup and len(sample) >= 2):
            raise ValueError("TransformDataset: target_transform needs (input, target) samples")
        if not tup:
            return self.transform(sample) if self.transform is not None else sample
        fields = list(sample)
        for k, fn in ((0, self.transform), (1, self.target_transform)):
            if fn is not None and k < len(fields):
                fields[k] = fn(fields[k])
        return tuple(fields)

    def __getitem__(self, index):
        return self._transform(self.dataset[index])

    def get_batch(self, indices: np.ndarray):
        """Gather the batch from the wrapped dataset, then transform the whole arrays."""
        out = self._transform(self.dataset.get_batch(indices))
        if isinstance(out, tuple):
            return tuple(_unwrap(o)[0] for o in out)
        return _unwrap(out)[0]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({type(self.dataset).__name__}, n={len(self)}, "
                f"transform={self.transform!r})")
