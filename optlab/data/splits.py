"""Train/test splits shared by the loaders: validation of ``split``, seeded (stratified) random splits."""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

__all__ = ["check_split", "random_split", "split_sentences", "densify"]

NAMED_SPLITS = ("paper", "none", "official")
DENSE_LIMIT_BYTES = 4 * 1024**3


def check_split(split) -> str | float:
    """``"paper"``, ``"none"``, ``"official"`` or a test fraction in (0, 1); anything else: ValueError."""
    if isinstance(split, str):
        if split not in NAMED_SPLITS:
            raise ValueError(f"split={split!r} is not understood: use 'paper' (the papers' split), 'none' "
                             "(everything as training data), 'official' (official test file) or a test "
                             "fraction such as 0.2")
        return split
    if isinstance(split, numbers.Real) and not isinstance(split, bool):
        f = float(split)
        if 0.0 < f < 1.0:
            return f
        raise ValueError(f"split={split!r}: a test fraction must lie strictly between 0 and 1")
    raise TypeError(f"split must be a str or a float test fraction, got {type(split).__name__}")


def random_split(X, y, test_size: float, seed: int, *, stratify: bool):
    """Seeded random split (scikit-learn's ``train_test_split``), stratified on ``y`` when asked.

    Returns ``X_train, y_train, X_test, y_test, train_index, test_index`` (indices into the input rows).
    """
    from sklearn.model_selection import train_test_split

    n = X.shape[0] if hasattr(X, "shape") else len(X)
    idx = np.arange(n)
    strat = y if (stratify and y is not None) else None
    idx_tr, idx_te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=strat)
    y_tr = None if y is None else y[idx_tr]
    y_te = None if y is None else y[idx_te]
    return X[idx_tr], y_tr, X[idx_te], y_te, idx_tr, idx_te


def split_description(test_size: float, seed: int, stratify: bool, n_train: int, n_test: int) -> str:
    kind = "stratified " if stratify else ""
    return (f"seeded {kind}random split (sklearn train_test_split, test_size={test_size}, random_state={seed}): "
            f"{n_train} train / {n_test} test")


def split_sentences(name: str, X, y, split, seed: int, what: str = "sentences"):
    """Split labelled sentences (no official test split): ``"none"`` keeps all as training data, ``"paper"`` is a
    stratified 80/20 split, a fraction is that test share. Returns ``(X, y, X_te, y_te, description, extra_meta)``."""
    if split == "official":
        raise ValueError(f"{name!r} has no official test split; use 'paper', 'none' or a fraction")
    if split == "none":
        return X, y, None, None, f"no split: all {len(y)} {what} as training data", {}
    frac = 0.2 if split == "paper" else split
    X, y, X_te, y_te, i_tr, i_te = random_split(X, y, frac, seed, stratify=True)
    return X, y, X_te, y_te, split_description(frac, seed, True, len(y), len(y_te)), \
        {"train_index": i_tr, "test_index": i_te}


def densify(X, name: str):
    """``X.toarray()`` for sparse input, refusing (ValueError) when the dense array would exceed 4 GiB."""
    if X is None or not sp.issparse(X):
        return X
    nbytes = X.shape[0] * X.shape[1] * X.dtype.itemsize
    if nbytes > DENSE_LIMIT_BYTES:
        raise ValueError(f"dense=True for {name!r} would need {nbytes / 1024**3:.1f} GiB "
                         f"({X.shape[0]} x {X.shape[1]}); keep it sparse (dense=False)")
    return X.toarray()
