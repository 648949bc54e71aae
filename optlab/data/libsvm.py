"""LIBSVM / svmlight data sets: read with a fixed ``n_features``, labels mapped to ±1, the papers' splits.

Every file is checked when it is read (:func:`read_libsvm_file`): finite feature values, labels that are a
binary LIBSVM coding (the set's positive class and one of -1, 0, 2 for the negative class), and the
content digest pinned in the registry (:mod:`optlab.data.integrity`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DataNotFoundError, Dataset, InvalidDataError
from .download import discard_if_invalid, locate, obtain_tracked
from .integrity import check_digest, check_finite, svmlight_digest
from .registry import DatasetInfo, FileSpec
from .splits import densify, random_split, split_description

__all__ = ["read_svmlight", "to_pm1", "check_binary_labels", "read_libsvm_file", "load_libsvm",
           "NEGATIVE_CODES"]

#: Codings of the negative class in binary LIBSVM files (±1, 0/1, 1/2): anything else is out of range.
NEGATIVE_CODES = (-1.0, 0.0, 2.0)


def read_svmlight(path: str | Path, n_features: int):
    """Read an svmlight/LIBSVM file (plain, ``.gz`` or ``.bz2``) into ``(CSR float64, labels float64)``.

    Indices are one-based (the LIBSVM convention) and ``n_features`` is fixed, so that files which do not
    mention the highest feature index still get the full width. A file with a larger index raises
    ValueError naming the file.
    """
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(str(path), n_features=n_features, dtype=np.float64, zero_based=False)
    except ValueError as exc:
        raise ValueError(f"cannot read {path} as svmlight with n_features={n_features}: {exc}") from exc
    return X, y


def to_pm1(y: np.ndarray, positive_label: float = 1.0, *, name: str = "") -> tuple[np.ndarray, dict]:
    """Map binary labels to float64 ±1: ``positive_label`` -> +1, the other class -> -1.

    Returns the mapped labels and ``{"classes": [...], "label_map": {orig: ±1}}``. More than two classes,
    or two classes of which none is ``positive_label``, raise ValueError.
    """
    classes = np.unique(y)
    if classes.size > 2:
        raise ValueError(f"{name or 'labels'}: expected a binary problem, found {classes.size} classes "
                         f"{classes[:10].tolist()}")
    others = [c for c in classes.tolist() if c != positive_label]
    if len(others) == len(classes) and classes.size == 2:
        raise ValueError(f"{name or 'labels'}: classes {classes.tolist()} do not contain the positive "
                         f"label {positive_label}")
    y_pm = np.where(y == positive_label, 1.0, -1.0)
    label_map = {_num(positive_label): 1.0}
    label_map.update({_num(c): -1.0 for c in others})
    return y_pm, {"classes": [_num(c) for c in classes.tolist()], "label_map": label_map}


def check_binary_labels(y: np.ndarray, positive_label: float, *, name: str, path) -> None:
    """InvalidDataError (naming the file, the row and the fix) for labels that are not a binary LIBSVM coding.

    Allowed: ``positive_label`` and one of :data:`NEGATIVE_CODES`; NaN/Inf labels are never allowed.
    """
    allowed = {float(positive_label), *NEGATIVE_CODES}
    finite = np.isfinite(y)
    bad = ~finite | ~np.isin(y, list(allowed))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidDataError(
            f"data set {name!r}: {path} has {int(bad.sum())} label(s) out of range (first: {y[row]!r} in data row "
            f"{row + 1}); a binary LIBSVM file labels its classes {_num(positive_label)} and one of "
            f"{[_num(c) for c in NEGATIVE_CODES]}.\n"
            f"  fix: replace the file with the original (delete it, then optlab.data.fetch({name!r}) "
            "downloads it where it has a URL), or correct the labels.")
    present = np.unique(y)
    if present.size > 2:
        raise InvalidDataError(
            f"data set {name!r}: {path} has {present.size} classes {[_num(c) for c in present]}, expected a binary "
            f"problem ({_num(positive_label)} and one of {[_num(c) for c in NEGATIVE_CODES]}).\n"
            f"  fix: replace the file with the original (delete it, then optlab.data.fetch({name!r}) downloads it).")


def read_libsvm_file(info: DatasetInfo, spec: FileSpec, path: Path, n_features: int, *,
                     verify: bool) -> tuple:
    """Read one svmlight file of ``info`` and check it: ``(X, y_pm1, labels_meta, content_digest)``.

    Raises InvalidDataError for NaN/Inf features or labels out of range, ContentMismatchError when the
    content differs from the digest pinned for ``spec`` (and ``verify``), ValueError for unreadable files.
    """
    X, y_raw = read_svmlight(path, n_features)
    check_finite(X.data, name=info.name, path=path)
    check_binary_labels(y_raw, info.positive_label, name=info.name, path=path)
    y, labels = to_pm1(y_raw, info.positive_label, name=info.name)
    digest = svmlight_digest(X, y)
    check_digest(info.name, spec, path, digest, verify=verify)
    return X, y, labels, digest


def _num(v):
    f = float(v)
    return int(f) if f.is_integer() else f


def load_libsvm(info: DatasetInfo, split, dense: bool, seed: int, *, n_features: int | None = None,
                progress: bool | None = None, verify: bool = True) -> Dataset:
    if n_features is not None and (isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer))):
        raise TypeError(f"n_features must be a positive int, got {n_features!r}")
    nf = info.n_features if n_features is None else int(n_features)
    if nf <= 0:
        raise ValueError(f"n_features must be a positive int, got {n_features}")
    main_spec = info.files[0]
    test_spec = info.optional[0] if info.optional else None
    if split == "official" and test_spec is None:
        raise ValueError(f"{info.name!r} has no official test file; use split='paper', 'none' or a fraction")
    main_path, main_fresh = obtain_tracked(info.name, main_spec, progress=progress)
    with discard_if_invalid(main_path, main_fresh):
        X, y, labels, digest = read_libsvm_file(info, main_spec, main_path, nf, verify=verify)
    digests = {main_spec.rel: digest}
    test_path, test_fresh = None, False
    if split == "official" or (split == "paper" and info.paper_split == "official"):
        test_path = locate(test_spec)
        if test_path is None and (split == "official" or main_fresh):
            # "official" needs the test file; a set downloaded just now brings its test file along
            try:
                test_path, test_fresh = obtain_tracked(info.name, test_spec, progress=progress)
            except DataNotFoundError:
                if split == "official":
                    raise

    files = [str(main_path)]
    X_te = y_te = None
    extra: dict = {}
    n = X.shape[0]

    if isinstance(split, float):
        X, y, X_te, y_te, i_tr, i_te = random_split(X, y, split, seed, stratify=True)
        desc = (split_description(split, seed, True, X.shape[0], X_te.shape[0])
                + f" of the {n} rows of {main_spec.basename}")
        extra = {"train_index": i_tr, "test_index": i_te}
    elif split == "none":
        desc = f"no split: all {n} rows of {main_spec.basename} as training data"
    elif test_path is not None:  # "official", or "paper" for a9a/w8a with the test file present
        with discard_if_invalid(test_path, test_fresh):
            X_te, y_te, labels_te, digests[test_spec.rel] = read_libsvm_file(info, test_spec, test_path, nf,
                                                                             verify=verify)
        labels["classes"] = sorted(set(labels["classes"]) | set(labels_te["classes"]))
        labels["label_map"].update(labels_te["label_map"])
        files.append(str(test_path))
        desc = (f"official split: {main_spec.basename} ({n} rows) train, "
                f"{test_spec.basename} ({X_te.shape[0]} rows) test")
    elif info.paper_split.startswith("first:"):
        k = int(info.paper_split.split(":", 1)[1])
        if n <= k:
            raise ValueError(f"{info.name!r}: the file {main_path} has {n} rows; the paper split takes the first "
                             f"{k} for training and needs more (truncated file?). Use split='none'.")
        X, X_te, y, y_te = X[:k], X[k:], y[:k], y[k:]
        desc = f"paper split: first {k} rows train, last {n - k} rows test (in file order)"
    elif info.paper_split == "official":
        desc = (f"no test split: {test_spec.basename} not found under $OPTLAB_DATA or in the cache "
                f"(optlab.data.fetch({info.name!r}) downloads it); all {n} rows as training data")
    else:
        desc = f"no test split (the papers use none): all {n} rows as training data"

    X, X_te = densify(X, info.name) if dense else X, densify(X_te, info.name) if dense else X_te
    meta = {
        "source": info.source, "description": info.description, "format": "svmlight", "files": files,
        "n_features": nf, "n_rows": n, "split": desc, "seed": seed, "task": info.task,
        "dense": bool(dense), "content_sha256": digests,
        "verified": [f.rel for f in (main_spec, test_spec) if f is not None and f.rel in digests
                     and verify and f.content_sha256], **labels, **extra,
    }
    if info.notes:
        meta["notes"] = info.notes
    return Dataset(X, y, X_te, y_te, info.name, meta)
