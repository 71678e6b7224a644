"""Keras' own dataset files: where they are (Keras' cache, a download, or `data.path`) and reading them safely.

Keras hosts each dataset as one file (`imdb.npz`, `mnist.npz`, ...) or, for Fashion-MNIST, four IDX
files, and caches them under `$KERAS_HOME/datasets/` (default `~/.keras/datasets/`). `keras.utils.get_file`
checks the SHA-256 Keras publishes and replaces a cached file that does not match, so a copy you made
yourself goes in `data.path`, not in the cache.

Pickle safety: IMDB and Reuters store ragged sequences as object arrays, which NumPy can only read
with `allow_pickle=True`, and unpickling a crafted file runs arbitrary code. `load_npz` allows pickle
only for a file whose SHA-256 equals the one Keras publishes for it, or when the config says
`trusted: true`; any other file is read with pickle disabled.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dlrun import errors

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"  # where Keras downloads from
IDX_LABELS_MAGIC = 2049  # IDX header of a 1-D unsigned-byte array (labels)
IDX_IMAGES_MAGIC = 2051  # IDX header of a 3-D unsigned-byte array (images)


@dataclasses.dataclass(frozen=True)
class KerasFile:
    """One file Keras hosts: its name in the cache and the hash Keras publishes for it."""

    name: str  # file name, e.g. "imdb.npz"
    file_hash: str | None = None  # the hash Keras publishes (SHA-256; MD5 for the word indices); None: none
    cache_subdir: str = "datasets"  # folder under Keras' home (Fashion-MNIST: datasets/fashion-mnist)

    @property
    def origin(self) -> str:
        return ORIGIN + self.name

    def cache_path(self) -> Path:
        """Where Keras keeps (or would download) this file."""
        return Path(cache_dir()) / self.cache_subdir / self.name


def cache_dir() -> str:
    """Keras' home (`$KERAS_HOME` or `~/.keras`), or `/tmp/.keras` where that is not writable, as get_file does."""
    home = os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))
    if os.path.isdir(home) and not os.access(home, os.W_OK):
        return os.path.join(tempfile.gettempdir(), ".keras")
    return home


def locate(files: list[KerasFile], local_path: str | None, hint: str | None = None) -> list[Path]:
    """The paths of `files`: from `local_path` (the file itself or a folder holding them), else Keras' cache.

    A file missing from the cache is downloaded with `keras.utils.get_file` (which checks Keras'
    hash). Without network, the DataError says which file to put where.
    """
    if local_path is not None:
        path = Path(local_path).expanduser()
        if len(files) > 1 and not path.is_dir():
            names = ", ".join(file.name for file in files)
            raise errors.DataError(f"data.path: received {path}, which is not a folder; expected a folder holding {names}")
        return [_local(file, path) for file in files]
    return [_cached_or_downloaded(file, _path_hint(files, hint)) for file in files]


def _path_hint(files: list[KerasFile], hint: str | None) -> str:
    if hint is not None:
        return hint
    return f"/path/to/{files[0].name}" if len(files) == 1 else "/path/to/folder"


def _local(file: KerasFile, path: Path) -> Path:
    if path.is_dir():
        candidate = path / file.name
        if not candidate.is_file():
            raise errors.DataError(f"data.path: received the folder {path}, which has no {file.name}; expected Keras' {file.name} in it")
        return candidate
    if not path.exists():
        raise errors.DataError(
            f"data.path: received {path}, which does not exist; expected a copy of Keras' {file.name} (or a folder holding it)"
        )
    return path


def _cached_or_downloaded(file: KerasFile, path_hint: str) -> Path:
    from dlrun import backend

    keras = backend.import_keras()
    try:
        downloaded = keras.utils.get_file(
            fname=file.name, origin=file.origin, file_hash=file.file_hash, cache_subdir=file.cache_subdir, cache_dir=cache_dir()
        )
    except Exception as error:  # get_file raises bare Exceptions for network failures
        published = f" (hash {file.file_hash})" if file.file_hash else ""
        raise errors.DataError(
            f"data.path: received nothing, and Keras' {file.name} is not in its cache and could not be downloaded "
            f"from {file.origin} ({error}); expected Keras' own {file.name}{published} at {file.cache_path()}, "
            f"or a copy anywhere with `--set data.path={path_hint}` (offline machines need one of the two)"
        ) from None
    return Path(downloaded)


def sha256(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_npz(path: Path, file: KerasFile, trusted: bool, keys: tuple[str, ...], convert: Any = None) -> dict:
    """The arrays `keys` of the .npz at `path`; pickle only for Keras' own file or a trusted one.

    `convert(key, array)`, when given, is applied to each array as it is read, so a large object array
    can be turned into something compact before the next one is unpickled.
    """
    if not zipfile.is_zipfile(path):
        raise errors.DataError(
            f"data.path: received {path}, which is not a readable .npz file (not a zip archive); expected Keras' {file.name}"
        )
    digest = sha256(path)
    allow_pickle = trusted or digest == file.file_hash
    try:
        with np.load(path, allow_pickle=allow_pickle) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise errors.DataError(
                    f"data.path: received {path}, which holds the arrays {', '.join(archive.files) or 'none'}; "
                    f"expected Keras' {file.name} with the arrays {', '.join(keys)}"
                )
            return {key: (convert(key, archive[key]) if convert else archive[key]) for key in keys}
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise errors.DataError(f"data.path: received {path}, which cannot be read ({error}); expected Keras' {file.name}") from None
        raise errors.DataError(
            f"data.path: received {path} (SHA-256 {digest}), which holds pickled object arrays; expected Keras' own "
            f"{file.name} (SHA-256 {file.file_hash}), or `trusted: true` in the data section (`--set data.trusted=true`) "
            f"if you trust this file: unpickling a file from an unknown source can run arbitrary code, so dlrun "
            f"reads pickle only from Keras' published file or a file you say you trust"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise errors.DataError(
            f"data.path: received {path}, which is not a readable .npz file ({error}); expected Keras' {file.name}"
        ) from None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes (the MNIST format), checking its magic number and shape."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise errors.DataError(f"data.path: {path} is not a readable gzip file ({error}); expected a gzipped IDX file") from None
    rank = magic - 2048  # the low byte of the magic number is the number of dimensions
    header = 4 + 4 * rank
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise errors.DataError(
            f"data.path: {path} starts with the magic number {found}; expected {magic} "
            f"(an IDX file of {'labels' if rank == 1 else 'images'})"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(rank))
    values = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if values.size != int(np.prod(shape)):
        raise errors.DataError(f"data.path: {path} declares shape {shape} but holds {values.size} values; expected a complete IDX file")
    return values.reshape(shape)
