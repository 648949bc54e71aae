"""LIBSVM / svmlight data sets: read with a fixed ``n_features``, labels mapped to ±1, the papers' splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DataNotFoundError, Dataset
from .download import locate, obtain
from .registry import DatasetInfo
from .splits import densify, random_split, split_description

__all__ = ["read_svmlight", "to_pm1", "load_libsvm"]


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


def _num(v):
    f = float(v)
    return int(f) if f.is_integer() else f


def load_libsvm(info: DatasetInfo, split, dense: bool, seed: int, *, n_features: int | None = None,
                progress: bool | None = None) -> Dataset:
    nf = info.n_features if n_features is None else int(n_features)
    if nf <= 0:
        raise ValueError(f"n_features must be positive, got {n_features}")
    main_spec = info.files[0]
    test_spec = info.optional[0] if info.optional else None
    if split == "official" and test_spec is None:
        raise ValueError(f"{info.name!r} has no official test file; use split='paper', 'none' or a fraction")
    was_local = locate(main_spec) is not None
    main_path = obtain(info.name, main_spec, progress=progress)
    test_path = None
    if split == "official" or (split == "paper" and info.paper_split == "official"):
        test_path = locate(test_spec)
        if test_path is None and (split == "official" or not was_local):
            # "official" needs the test file; a set downloaded just now brings its test file along
            try:
                test_path = obtain(info.name, test_spec, progress=progress)
            except DataNotFoundError:
                if split == "official":
                    raise

    X, y_raw = read_svmlight(main_path, nf)
    y, labels = to_pm1(y_raw, info.positive_label, name=info.name)
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
        X_te, y_te_raw = read_svmlight(test_path, nf)
        y_te, labels_te = to_pm1(y_te_raw, info.positive_label, name=info.name + " (test file)")
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
        "dense": bool(dense), **labels, **extra,
    }
    if info.notes:
        meta["notes"] = info.notes
    return Dataset(X, y, X_te, y_te, info.name, meta)
