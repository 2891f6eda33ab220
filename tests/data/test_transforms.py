"""Tests of deepgrad.data.transforms: exact small cases, batch == per-image, statistics."""

from __future__ import annotations

import numpy as np
import pytest

from deepgrad._random import manual_seed
from deepgrad.data import DataLoader, TensorDataset, default_collate
from deepgrad.data.transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomShift,
    RandomVerticalFlip,
    ScaleTo01,
    ScaleToRange,
    Standardize,
    ToFloat,
    TransformDataset,
)
from deepgrad.tensor import Tensor, from_numpy


def _batch(n=4, c=2, h=5, w=6, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


RANDOM_TRANSFORMS = [
    lambda: RandomCrop(4, padding=2, seed=1),
    lambda: RandomCrop((3, 5), seed=1),
    lambda: RandomShift((1, 2), fill=0.5, seed=1),
    lambda: RandomHorizontalFlip(seed=1),
    lambda: RandomVerticalFlip(seed=1),
    lambda: RandomRotation(30, seed=1),
    lambda: RandomRotation((-20, 40), interpolation="nearest", fill=1.0, seed=1),
]


# ---------------------------------------------------------------------- deterministic ones
def test_to_float_scales_integers():
    x = np.array([[[0, 51, 255]]], dtype=np.uint8)
    out = ToFloat()(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[0.0, 0.2, 1.0]]], rtol=1e-6)
    assert ScaleTo01 is ToFloat
    np.testing.assert_allclose(ToFloat()(np.array([65535], dtype=np.uint16)), [1.0])
    f = np.array([0.25], dtype=np.float64)
    assert ToFloat()(f).dtype == np.float32 and ToFloat("float64")(f).dtype == np.float64
    t = ToFloat()(from_numpy(x))
    assert isinstance(t, Tensor) and t.data.dtype == np.float32


def test_normalize_per_channel():
    x = _batch(c=3)
    mean, std = [0.1, 0.2, 0.3], [0.5, 1.0, 2.0]
    out = Normalize(mean, std)(x)
    assert out.dtype == np.float32
    m = np.array(mean, np.float32)[:, None, None]
    s = np.array(std, np.float32)[:, None, None]
    expected = (x - m) / s
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(Normalize(mean, std)(x[1]), expected[1], rtol=1e-6)
    np.testing.assert_allclose(Normalize(0.5, 0.25)(x), (x - 0.5) / 0.25, rtol=1e-6)


def test_normalize_errors():
    with pytest.raises(ValueError, match="3 channel statistics for images with 2 channels"):
        Normalize([0, 0, 0], [1, 1, 1])(_batch(c=2))
    with pytest.raises(ValueError, match="std positive"):
        Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="same length"):
        Normalize([0.0, 1.0], [1.0])
    with pytest.raises(TypeError, match="ToFloat"):
        Normalize([0.0], [1.0])(np.zeros((1, 2, 2), dtype=np.uint8))


def test_scale_to_range():
    x = np.array([[[0.0, 0.5, 1.0]]], dtype=np.float32)
    out = ScaleToRange(-1, 1)(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[-1.0, 0.0, 1.0]]])
    np.testing.assert_allclose(ScaleToRange(0, 1, input_range=(-1, 1))(out), x)
    with pytest.raises(ValueError):
        ScaleToRange(1, 1)


def test_standardize_fit_and_apply():
    rng = np.random.default_rng(0)
    scale = np.array([2.0, 0.5, 1.0])[:, None, None]
    shift = np.array([1.0, -3.0, 0.0])[:, None, None]
    x = (rng.standard_normal((50, 3, 4, 4)) * scale + shift).astype(np.float32)
    st = Standardize().fit(x)
    np.testing.assert_allclose(st.mean, x.astype(np.float64).mean(axis=(0, 2, 3)))
    out = st(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1.0, atol=1e-5)
    glob = Standardize(per_channel=False).fit(x)
    assert glob.mean.shape == (1,)
    const = Standardize().fit(np.ones((2, 1, 2, 2), dtype=np.float32))
    np.testing.assert_array_equal(const(np.ones((1, 2, 2), dtype=np.float32)), 0.0)
    with pytest.raises(RuntimeError, match="fit"):
        Standardize()(x)
    assert "not fitted" in repr(Standardize())


def test_compose_and_repr():
    tf = Compose([ToFloat(), Normalize([0.5], [0.5])])
    x = np.array([[[0, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(tf(x), [[[-1.0, 1.0]]])
    text = repr(tf)
    assert text.startswith("Compose(") and "Normalize(mean=[0.5], std=[0.5])" in text
    for make in RANDOM_TRANSFORMS:
        assert type(make()).__name__ in repr(make())


# ---------------------------------------------------------------------- exact random ones
def test_horizontal_flip_is_exact():
    x = _batch()
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)
    np.testing.assert_array_equal(RandomVerticalFlip(p=1.0)(x[0]), x[0, :, ::-1])
    flip = RandomHorizontalFlip(seed=3)
    params = flip.get_params(x.shape)
    expected = np.random.default_rng(3).random(4) < 0.5
    np.testing.assert_array_equal(params["flip"], expected)
    out = flip.apply(x, params)
    for i in range(4):
        np.testing.assert_array_equal(out[i], x[i, :, :, ::-1] if expected[i] else x[i])


def test_flip_probability_statistics():
    x = np.arange(2, dtype=np.float32).reshape(1, 1, 1, 2).repeat(20_000, axis=0)
    out = RandomHorizontalFlip(p=0.5, seed=0)(x)
    frac = np.mean(out[:, 0, 0, 0] == 1.0)
    assert abs(frac - 0.5) < 0.02  # 5.6 standard deviations
    out = RandomHorizontalFlip(p=0.2, seed=1)(x)
    assert abs(np.mean(out[:, 0, 0, 0] == 1.0) - 0.2) < 0.02


def test_random_crop_matches_hand_computation():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4) + 1
    crop = RandomCrop(3, padding=1, seed=7)
    out = crop(x)
    rng = np.random.default_rng(7)
    tops = rng.integers(0, 4 + 2 - 3 + 1, size=2)
    lefts = rng.integers(0, 4 + 2 - 3 + 1, size=2)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(2):
        expected = padded[i, :, tops[i]:tops[i] + 3, lefts[i]:lefts[i] + 3]
        np.testing.assert_array_equal(out[i], expected)
    # A fixed corner, by hand: top 0, left 2 of the padded 6x6 image
    one = crop.apply(x[0], {"top": np.array([0]), "left": np.array([2])})
    np.testing.assert_array_equal(one, [[[0, 0, 0], [2, 3, 4], [6, 7, 8]]])


def test_random_shift_by_hand():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3)
    shift = RandomShift(1, fill=-1)
    out = shift.apply(x, {"dy": np.array([1]), "dx": np.array([-1])})  # down 1, left 1
    np.testing.assert_array_equal(out, [[[-1, -1, -1], [2, 3, -1], [5, 6, -1]]])
    same = RandomShift(0, seed=0)(x)
    np.testing.assert_array_equal(same, x)
    params = RandomShift(2, seed=0).get_params((1000, 1, 5, 5))
    assert params["dy"].min() == -2 and params["dy"].max() == 2


def test_rotation_90_is_rot90_and_0_is_identity():
    x = _batch(n=3, c=2, h=5, w=5)
    for interp in ("bilinear", "nearest"):
        r90 = RandomRotation((90, 90), interpolation=interp)
        np.testing.assert_allclose(r90(x), np.rot90(x, 1, axes=(-2, -1)), atol=1e-6)
        r180 = RandomRotation((-180, -180), interpolation=interp)
        np.testing.assert_allclose(r180(x[0]), np.rot90(x[0], 2, axes=(-2, -1)), atol=1e-6)
        np.testing.assert_array_equal(RandomRotation(0, interpolation=interp)(x), x)


def test_rotation_matches_scipy_affine_transform():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = _batch(n=2, c=1, h=7, w=9).astype(np.float64)
    rot = RandomRotation(45, fill=0.25, seed=0)
    params = rot.get_params(x.shape)
    out = rot.apply(x, params)
    for i, angle in enumerate(params["angle"]):
        t = np.deg2rad(angle)
        m = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
        centre = np.array([3.0, 4.0])
        ref = ndimage.affine_transform(x[i, 0], m, offset=centre - m @ centre, order=1,
                                       mode="grid-constant", cval=0.25)
        np.testing.assert_allclose(out[i, 0], ref, atol=1e-12)


def test_rotation_of_integer_images_keeps_dtype():
    x = (np.arange(16).reshape(1, 4, 4) * 10).astype(np.uint8)
    out = RandomRotation((90, 90))(x)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.rot90(x, 1, axes=(-2, -1)))


# ---------------------------------------------------------------------- shared properties
@pytest.mark.parametrize("make", RANDOM_TRANSFORMS)
def test_batch_equals_per_image_with_same_params(make):
    tf = make()
    x = _batch()
    params = tf.get_params(x.shape)
    batch_out = tf.apply(x, params)
    for i in range(len(x)):
        one = tf.apply(x[i], {k: v[i:i + 1] for k, v in params.items()})
        np.testing.assert_array_equal(batch_out[i], one)


@pytest.mark.parametrize("make", RANDOM_TRANSFORMS)
def test_shapes_dtypes_tensors_and_seeding(make):
    x = _batch()
    out = make()(x)
    assert out.dtype == np.float32 and out.ndim == 4 and len(out) == 4
    single = make()(x[0])
    assert single.shape == out.shape[1:] and single.dtype == np.float32
    np.testing.assert_array_equal(make()(x), out)  # same seed, same result
    t = make()(from_numpy(x))
    assert isinstance(t, Tensor)
    np.testing.assert_array_equal(t.data, out)
    with pytest.raises(ValueError, match=r"\(C, H, W\) or a batch"):
        make()(np.zeros((4, 4), dtype=np.float32))


def test_params_differ_per_image_and_global_rng_is_used():
    x = _batch(n=64)
    params = RandomRotation(30, seed=0).get_params(x.shape)
    assert len(np.unique(params["angle"])) == 64
    manual_seed(5)
    a = RandomCrop(4, padding=2)(x)
    manual_seed(5)
    b = RandomCrop(4, padding=2)(x)
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(9)
    c = RandomCrop(4, padding=2, generator=gen)(x)
    np.testing.assert_array_equal(c, RandomCrop(4, padding=2, seed=9)(x))


def test_constructor_errors():
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(8, padding=1)(_batch())
    with pytest.raises(ValueError, match="padding"):
        RandomCrop(3, padding=-1)
    with pytest.raises(ValueError, match="p must lie"):
        RandomHorizontalFlip(p=1.5)
    with pytest.raises(ValueError, match="interpolation"):
        RandomRotation(10, interpolation="bicubic")
    with pytest.raises(ValueError, match=">= 0"):
        RandomRotation(-5)
    with pytest.raises(ValueError, match="either seed or generator"):
        RandomShift(1, seed=0, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match="rows for 4 images"):
        RandomShift(1).apply(_batch(), {"dy": np.zeros(3, int), "dx": np.zeros(3, int)})


# ---------------------------------------------------------------------- in the loader
def test_transform_dataset_keeps_fast_path_and_matches_per_sample():
    x = _batch(n=10)
    y = np.arange(10)
    ds = TransformDataset(TensorDataset(x, y), RandomHorizontalFlip(p=1.0),
                          target_transform=lambda t: t * 2)
    assert ds.supports_batch and len(ds) == 10
    xb, yb = next(iter(DataLoader(ds, batch_size=10)))
    np.testing.assert_array_equal(xb.data, x[..., ::-1])
    np.testing.assert_array_equal(yb.data, y * 2)
    xi, yi = ds[3]
    assert isinstance(xi, Tensor)
    np.testing.assert_array_equal(xi.data, x[3, :, :, ::-1])
    assert int(yi.data) == 6
    # the per-sample path (an explicit collate_fn forces it) gives the same batch
    xs, ys = next(iter(DataLoader(ds, batch_size=10, collate_fn=default_collate)))
    np.testing.assert_array_equal(xs.data, xb.data)
    np.testing.assert_array_equal(ys.data, yb.data)


def test_transform_dataset_batches_are_random_per_epoch_and_reproducible():
    x = _batch(n=32)
    y = np.zeros(32, dtype=np.int64)

    def epoch_batches(seed):
        ds = TransformDataset(TensorDataset(x, y), RandomCrop(5, padding=1, seed=seed))
        loader = DataLoader(ds, batch_size=8, shuffle=True, seed=seed)
        return [xb.data for xb, _ in loader] + [xb.data for xb, _ in loader]

    a, b = epoch_batches(0), epoch_batches(0)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert all(u.shape == (8, 2, 5, 5) for u in a)


def test_empty_batch():
    x = np.zeros((0, 2, 5, 5), dtype=np.float32)
    for make in RANDOM_TRANSFORMS:
        tf = make()
        out = tf(x)
        assert len(out) == 0 and out.dtype == np.float32


def test_transform_dataset_options_and_errors():
    x = _batch(n=6)
    base = TensorDataset(x, np.arange(6))
    assert not TransformDataset(base, ToFloat(), batched=False).supports_batch
    with pytest.raises(ValueError, match="target_transform needs"):
        TransformDataset(TensorDataset(x), target_transform=abs)[0]
    only_x = TransformDataset(TensorDataset(x), RandomHorizontalFlip(p=1.0))
    (xb,) = next(iter(DataLoader(only_x, batch_size=6)))
    np.testing.assert_array_equal(xb.data, x[..., ::-1])
    assert "TensorDataset" in repr(only_x)
