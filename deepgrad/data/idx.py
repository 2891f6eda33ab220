"""Reading and writing IDX files, the array format of MNIST and its relatives.

Layout (all big-endian): two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions ``d``, then ``d`` unsigned
32-bit sizes, then the values in row-major order. Files may be gzip-compressed.

Reference: LeCun, Cortes, Burges, "The MNIST database of handwritten digits",
http://yann.lecun.com/exdb/mnist/ (section "File formats").
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

_CODE_TO_DTYPE = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _decompressed_bytes(path: Path) -> bytes:
    """Return the file's bytes, gunzipped when it is gzip data."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, expected an IDX file") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            msg = f"{path}: unreadable gzip data (corrupt or truncated): {exc}"
            raise ValueError(msg) from None
    if path.name.endswith(".gz"):
        raise ValueError(f"{path}: unreadable gzip data: the name ends in .gz but the file does "
                         f"not start with the gzip header (first bytes {raw[:4].hex() or 'none'})")
    return raw


def read_idx(path: str | os.PathLike, md5: str | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array.

    Args:
        path: the file; gzip data is recognised by its header, whatever the name.
        md5: if given, the expected MD5 (hex) of the *decompressed* content.

    Returns:
        A writable array in native byte order with the dtype and shape of the header.

    Raises:
        FileNotFoundError: if the file does not exist (message names the path).
        ValueError: for a bad magic number, a truncated header, data whose size does not match
            the header, unreadable gzip data, or an MD5 mismatch (message names the path).
    """
    path = Path(path)
    raw = _decompressed_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(raw)} bytes, the header alone "
                         "needs at least 4)")
    code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or code not in _CODE_TO_DTYPE or ndim == 0:
        magic = int.from_bytes(raw[:4], "big")
        raise ValueError(f"{path}: bad IDX magic number {magic:#010x}; expected 0x0000TTDD with "
                         "type code TT in 08, 09, 0B, 0C, 0D, 0E and DD >= 1 dimensions "
                         "(is this an IDX file?)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, "
                         f"the file has {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _CODE_TO_DTYPE[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{path}: IDX data size does not match the header ({what}): shape "
                         f"{dims} of {dtype.newbyteorder('=')} needs {expected} bytes, the "
                         f"(decompressed) file has {len(raw)}")
    if md5 is not None:
        got = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        if got != md5.lower():
            raise ValueError(f"{path}: MD5 of the decompressed content is {got}, expected {md5}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # copies: writable and native-endian


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when the name ends in ``.gz``.

    Args:
        path: destination file.
        array: an array of dtype uint8, int8, int16, int32, float32 or float64 with at least
            one dimension.

    Returns:
        The path written.

    Raises:
        ValueError: for an unsupported dtype or a 0-d array.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in _CODE_TO_DTYPE.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX type code; use one of "
                         f"{sorted(str(d) for d in codes)}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got shape {array.shape}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path
