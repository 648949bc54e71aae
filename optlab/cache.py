"""On-disk cache of computed arrays: one ``.npz`` file per input, named by a content hash (never pickle).

- :func:`content_key` -- a SHA-256 digest of named arrays (dense or SciPy sparse, compared in float64 by value and
  shape) and of JSON-serialisable parameters; equal inputs give equal keys on every machine.
- :func:`entry_path` -- where an entry lives: ``<folder>/<kind>_<key>.npz``, the folder defaulting to
  ``optlab.data.cache_dir()/<kind>``.
- :func:`load` / :func:`save` -- read an entry (``allow_pickle=False``) / write one atomically (a temporary file
  renamed into place, so a reader never sees a half-written file and two writers of the same key cannot corrupt it).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["content_key", "entry_path", "load", "save"]


def content_key(arrays: dict, params: dict) -> str:
    """Hex SHA-256 of ``arrays`` (name -> dense or SciPy sparse matrix) and ``params`` (JSON-serialisable).

    Sparse matrices are hashed in canonical CSR form (duplicates summed, column indices sorted), so a COO or CSC
    copy of the same matrix has the same key, and so does a dense array only if it is passed dense again (the
    kind is part of the key: the conversion to dense would cost more than the computation being cached).
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        if sp.issparse(a):
            a = sp.csr_matrix(a, dtype=np.float64, copy=True)
            a.sum_duplicates()
            parts = [b"csr", np.asarray(a.shape, np.int64), a.indptr.astype(np.int64), a.indices.astype(np.int64),
                     a.data]
        else:
            a = np.asarray(a, dtype=np.float64)
            parts = [b"dense", np.asarray(a.shape, np.int64), a]
        h.update(name.encode())
        for p in parts:
            h.update(p if isinstance(p, bytes) else np.ascontiguousarray(p).tobytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()


def entry_path(kind: str, key: str, folder: str | os.PathLike | None = None) -> Path:
    """``<folder>/<kind>_<first 24 hex digits of key>.npz``; ``folder=None`` is ``optlab.data.cache_dir()/<kind>``."""
    if folder is None:
        from .data import cache_dir

        folder = cache_dir() / kind
    return Path(folder) / f"{kind}_{key[:24]}.npz"


def load(path: Path) -> dict | None:
    """The arrays of a cache entry, or None when it does not exist or cannot be read (then it is recomputed)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: np.array(f[k]) for k in f.files}
    except (OSError, ValueError, EOFError):
        return None


def save(path: Path, **arrays) -> Path:
    """Write ``arrays`` to ``path`` (``.npz``, no pickle) atomically; creates the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
