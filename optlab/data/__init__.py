"""Data sets for optlab: LIBSVM sets, MNIST / Fashion-MNIST (IDX), two text corpora, scikit-learn's
bundled sets and seeded synthetic problems, behind one function::

    import optlab as ol
    ds = ol.data.load("a9a")                 # Dataset(X, y, X_test, y_test, name, meta)
    ds = ol.data.load("mushrooms")           # the paper split: first 6,499 rows train, rest test
    ds = ol.data.load("mnist", split="none") # everything as training data
    ds = ol.data.load("splice", split=0.2, seed=1)   # seeded stratified 80/20 split
    ds = ol.data.load("synthetic_regression", n=100, d=1000, k=10, noise=0.1, seed=0)
    print(ol.data.describe("svmguide3"))     # source, files, split, notes

Files are looked up under ``$OPTLAB_DATA`` (same layout as the project's shared data folder:
``libsvm/a9a``, ``mnist/t10k-images-idx3-ubyte.gz``, ``text/imdb_labelled.txt``; a flat folder works too),
then in the cache ``$XDG_CACHE_HOME/optlab`` (``~/.cache/optlab``), then downloaded into the cache from the
public URL unless ``OPTLAB_OFFLINE=1``. Otherwise :class:`DataNotFoundError` says where to put the file.
Every file is checked when read: NaN/Inf features and labels out of range are an
:class:`InvalidDataError`, and a content digest of the parsed arrays (:mod:`optlab.data.integrity`) must
match the registry (:class:`ContentMismatchError`; opt out with ``verify=False`` or ``OPTLAB_VERIFY=0``).
Nothing is pickled. Where a file is missing, :func:`load_or_standin` gives generated stand-in data of the same
shape instead (:mod:`optlab.data.standin`; ``meta["data"] == "stand-in"``), as ``optlab reproduce --quick`` does.
"""
from .api import describe, fetch, list_datasets, load, local_files, path, verify
from .base import (ChecksumError, ContentMismatchError, DataNotFoundError, Dataset, IDXFormatError,
                   InvalidDataError)
from .download import cache_dir, data_roots
from .idx import read_idx
from .registry import REGISTRY, DatasetInfo, FileSpec, get_info
from .standin import is_standin, load_or_standin, make_standin
from .synthetic import make_sparse_classification, make_sparse_regression

__all__ = [
    "Dataset", "DataNotFoundError", "ChecksumError", "IDXFormatError", "InvalidDataError", "ContentMismatchError",
    "load", "list_datasets", "path", "local_files", "fetch", "verify", "describe", "get_info",
    "cache_dir", "data_roots", "read_idx",
    "make_sparse_regression", "make_sparse_classification", "make_standin", "load_or_standin", "is_standin",
    "REGISTRY", "DatasetInfo", "FileSpec",
]
