"""scikit-learn's bundled data sets (no download): digits, breast_cancer, iris, wine, diabetes."""
from __future__ import annotations

import numpy as np

from .base import Dataset
from .registry import DatasetInfo
from .splits import random_split, split_description

__all__ = ["load_bundled"]

_LOADERS = {
    "digits": "load_digits", "breast_cancer": "load_breast_cancer", "iris": "load_iris", "wine": "load_wine",
    "diabetes": "load_diabetes",
}


def load_bundled(info: DatasetInfo, split, dense: bool, seed: int) -> Dataset:
    import sklearn
    from sklearn import datasets

    bunch = getattr(datasets, _LOADERS[info.name])()
    X = np.asarray(bunch.data, dtype=np.float64)
    target = np.asarray(bunch.target)
    meta: dict = {"source": info.source + f" (scikit-learn {sklearn.__version__})", "description": info.description,
                  "n_features": X.shape[1], "seed": seed, "task": info.task,
                  "feature_names": [str(f) for f in getattr(bunch, "feature_names", [])]}
    if info.task == "binary":  # breast_cancer: 0 malignant, 1 benign
        y = np.where(target == 1, 1.0, -1.0)
        names = [str(t) for t in bunch.target_names]
        meta.update(classes=[0, 1], label_map={1: 1.0, 0: -1.0}, target_names=names)
    elif info.task == "multiclass":
        y = target.astype(np.int64)
        meta.update(classes=np.unique(y).tolist(), target_names=[str(t) for t in bunch.target_names])
    else:
        y = target.astype(np.float64)
    X_te = y_te = None
    if split == "official":
        raise ValueError(f"{info.name!r} has no official test split; use 'paper', 'none' or a fraction")
    if isinstance(split, float):
        strat = info.task != "regression"
        X, y, X_te, y_te, i_tr, i_te = random_split(X, y, split, seed, stratify=strat)
        meta.update(split=split_description(split, seed, strat, len(y), len(y_te)), train_index=i_tr,
                    test_index=i_te)
    else:
        meta["split"] = f"no split: all {len(y)} rows as training data"
    return Dataset(X, y, X_te, y_te, info.name, meta)
