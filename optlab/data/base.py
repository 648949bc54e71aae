"""The :class:`Dataset` container and the data package's exceptions."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Dataset", "DataNotFoundError", "ChecksumError", "InvalidDataError", "IDXFormatError",
           "ContentMismatchError"]


class DataNotFoundError(FileNotFoundError):
    """A data file is neither under ``$OPTLAB_DATA`` nor in the cache, and could not be downloaded.

    The message names the missing file, where it was looked for, the download URL (if one is known)
    and what to do: put the file under ``$OPTLAB_DATA`` or into the cache directory.
    """


class ChecksumError(DataNotFoundError):
    """A downloaded file does not have the expected size or checksum (it was discarded)."""


class InvalidDataError(ValueError):
    """A data file holds values that are not valid data: NaN/Inf features, labels out of range, a wrong shape.

    The message names the file, what is wrong and the fix.
    """


class IDXFormatError(InvalidDataError):
    """A file is not a well-formed IDX file (bad magic number, truncated data, wrong kind of file)."""


class ContentMismatchError(ValueError):
    """A data file parses, but its content digest differs from the one pinned in the registry.

    The message names the file, the expected and the actual digest, and the opt-out (``verify=False`` or
    ``OPTLAB_VERIFY=0``). See :mod:`optlab.data.integrity`.
    """


def _shape(a: Any) -> str:
    if a is None:
        return "None"
    shape = getattr(a, "shape", None)
    if shape is None:
        return f"len {len(a)}"
    kind = "sparse " if hasattr(a, "nnz") else ""
    dtype = getattr(a, "dtype", "")
    return f"{kind}{tuple(shape)} {dtype}".strip()


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set: training data, optional test data, name and provenance.

    Attributes
    ----------
    X : ndarray or scipy.sparse.csr_matrix
        Training inputs, one row per sample (LIBSVM sets: CSR float64 unless ``dense=True``;
        images: float32 in [0, 1]; text: an array of ``str`` or of int32 symbol indices).
    y : ndarray or None
        Training targets (binary sets: float64 in {-1, +1}; multiclass: int64; regression: float).
    X_test, y_test : same kinds as ``X``, ``y``, or None when the split has no test part.
    name : str
        The canonical registry name.
    meta : dict
        Provenance: ``source``, ``n_features``, ``split`` (a sentence saying exactly how the split was
        made), ``seed``, ``files`` (where the data was read from), label ``classes`` and ``label_map``
        for binarised sets, and set-specific entries (``vocab``, ``w_true``, ...).

    Equality is identity (``eq=False``): comparing arrays element-wise is left to the caller.
    """

    X: Any
    y: np.ndarray | None
    X_test: Any = None
    y_test: np.ndarray | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        """Number of training samples."""
        return int(self.X.shape[0]) if hasattr(self.X, "shape") else len(self.X)

    @property
    def n_test(self) -> int:
        """Number of test samples (0 when there is no test split)."""
        if self.X_test is None:
            return 0
        return int(self.X_test.shape[0]) if hasattr(self.X_test, "shape") else len(self.X_test)

    @property
    def n_features(self) -> int | None:
        """Number of columns of ``X`` (``meta['n_features']`` for sequence/text data)."""
        if "n_features" in self.meta:
            return self.meta["n_features"]
        shape = getattr(self.X, "shape", None)
        return int(shape[1]) if shape is not None and len(shape) >= 2 else None

    @property
    def has_test(self) -> bool:
        return self.X_test is not None

    def __repr__(self) -> str:
        split = self.meta.get("split", "")
        return (f"Dataset(name={self.name!r}, X={_shape(self.X)}, y={_shape(self.y)}, "
                f"X_test={_shape(self.X_test)}, y_test={_shape(self.y_test)}, split={split!r})")
