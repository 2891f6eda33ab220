"""Tests of the IDX reader, the MNIST family, the downloader and the npz loader.

No test touches the network: downloads are served from ``file://`` URLs and from a local
``http.server`` in a temporary directory.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deepgrad.data import (
    KMNIST,
    MNIST,
    MNIST_SOURCE,
    DataLoader,
    DataSource,
    FashionMNIST,
    default_data_root,
    download,
    load_arrays,
    load_npz,
    read_idx,
    write_idx,
)
from tests.mnist_data import MNIST_DIR

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


REAL_MNIST = MNIST_DIR or Path("shared/datasets/mnist")


def _toy_arrays(seed: int = 0, n_train: int = 12, n_test: int = 5):
    rng = np.random.default_rng(seed)
    return {
        FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, n_train).astype(np.uint8),
        FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, n_test).astype(np.uint8),
    }


def _write_toy(folder: Path, gz: bool = True, arrays=None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = arrays or _toy_arrays()
    for base, arr in arrays.items():
        write_idx(folder / (base + (".gz" if gz else "")), arr)
    return arrays


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- IDX reader
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_roundtrip(tmp_path, dtype, name):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    got = read_idx(write_idx(tmp_path / name, arr))
    assert got.dtype == np.dtype(dtype).newbyteorder("=") and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, arr)
    assert got.flags.writeable


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    p = tmp_path / "labels.idx"
    p.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])))
    np.testing.assert_array_equal(read_idx(p), [7, 9])


def test_idx_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.gz"):
        read_idx(tmp_path / "nope.gz")


@pytest.mark.parametrize("content", [b"\x00\x00\x08", b"\x01\x02\x08\x01", b"\x00\x00\x07\x01",
                                     b"\x00\x00\x08\x00", b"PK\x03\x04rest"])
def test_idx_bad_header(tmp_path, content):
    p = tmp_path / "bad.idx"
    p.write_bytes(content + b"\x00" * 8)
    with pytest.raises(ValueError, match=r"bad\.idx.*(magic|truncated)"):
        read_idx(p)


def test_idx_bad_magic_message(tmp_path):
    p = tmp_path / "bad.idx"
    p.write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match=r"bad\.idx: bad IDX magic number 0x12340801"):
        read_idx(p)


def test_idx_truncated_header(tmp_path):
    p = tmp_path / "short.idx"
    p.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2]))
    with pytest.raises(ValueError, match=r"short\.idx: truncated IDX header"):
        read_idx(p)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_data_names_file_and_sizes(tmp_path, gz):
    raw = write_idx(tmp_path / "full.idx", np.zeros((4, 5), np.uint8)).read_bytes()
    p = tmp_path / ("cut.idx.gz" if gz else "cut.idx")
    cut = raw[:-3]
    p.write_bytes(gzip.compress(cut) if gz else cut)
    with pytest.raises(ValueError, match=r"cut\.idx.*truncated.*needs 32 bytes.*has 29"):
        read_idx(p)


def test_idx_trailing_bytes(tmp_path):
    raw = write_idx(tmp_path / "full.idx", np.zeros(3, np.uint8)).read_bytes()
    p = tmp_path / "long.idx"
    p.write_bytes(raw + b"\x00")
    with pytest.raises(ValueError, match=r"long\.idx.*trailing bytes"):
        read_idx(p)


def test_idx_unreadable_gzip(tmp_path):
    good = write_idx(tmp_path / "g.idx.gz", np.arange(1000, dtype=np.int32)).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz: unreadable gzip"):
        read_idx(cut)
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(good[:12] + bytes(b ^ 0xFF for b in good[12:]))
    with pytest.raises(ValueError, match=r"corrupt\.gz: unreadable gzip"):
        read_idx(corrupt)
    notgz = tmp_path / "plain.gz"
    notgz.write_bytes(b"hello world")
    with pytest.raises(ValueError, match=r"plain\.gz: unreadable gzip"):
        read_idx(notgz)


def test_idx_md5_of_decompressed_content(tmp_path):
    p = write_idx(tmp_path / "a.idx.gz", np.arange(5, dtype=np.uint8))
    content = gzip.decompress(p.read_bytes())
    read_idx(p, md5=hashlib.md5(content).hexdigest())
    with pytest.raises(ValueError, match=r"a\.idx\.gz: MD5"):
        read_idx(p, md5="0" * 32)


def test_write_idx_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.array(1, np.uint8))


# ---------------------------------------------------------------------- MNIST family, local
@pytest.mark.parametrize("cls, sub", [(MNIST, ""), (MNIST, "mnist"), (MNIST, "MNIST/raw"),
                                      (FashionMNIST, "fashion-mnist"), (KMNIST, "kmnist")])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_family_reads_local_files(tmp_path, cls, sub, gz):
    arrays = _write_toy(tmp_path / sub, gz=gz)
    train = cls(tmp_path, train=True)
    test = cls(tmp_path, train=False)
    assert train.data.dtype == np.uint8 and train.data.shape == (12, 28, 28)
    assert train.targets.dtype == np.int64 and len(test) == 5
    np.testing.assert_array_equal(test.data, arrays[FILES[2]])
    img, label = train[3]
    assert img.shape == (1, 28, 28) and img.dtype == np.float32
    assert 0.0 <= img.data.min() and img.data.max() <= 1.0
    np.testing.assert_allclose(img.data[0], arrays[FILES[0]][3] / 255.0, rtol=1e-6)
    assert isinstance(label, int) and label == arrays[FILES[1]][3]
    assert len(cls.classes) == 10


def test_mnist_fast_path_equals_transform_path(tmp_path):
    _write_toy(tmp_path)
    fast = MNIST(tmp_path)
    slow = MNIST(tmp_path, transform=lambda t: t)
    assert fast.supports_batch and not slow.supports_batch
    fl = DataLoader(fast, batch_size=5, shuffle=True, seed=1)
    sl = DataLoader(slow, batch_size=5, shuffle=True, seed=1)
    for (fx, fy), (sx, sy) in zip(fl, sl):
        assert fx.shape == sx.shape and fx.dtype == sx.dtype == np.float32
        assert fy.dtype == sy.dtype == np.int64
        np.testing.assert_array_equal(fx.data, sx.data)
        np.testing.assert_array_equal(fy.data, sy.data)


def test_mnist_transforms_applied(tmp_path):
    _write_toy(tmp_path)
    ds = MNIST(tmp_path, transform=lambda t: t.data.sum(), target_transform=lambda y: -y)
    s, y = ds[0]
    assert isinstance(s, np.floating) and y <= 0


def test_load_arrays_shapes_and_names(tmp_path):
    arrays = _write_toy(tmp_path / "fashion-mnist")
    x_tr, y_tr, x_te, y_te = load_arrays("fashion_mnist", tmp_path)
    assert x_tr.shape == (12, 1, 28, 28) and x_te.shape == (5, 1, 28, 28)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    np.testing.assert_array_equal(y_te, arrays[FILES[3]])
    np.testing.assert_array_equal(x_tr, MNIST(tmp_path / "fashion-mnist").get_batch(
        np.arange(12))[0])
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load_arrays("cifar", tmp_path)


def test_missing_files_name_files_and_directory(tmp_path):
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / (FILES[0] + ".gz"), np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError) as err:
        load_arrays("mnist", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "mnist") in msg and "download=True" in msg
    for base in FILES[1:]:
        assert base + ".gz" in msg
    assert FILES[0] not in msg


def test_mnist_inconsistent_files(tmp_path):
    arrays = _toy_arrays()
    arrays[FILES[1]] = arrays[FILES[1]][:-1]
    _write_toy(tmp_path, arrays=arrays)
    with pytest.raises(ValueError, match=r"12 images.*11 labels"):
        MNIST(tmp_path)
    arrays = _toy_arrays()
    arrays[FILES[1]][4] = 10
    _write_toy(tmp_path, arrays=arrays)
    with pytest.raises(ValueError, match=r"train-labels.*label 10 at index 4"):
        MNIST(tmp_path)
    arrays = _toy_arrays()
    arrays[FILES[0]] = arrays[FILES[0]].reshape(12, 784)
    _write_toy(tmp_path, arrays=arrays)
    with pytest.raises(ValueError, match=r"train-images.*\(N, H, W\)"):
        MNIST(tmp_path)


def test_mnist_verify_rejects_wrong_content(tmp_path):
    _write_toy(tmp_path)
    MNIST(tmp_path, train=False)  # accepted as it is without verify
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: MD5"):
        MNIST(tmp_path, train=False, verify=True)


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPGRAD_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("DEEPGRAD_DATA")
    assert default_data_root() == Path.home() / ".cache" / "deepgrad"


# ---------------------------------------------------------------------- downloader
def _mirror(tmp_path: Path, name: str, corrupt: bool = False) -> tuple[Path, dict]:
    """A directory serving the toy files as .gz; returns it and the good MD5s."""
    folder = tmp_path / name
    _write_toy(folder, gz=True)
    md5 = {base: _md5(folder / (base + ".gz")) for base in FILES}
    if corrupt:
        for base in FILES:
            p = folder / (base + ".gz")
            p.write_bytes(p.read_bytes() + b"junk")
    return folder, md5


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server over tmp_path/www; yields (base URL, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None  # keep pytest output clean
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", www
    finally:
        server.shutdown()
        server.server_close()


def test_download_from_file_url_then_mnist_loads(tmp_path):
    folder, md5 = _mirror(tmp_path, "mirror")
    source = replace(MNIST_SOURCE, mirrors=(folder.as_uri(),), gz_md5=md5, raw_md5={})

    class LocalMNIST(MNIST):
        pass

    LocalMNIST.source = source
    root = tmp_path / "data"
    ds = LocalMNIST(root, train=True, download=True)
    assert len(ds) == 12
    assert sorted(p.name for p in (root / "mnist").iterdir()) == [FILES[0] + ".gz",
                                                                  FILES[1] + ".gz"]
    assert _md5(root / "mnist" / (FILES[0] + ".gz")) == md5[FILES[0]]


def test_download_http_falls_back_after_checksum_mismatch(tmp_path, http_root):
    url, www = http_root
    _, md5 = _mirror(www, "bad", corrupt=True)
    good, md5_good = _mirror(www, "good")
    assert md5 == md5_good
    source = DataSource("toy", "Toy", (url + "missing/", url + "bad", url + "good/"), md5)
    paths = download(source, tmp_path / "data")
    assert [p.name for p in paths] == [b + ".gz" for b in FILES]
    for base, p in zip(FILES, paths):
        assert p.parent == tmp_path / "data" / "toy" and _md5(p) == md5[base]
    assert not list((tmp_path / "data" / "toy").glob(".*part"))


def test_download_checksum_mismatch_only_mirror_fails(tmp_path):
    folder, md5 = _mirror(tmp_path, "mirror", corrupt=True)
    source = DataSource("toy", "Toy", (folder.as_uri() + "/",), md5)
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        download(source, tmp_path / "data", files=[FILES[3]])
    assert list((tmp_path / "data" / "toy").iterdir()) == []  # nothing half-written left


def test_all_mirrors_fail_names_files_and_directory(tmp_path, http_root):
    url, _ = http_root
    source = DataSource("toy", "Toy", (url, (tmp_path / "nowhere").as_uri()),
                        dict.fromkeys(FILES, "0" * 32))

    class ToyMNIST(MNIST):
        pass

    ToyMNIST.source = source
    root = tmp_path / "data"
    with pytest.raises(RuntimeError) as err:
        ToyMNIST(root, train=False, download=True)
    msg = str(err.value)
    assert "Toy" in msg and str(root / "toy") in msg
    assert FILES[2] + ".gz" in msg and FILES[3] + ".gz" in msg and FILES[0] not in msg
    assert "404" in msg and "nowhere" in msg
    assert list((root / "toy").iterdir()) == []


def test_canonical_sources():
    assert MNIST.source.mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert "http://yann.lecun.com/exdb/mnist/" in MNIST.source.mirrors
    assert FashionMNIST.source.mirrors == (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    assert KMNIST.source.mirrors == ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",)
    for cls in (MNIST, FashionMNIST, KMNIST):
        assert set(cls.source.gz_md5) == set(FILES)
        assert all(len(m) == 32 for m in cls.source.gz_md5.values())


# ---------------------------------------------------------------------- real MNIST
MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="real MNIST not on this machine")
def test_real_mnist():
    for base, md5 in MNIST_RAW_MD5.items():
        content = gzip.decompress((REAL_MNIST / (base + ".gz")).read_bytes())
        assert hashlib.md5(content).hexdigest() == md5
    x_tr, y_tr, x_te, y_te = load_arrays("mnist", REAL_MNIST, verify=True)
    assert x_tr.shape == (60000, 1, 28, 28) and x_te.shape == (10000, 1, 28, 28)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert 0.0 == x_tr.min() and x_tr.max() == 1.0
    assert set(np.unique(y_tr)) == set(range(10)) and set(np.unique(y_te)) == set(range(10))
    if REAL_MNIST.name == "mnist":  # also found as root/mnist/
        assert MNIST(REAL_MNIST.parent, train=False).data.shape == (10000, 28, 28)


# ---------------------------------------------------------------------- npz
def _npz(tmp_path, name="d.npz", **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (8, 6, 5), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 3, 0, 1, 2, 3], np.uint8),
        "x_test": rng.integers(0, 256, (3, 6, 5), dtype=np.uint8),
        "y_test": np.array([3, 2, 1], np.int32),
    }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / name
    np.savez(path, **arrays)
    return path, arrays


def test_npz_images(tmp_path):
    path, arrays = _npz(tmp_path)
    x_tr, y_tr, x_te, y_te, k = load_npz(path)
    assert x_tr.shape == (8, 1, 6, 5) and x_te.shape == (3, 1, 6, 5)
    assert x_tr.dtype == np.float32 and y_tr.dtype == y_te.dtype == np.int64
    np.testing.assert_allclose(x_tr[:, 0], arrays["x_train"] / 255.0, rtol=1e-6)
    assert k == 4 and y_te.tolist() == [3, 2, 1]


def test_npz_vectors_floats_and_column_labels(tmp_path):
    x = np.linspace(-3, 3, 20).reshape(10, 2)
    path, _ = _npz(tmp_path, x_train=x, x_test=x[:4],
                   y_train=np.arange(10, dtype=np.float64).reshape(10, 1) % 3,
                   y_test=np.array([[0], [1], [2], [0]], np.int64))
    x_tr, y_tr, x_te, y_te, k = load_npz(path)
    assert x_tr.shape == (10, 2) and x_tr.dtype == np.float32
    np.testing.assert_allclose(x_tr, x.astype(np.float32))  # not rescaled
    assert y_tr.shape == (10,) and k == 3 and y_te.tolist() == [0, 1, 2, 0]


def test_npz_channels_last_moved_to_nchw(tmp_path):
    x = np.zeros((8, 6, 5, 3), np.uint8)
    x[..., 1] = 255
    path, _ = _npz(tmp_path, x_train=x, x_test=x[:3])
    x_tr = load_npz(path)[0]
    assert x_tr.shape == (8, 3, 6, 5) and x_tr[:, 1].min() == 1.0 and x_tr[:, 0].max() == 0.0


@pytest.mark.parametrize("overrides, pattern", [
    ({"y_test": None, "x_test": None}, r"missing key\(s\) x_test, y_test"),
    ({"y_train": np.arange(7)}, r"x_train has 8 samples but y_train has 7"),
    ({"y_train": np.array([0, 1, -2, 3, 0, 1, 2, 3])}, r"negative label -2 at index 2"),
    ({"y_train": np.array([0, 1, 2.5, 3, 0, 1, 2, 3])}, r"non-integer label 2.5"),
    ({"y_train": np.array([0, 1, np.nan, 3, 0, 1, 2, 3])}, r"non-integer label nan"),
    ({"y_test": np.array([3, 9, 1])}, r"y_test has label 9 .*out of range.*0\.\.3"),
    ({"x_train": np.full((8, 4), np.nan)}, r"x_train contains 32 non-finite.*NaN or inf"),
    ({"x_test": np.array([[1.0, np.inf]] * 3), "x_train": np.ones((8, 2))}, r"x_test.*inf"),
    ({"x_test": np.zeros((3, 7, 5), np.uint8)}, r"x_train samples have shape \(1, 6, 5\)"),
    ({"x_train": np.zeros(8)}, r"x_train has shape \(8,\)"),
    ({"y_train": np.zeros((8, 2))}, r"y_train has shape \(8, 2\)"),
    ({"x_train": np.array(["a"] * 8)}, r"x_train has dtype <U1"),
])
def test_npz_errors_name_file_and_problem(tmp_path, overrides, pattern):
    path, _ = _npz(tmp_path, **overrides)
    with pytest.raises(ValueError, match=pattern) as err:
        load_npz(path)
    assert str(path) in str(err.value)


def test_npz_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        load_npz(tmp_path / "nothere.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not an npz file at all")
    with pytest.raises(ValueError, match=r"junk\.npz: not a readable \.npz"):
        load_npz(junk)
    path, _ = _npz(tmp_path)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ValueError, match=r"cut\.npz"):
        load_npz(cut)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match=r"one\.npy: is a single \.npy"):
        load_npz(single)
    with pytest.raises(ValueError, match="is not a file"):
        load_npz(tmp_path)


def test_npz_corrupt_member(tmp_path):
    path, _ = _npz(tmp_path, name="c.npz")
    # Rewrite the archive with a compressed member whose bytes are then damaged.
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "x_test.npy":
                data = data[:-10]  # shorter than its header promises
            dst.writestr(info.filename, data)
    with pytest.raises(ValueError, match=r"bad\.npz: cannot read array 'x_test'"):
        load_npz(bad)
