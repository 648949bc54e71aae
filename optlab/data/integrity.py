"""Content digests: verify a data file by what it *contains*, not by its bytes.

A file can be re-formatted without changing its data (``3:1`` vs ``3:1.0``, gzip level, a value written as
``-9.48438e-03`` or ``-0.009484380000000001``), so byte checksums of a copy cannot check a download of the
original and vice versa. The content digest is a SHA-256 of the *parsed* arrays in a canonical form:

* svmlight / LIBSVM: the CSR matrix with duplicates summed, explicit zeros dropped and indices sorted
  (``indptr``, ``indices`` as int64 little-endian), the values rounded to :data:`SIGNIFICANT_DIGITS`
  significant decimal digits (stored as a pair ``(exponent, mantissa)`` of int64, exact), and the labels
  after the registry's ±1 mapping as float64 little-endian (so a file that codes the classes 1/2 and its
  copy coded ±1 agree);
* IDX: the declared shape (int64) and the data in the declared type, little-endian (compression ignored);
* a character corpus: the UTF-8 bytes of the decoded text;
* labelled sentences: each sentence's UTF-8 bytes (length-prefixed) and the labels as float64.

Every digest starts with a domain tag (``optlab-content-v1`` and the kind), so two kinds never collide.

Why rounding: a value can be printed in many ways, and a writer that does not print the shortest
round-trip form can move it by an ulp (``%.15g`` of a 17-digit double, float32 printing of float64 data).
The shared copies print up to 17 digits (``0.8301596999999999``, the double of the original's
``0.8301597``); twelve significant digits make the digest independent of such printing, while any change a
person or a corruption makes (a changed digit in the first twelve, a flipped label, an added, removed or
moved entry, a removed or reordered row) changes it. Changes below a relative 5e-13 are not seen.

Verification is on by default; ``verify=False`` (in :func:`optlab.data.load` / :func:`~optlab.data.fetch`)
or ``OPTLAB_VERIFY=0`` turns it off (the digest is still computed and shown in ``meta["content_sha256"]``).
Measured on the shared copies (2 shared cores, load average 3.4): the digest costs 29 ms for a9a against
117 ms for parsing it, 35 ms against 168 ms for w8a, 8 ms against 33 ms for the MNIST t10k images, so
files are verified at every load instead of keeping a verification cache that could go stale.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .base import ContentMismatchError, InvalidDataError

__all__ = ["SIGNIFICANT_DIGITS", "verify_enabled", "svmlight_digest", "idx_digest", "text_digest",
           "sentences_digest", "check_digest", "check_finite", "round_significant"]

SIGNIFICANT_DIGITS = 12
_TAG = b"optlab-content-v1\0"
_POW10_OFFSET = 200
# 10**k, correctly rounded (Python's float parsing), so the table is the same on every platform
_POW10 = np.array([float(f"1e{k}") for k in range(-_POW10_OFFSET, _POW10_OFFSET + 1)], dtype=np.float64)


def verify_enabled(verify: bool | None = None) -> bool:
    """``verify`` when given (a bool), else ``$OPTLAB_VERIFY`` (0/false/no/off disable), default True."""
    if verify is not None:
        if not isinstance(verify, (bool, np.bool_)):
            raise TypeError(f"verify must be True, False or None (use $OPTLAB_VERIFY), got {verify!r}")
        return bool(verify)
    value = os.environ.get("OPTLAB_VERIFY", "").strip().lower()
    if value in {"0", "false", "no", "off"}:
        return False
    if value in {"", "1", "true", "yes", "on"}:
        return True
    raise ValueError(f"OPTLAB_VERIFY={value!r} is not understood: set it to 0 (do not verify data files) or 1")


def round_significant(values, digits: int = SIGNIFICANT_DIGITS) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer form of ``values`` rounded to ``digits`` significant decimal digits.

    Returns ``(exponent, mantissa)`` (int64 arrays) with ``value ≈ mantissa · 10**(exponent - digits + 1)``,
    ``10**(digits-1) <= |mantissa| < 10**digits`` for nonzero values and ``(0, 0)`` for zero. Values must
    be finite. The scaling is one or two float64 multiplications by correctly rounded powers of ten, then
    round-half-even: deterministic on every IEEE-754 platform; for a value within an ulp of a rounding
    midpoint (``9.999999999995``) it may round the other way than exact decimal arithmetic would.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    nonzero = v != 0
    every = bool(nonzero.all())
    x = v if every else v[nonzero]
    if x.size == 0:
        return np.zeros(v.shape, np.int64), np.zeros(v.shape, np.int64)
    e = np.floor(np.log10(np.abs(x))).astype(np.int64)
    m = _scaled(x, e, digits)
    lo, hi = 10.0 ** (digits - 1), 10.0 ** digits
    for _ in range(3):  # log10 may be off by one next to a power of ten; rounding may carry to 10**digits
        am = np.abs(m)
        big, small = am >= hi, am < lo
        fix = np.flatnonzero(big | small)
        if fix.size == 0:
            break
        e[fix] += big[fix].astype(np.int64) - small[fix].astype(np.int64)
        m[fix] = _scaled(x[fix], e[fix], digits)
    if every:
        return e, m.astype(np.int64)
    exp = np.zeros(v.shape, dtype=np.int64)
    man = np.zeros(v.shape, dtype=np.int64)
    exp[nonzero] = e
    man[nonzero] = m.astype(np.int64)
    return exp, man


def _scaled(x: np.ndarray, e: np.ndarray, digits: int) -> np.ndarray:
    """``rint(x · 10**(digits - 1 - e))`` with the power split in two table look-ups (no overflow)."""
    k = (digits - 1) - e
    k1 = k >> 1
    m = x * _POW10[k1 + _POW10_OFFSET]
    m *= _POW10[(k - k1) + _POW10_OFFSET]
    return np.rint(m, out=m)


def _le(a: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


def svmlight_digest(X, y) -> str:
    """Content digest of an svmlight file parsed to CSR ``X`` and ±1-mapped labels ``y`` (see module doc).

    The number of columns is not part of it (``n_features`` is a reading option, not file content).
    """
    X = sp.csr_matrix(X, copy=True)
    X.sum_duplicates()       # also sorts the indices
    X.eliminate_zeros()
    exp, man = round_significant(X.data)
    h = hashlib.sha256(_TAG + b"svmlight\0")
    h.update(_le(np.array([X.shape[0], SIGNIFICANT_DIGITS]), "i8"))
    for part, dtype in ((X.indptr, "i8"), (X.indices, "i8"), (exp, "i8"), (man, "i8"), (y, "f8")):
        h.update(_le(np.asarray(part), dtype))
    return h.hexdigest()


def idx_digest(arr: np.ndarray) -> str:
    """Content digest of an IDX array: shape and data in its own type, little-endian."""
    arr = np.asarray(arr)
    h = hashlib.sha256(_TAG + b"idx\0" + arr.dtype.newbyteorder("<").str.encode() + b"\0")
    h.update(_le(np.array(arr.shape), "i8"))
    h.update(_le(arr, arr.dtype.newbyteorder("<").str))
    return h.hexdigest()


def text_digest(text: str) -> str:
    """Content digest of a decoded text corpus."""
    return hashlib.sha256(_TAG + b"text\0" + text.encode("utf-8")).hexdigest()


def sentences_digest(sentences, labels) -> str:
    """Content digest of labelled sentences (each sentence length-prefixed; labels float64)."""
    h = hashlib.sha256(_TAG + b"sentences\0")
    h.update(_le(np.array([len(sentences)]), "i8"))
    for s in sentences:
        b = s.encode("utf-8")
        h.update(_le(np.array([len(b)]), "i8") + b)
    h.update(_le(np.asarray(labels), "f8"))
    return h.hexdigest()


def check_finite(values: np.ndarray, *, name: str, path: str | Path, what: str = "feature") -> None:
    """InvalidDataError naming the file and the first offending position when ``values`` has NaN or Inf."""
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        raise InvalidDataError(
            f"data set {name!r}: {path} has {int(bad.sum())} non-finite {what} value(s) "
            f"(first: {values.ravel()[first]!r} at flat position {first}); NaN/Inf are not valid data.\n"
            f"  fix: replace the file with the original (delete it, then optlab.data.fetch({name!r}) "
            "downloads it where it has a URL), or clean the values before loading it yourself.")


def check_digest(name: str, spec, path: str | Path, actual: str, *, verify: bool) -> None:
    """ContentMismatchError when ``verify`` and the digest pinned in ``spec`` differs from ``actual``.

    ``spec`` is the file's :class:`~optlab.data.FileSpec`; files without a pinned digest pass.
    """
    expected = spec.content_sha256
    if not verify or expected is None or actual == expected:
        return
    origin = f"the original from {spec.url}" if spec.url else f"the original (see optlab.data.describe({name!r}))"
    raise ContentMismatchError(
        f"data set {name!r}: the content of {path} does not match the registry ({spec.rel}): content SHA-256 "
        f"expected {expected}, actual {actual}; a value or label differs from the published data set "
        "(a changed, truncated or different file).\n"
        f"  fix: replace {path} with {origin}, or, if you changed it on purpose, load it with verify=False "
        "(or set OPTLAB_VERIFY=0).")
