"""Tests of deepgrad.data.ImageFolder on small .npy (and, with Pillow, PNG) image folders."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from deepgrad.data import DataLoader
from deepgrad.data.image_folder import ImageFolder, default_loader, load_image_folder
from deepgrad.data.transforms import RandomHorizontalFlip
from deepgrad.tensor import Tensor


def _make_npy_tree(root, shape=(4, 5)):
    """root/{bird,cat,dog}/..., 2 + 1 + 3 uint8 images; returns {relative path: array}."""
    rng = np.random.default_rng(0)
    layout = {"cat": ["b.npy", "a.npy"], "bird": ["x.NPY"], "dog": ["1.npy", "2.npy", "sub/3.npy"]}
    written = {}
    for cls, names in layout.items():
        for name in names:
            path = root / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = rng.integers(0, 256, shape, dtype=np.uint8)
            np.save(path, arr, allow_pickle=False)
            if not name.endswith(".npy"):  # np.save appends .npy to other endings
                (root / cls / (name + ".npy")).rename(path)
            written[f"{cls}/{name}"] = arr
    (root / "cat" / "notes.txt").write_text("not an image")
    return written


def test_classes_samples_and_items(tmp_path):
    written = _make_npy_tree(tmp_path)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    rel = [(str(p)[len(str(tmp_path)) + 1:].replace("\\", "/"), t) for p, t in ds.samples]
    assert rel == [("bird/x.NPY", 0), ("cat/a.npy", 1), ("cat/b.npy", 1), ("dog/1.npy", 2),
                   ("dog/2.npy", 2), ("dog/sub/3.npy", 2)]
    assert ds.targets == [0, 1, 1, 2, 2, 2] and ds.imgs is ds.samples and len(ds) == 6
    image, label = ds[1]
    assert isinstance(image, Tensor) and image.data.dtype == np.float32
    assert image.shape == (1, 4, 5) and label == 1
    np.testing.assert_allclose(image.data[0], written["cat/a.npy"] / 255.0, rtol=1e-6)


def test_load_arrays_and_loader(tmp_path):
    written = _make_npy_tree(tmp_path)
    ds = ImageFolder(tmp_path)
    x, y = ds.load_arrays()
    assert x.shape == (6, 1, 4, 5) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(y, [0, 1, 1, 2, 2, 2])
    np.testing.assert_allclose(x[5, 0], written["dog/sub/3.npy"] / 255.0, rtol=1e-6)
    x2, y2, classes = load_image_folder(tmp_path)
    np.testing.assert_array_equal(x2, x)
    assert classes == ["bird", "cat", "dog"]
    xb, yb = next(iter(DataLoader(ds, batch_size=6)))
    np.testing.assert_array_equal(xb.data, x)
    np.testing.assert_array_equal(yb.data, y)


def test_transforms_and_channels_layout(tmp_path):
    (tmp_path / "a").mkdir()
    chw = np.random.default_rng(1).random((3, 4, 4))
    np.save(tmp_path / "a" / "rgb.npy", chw)
    ds = ImageFolder(tmp_path, transform=RandomHorizontalFlip(p=1.0),
                     target_transform=lambda t: t + 10)
    image, label = ds[0]
    np.testing.assert_allclose(image.data, chw[..., ::-1].astype(np.float32))
    assert label == 10
    only_npy = ImageFolder(tmp_path, extensions=("npy",))
    assert len(only_npy) == 1


def test_custom_loader(tmp_path):
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "one.raw").write_bytes(bytes(range(16)))

    def read_raw(path):
        return np.frombuffer(open(path, "rb").read(), dtype=np.uint8).reshape(1, 4, 4)

    ds = ImageFolder(tmp_path, extensions=(".raw",), loader=read_raw)
    np.testing.assert_allclose(ds[0][0].data.ravel(), np.arange(16) / 255.0, rtol=1e-6)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        ImageFolder(tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no class folder"):
        ImageFolder(empty)
    (empty / "a").mkdir()
    np.save(empty / "a" / "0.npy", np.zeros((2, 2), np.uint8))
    (empty / "b").mkdir()
    (empty / "b" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"class folder .*b has no image file"):
        ImageFolder(empty)


def test_unreadable_and_mismatched_files_are_named(tmp_path):
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "0.npy", np.zeros((4, 4), np.uint8))
    np.save(tmp_path / "a" / "1.npy", np.zeros((4, 5), np.uint8))
    (tmp_path / "a" / "2.npy").write_bytes(b"garbage, not a npy file")
    ds = ImageFolder(tmp_path)
    with pytest.raises(ValueError, match=r"1\.npy has shape \(1, 4, 5\) but .*0\.npy has"):
        ds.load_arrays()
    with pytest.raises(ValueError, match=r"cannot read image .*2\.npy"):
        ds[2]
    np.save(tmp_path / "a" / "1.npy", np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"1\.npy.*shape \(2, 2, 2, 2\)"):
        ds[1]


def test_missing_pillow_is_explained(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "img.png").write_bytes(b"\x89PNG")
    np.save(tmp_path / "a" / "ok.npy", np.zeros((2, 2), np.uint8))
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `import PIL` fail
    with pytest.raises(ImportError, match=r"img\.png.*pip install pillow"):
        ImageFolder(tmp_path)
    with pytest.raises(ImportError, match="pip install pillow"):
        default_loader(tmp_path / "a" / "img.png")
    ds = ImageFolder(tmp_path, extensions=(".npy",))  # .npy needs no Pillow
    assert ds[0][0].shape == (1, 2, 2)


def test_png_images_with_pillow(tmp_path):
    image_mod = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    (tmp_path / "g").mkdir()
    (tmp_path / "c").mkdir()
    image_mod.fromarray(gray).save(tmp_path / "g" / "0.png")
    image_mod.fromarray(gray).save(tmp_path / "g" / "1.pgm")
    image_mod.fromarray(rgb).save(tmp_path / "c" / "0.PNG")
    image_mod.fromarray(rgb).save(tmp_path / "c" / "1.bmp")
    image_mod.fromarray(rgb).convert("RGBA").save(tmp_path / "c" / "2.png")
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["c", "g"]
    for i in range(3):
        image, label = ds[i]
        assert label == 0 and image.shape == (3, 6, 7) and image.data.dtype == np.float32
        np.testing.assert_allclose(image.data, rgb.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    for i in (3, 4):
        image, label = ds[i]
        assert label == 1 and image.shape == (1, 6, 7)
        np.testing.assert_allclose(image.data[0], gray / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"0\.png has shape \(1, 6, 7\) but .*0\.PNG has"):
        ds.load_arrays()
    (tmp_path / "g" / "2.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(ValueError, match=r"cannot read image .*2\.png"):
        ImageFolder(tmp_path)[5]


def test_sixteen_bit_png(tmp_path):
    image_mod = pytest.importorskip("PIL.Image")
    (tmp_path / "a").mkdir()
    arr = np.array([[0, 1000], [30000, 65535]], dtype=np.uint16)
    image_mod.fromarray(arr).save(tmp_path / "a" / "x.png")
    image = ImageFolder(tmp_path)[0][0]
    np.testing.assert_allclose(image.data[0], arr / 65535.0, rtol=1e-6)
