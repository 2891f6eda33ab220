"""Finding data set files on disk and downloading missing ones from canonical mirrors.

A :class:`DataSource` describes one data set: its mirrors, the MD5 of each ``.gz`` file as the
mirrors serve it (checked after every download), optionally the MD5 of the decompressed files
(checked on request for local files, whose gzip wrapping may legitimately differ), and the
sub-folder names under which the files may sit inside a root directory.

Downloads use only ``urllib``: each file goes to a temporary file in the target directory and
is renamed into place once its checksum matches, so an interrupted download never leaves a
half-written file under the real name. A failing mirror (network error, HTTP error, checksum
mismatch) passes the file on to the next mirror.

The library never reads environment variables; :func:`default_data_root` is the one place that
resolves the default root, for the CLI to call.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataSource:
    """Where a data set's files come from and how to recognise them.

    Attributes:
        name: short name, also the download sub-folder (``root/<name>/``).
        title: name for messages (``"MNIST"``).
        mirrors: base URLs tried in order; a file's URL is ``mirror + file + ".gz"``.
        gz_md5: file base name (without ``.gz``) -> MD5 of the mirrors' ``.gz`` file.
        raw_md5: file base name -> MD5 of the decompressed file, where known.
        subdirs: extra folders under a root that may hold the files (``"mnist"``,
            ``"MNIST/raw"``, ...), searched after the root itself.
    """

    name: str
    title: str
    mirrors: tuple[str, ...]
    gz_md5: Mapping[str, str]
    raw_md5: Mapping[str, str] = field(default_factory=dict)
    subdirs: tuple[str, ...] = ()


def default_data_root() -> Path:
    """Return the default root for data sets: ``$DEEPGRAD_DATA`` or ``~/.cache/deepgrad``.

    NOTE: this is the only place in the library that reads an environment variable, and only
    the CLI calls it; every library function takes its ``root`` explicitly. A data set then
    lives in ``<root>/<name>/`` (e.g. ``~/.cache/deepgrad/mnist``) or directly in ``<root>``.
    """
    env = os.environ.get("DEEPGRAD_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "deepgrad"


def md5_file(path: str | os.PathLike) -> str:
    """Return the MD5 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_file(source: DataSource, root: Path, base: str) -> Path | None:
    """Return the first existing ``base`` or ``base.gz`` in ``root`` or its sub-folders."""
    for folder in (root, root / source.name, *(root / s for s in source.subdirs)):
        for name in (base, base + ".gz"):  # NOTE: raw first: it reads faster
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def _fetch_url(url: str, directory: Path, filename: str, md5: str, timeout: float) -> Path:
    """Download ``url`` to ``directory/filename`` via a temp file; check its MD5.

    Raises:
        OSError, ValueError, http.client.HTTPException: on network or checksum failure.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "deepgrad"})
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != md5:
            raise ValueError(f"checksum mismatch: MD5 {got}, expected {md5}")
        final = directory / filename
        os.replace(tmp, final)
        return final
    finally:
        tmp.unlink(missing_ok=True)


def download(
    source: DataSource,
    root: str | os.PathLike,
    files: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> list[Path]:
    """Download ``files`` of ``source`` into ``root/<source.name>/``, trying each mirror.

    Args:
        source: the data set description.
        root: the data root; files go to its sub-folder ``source.name``.
        files: base names (without ``.gz``) to fetch; default all of ``source.gz_md5``.
        timeout: seconds to wait on each connection.

    Returns:
        The paths of the downloaded ``.gz`` files, in the order of ``files``.

    Raises:
        RuntimeError: if some file could not be fetched from any mirror; the message names
            the missing files, each mirror's error, and the directory to put them in by hand.
    """
    directory = Path(root).expanduser() / source.name
    directory.mkdir(parents=True, exist_ok=True)
    files = list(source.gz_md5) if files is None else list(files)
    done: list[Path] = []
    failed: list[str] = []
    errors: list[str] = []
    for base in files:
        filename = base + ".gz"
        for mirror in source.mirrors:
            url = mirror if mirror.endswith("/") else mirror + "/"
            url += filename
            try:
                done.append(_fetch_url(url, directory, filename, source.gz_md5[base], timeout))
                break
            except (OSError, ValueError, http.client.HTTPException) as exc:
                errors.append(f"  {url}: {exc}")
        else:
            failed.append(filename)
    if failed:
        raise RuntimeError(
            f"{source.title}: could not download {', '.join(failed)} from any mirror:\n"
            + "\n".join(errors)
            + f"\nDownload them by hand and put them in {directory} (as {', '.join(failed)}; "
            "gzip-compressed or not)."
        )
    return done


def locate_files(
    source: DataSource,
    root: str | os.PathLike,
    files: Sequence[str],
    download_missing: bool = False,
    timeout: float = 30.0,
) -> list[Path]:
    """Return the paths of ``files`` under ``root``, downloading the missing ones if asked.

    Each file may be raw or ``.gz`` and may sit in ``root`` itself, in ``root/<name>/`` or in
    one of ``source.subdirs``.

    Args:
        source: the data set description.
        root: the data root.
        files: base names (without ``.gz``).
        download_missing: fetch missing files from the mirrors into ``root/<name>/``.
        timeout: seconds to wait on each connection.

    Returns:
        One path per entry of ``files``.

    Raises:
        FileNotFoundError: if files are missing and ``download_missing`` is False; the message
            names them and the directory to put them in.
        RuntimeError: if a download fails (see :func:`download`).
    """
    root = Path(root).expanduser()
    found = {base: find_file(source, root, base) for base in files}
    missing = [base for base, path in found.items() if path is None]
    if missing and not download_missing:
        names = ", ".join(b + ".gz" for b in missing)
        raise FileNotFoundError(
            f"{source.title}: missing {names} (gzip-compressed or not) in "
            f"{root / source.name} (or directly in {root}); put them there, or pass "
            f"download=True to fetch them from {source.mirrors[0] if source.mirrors else '-'}"
        )
    if missing:
        for base, path in zip(missing, download(source, root, missing, timeout=timeout)):
            found[base] = path
    return [found[base] for base in files]  # type: ignore[misc]
