"""The public entry points: ``load``, ``list_datasets``, ``path``, ``local_files``, ``fetch``, ``verify``,
``describe``."""
from __future__ import annotations

import numbers
import warnings
from pathlib import Path

from .base import DataNotFoundError, Dataset
from .download import cache_dir, cache_path, discard_if_invalid, locate, obtain_tracked
from .integrity import verify_enabled
from .registry import REGISTRY, DatasetInfo, FileSpec, get_info, list_names
from .splits import check_split, random_split, split_description

__all__ = ["load", "list_datasets", "path", "local_files", "fetch", "verify", "describe"]

_COMMON_OPTIONS = ("progress",)


def list_datasets(*, include_parts: bool = False) -> list[str]:
    """Names of the data sets, in registry order (LIBSVM, images, text, scikit-learn, synthetic).

    The official test halves (``a9a.t``, ``w8a.t``) are part of their set (``load("a9a", split="official")``)
    and listed only with ``include_parts=True``; :func:`load` accepts them by name either way.
    """
    return [n for n in list_names() if include_parts or REGISTRY[n].part_of is None]


def _check_options(info: DatasetInfo, kwargs: dict) -> None:
    allowed = info.options + _COMMON_OPTIONS
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"load({info.name!r}) got unexpected keyword argument(s) {unknown}; "
                        f"accepted: {', '.join(allowed)}")


def load(name: str, *, split="paper", dense: bool = False, seed: int = 0, verify: bool | None = None,
         **kwargs) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : a name from :func:`list_datasets` (case, '-', '_' and '.' are ignored; aliases such as
        ``"rcv1"``, ``"covtype"``, ``"imdb"``, ``"fashion-mnist"`` work).
    split : ``"paper"`` (default) the split the papers use, documented per set (``describe(name)``):
        heart_scale first 243 / last 27 rows, mushrooms first 6,499 / rest, real-sim first 57,847 / rest,
        a9a/w8a the official ``.t`` test file when present locally, MNIST the official 60k/10k or, with
        only the t10k files, a seeded stratified 8,000/2,000 split, imdb_sentences a seeded stratified
        80/20 split, everything else no test split (``X_test`` is None);
        ``"none"``: everything as training data; ``"official"``: the official test file (downloaded if
        needed); a float ``f`` in (0, 1): a seeded random split with a test fraction ``f`` (stratified on
        the labels for classification; contiguous for the character corpus).
    dense : return dense arrays instead of CSR for the LIBSVM sets (refused above 4 GiB).
    seed : seeds every random split (and the synthetic generators).
    verify : check each file's content digest against the registry (:mod:`optlab.data.integrity`);
        None (default) follows ``$OPTLAB_VERIFY`` (on unless it is 0). NaN/Inf features and labels out of
        range are rejected either way.
    **kwargs : set-specific options: ``n_features`` (LIBSVM: override the fixed width), ``flatten``
        (MNIST: False gives (n, 28, 28)), ``n, d, k, noise, correlation, density, dtype, n_test``
        (synthetic), ``progress`` (download progress bar; default: only on a terminal).

    Raises
    ------
    ValueError : unknown name (with the closest known names) or bad ``split``.
    TypeError : an option the data set does not take.
    DataNotFoundError : a file is neither under ``$OPTLAB_DATA`` nor in the cache and cannot be downloaded.
    InvalidDataError : a file holds NaN/Inf features or labels out of range (a ValueError).
    ContentMismatchError : a file's content differs from the published data set (a ValueError; the
        message gives both digests and the opt-out ``verify=False`` / ``OPTLAB_VERIFY=0``).
    """
    info = get_info(name)
    split = check_split(split)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not isinstance(dense, bool):
        raise TypeError(f"dense must be True or False, got {dense!r}")
    _check_options(info, kwargs)
    check = verify_enabled(verify)
    progress = kwargs.pop("progress", None)
    if info.kind == "libsvm":
        from .libsvm import load_libsvm
        return load_libsvm(info, split, dense, seed, progress=progress, verify=check, **kwargs)
    if info.kind == "idx":
        from .idx import load_idx_images
        return load_idx_images(info, split, dense, seed, progress=progress, verify=check, **kwargs)
    if info.kind == "chars":
        from .text import load_chars
        return load_chars(info, split, dense, seed, progress=progress, verify=check)
    if info.kind == "sentences":
        from .text import load_sentences
        return load_sentences(info, split, dense, seed, progress=progress, verify=check)
    if info.kind == "sklearn":
        from .bundled import load_bundled
        return load_bundled(info, split, dense, seed)
    if info.kind == "synthetic":
        return _load_synthetic(info, split, dense, seed, **kwargs)
    raise AssertionError(f"unhandled kind {info.kind!r}")  # pragma: no cover


def _load_synthetic(info: DatasetInfo, split, dense: bool, seed: int, **kwargs) -> Dataset:
    from dataclasses import replace

    from .splits import densify
    from .synthetic import make_sparse_classification, make_sparse_regression

    make = make_sparse_regression if info.name == "synthetic_regression" else make_sparse_classification
    ds = make(seed=seed, **kwargs)
    if split == "official":
        raise ValueError(f"{info.name!r} has no official test split; use n_test=... or a fraction")
    if isinstance(split, float):
        if ds.X_test is not None:
            raise ValueError("give either n_test or a split fraction, not both")
        strat = info.task != "regression"
        X, y, X_te, y_te, i_tr, i_te = random_split(ds.X, ds.y, split, seed, stratify=strat)
        meta = dict(ds.meta, split=split_description(split, seed, strat, len(y), len(y_te)),
                    train_index=i_tr, test_index=i_te)
        ds = replace(ds, X=X, y=y, X_test=X_te, y_test=y_te, meta=meta)
    if dense:
        ds = replace(ds, X=densify(ds.X, info.name), X_test=densify(ds.X_test, info.name))
    return ds


def _specs(info: DatasetInfo):
    return (*info.files, *info.optional)


def path(name: str) -> Path:
    """Where the data set's file is, or would be after :func:`fetch` (the cache path).

    For a single-file set this is the file; for a multi-file set (MNIST, Fashion-MNIST) the folder that
    holds its files. Sets without files (scikit-learn's bundled sets, synthetic) raise ValueError.
    """
    info = get_info(name)
    if not info.files:
        raise ValueError(f"{info.name!r} has no data file ({info.source})")
    found = [locate(s) for s in info.files]
    if len(info.files) == 1:
        return found[0] or cache_path(info.files[0])
    return found[0].parent if found[0] is not None else cache_path(info.files[0]).parent


def local_files(name: str) -> dict[str, Path | None]:
    """``{relative name: local path or None}`` for every file of the set (required first, then optional).

    Looks under ``$OPTLAB_DATA`` and in the cache only (never downloads). Sets without files give ``{}``.
    """
    info = get_info(name)
    return {spec.rel: locate(spec) for spec in _specs(info)}


def _check_file(info: DatasetInfo, spec: FileSpec, path: Path, check: bool) -> str:
    """Parse one local file of ``info`` with the loader's checks; its content digest."""
    if info.kind == "libsvm":
        from .libsvm import read_libsvm_file
        return read_libsvm_file(info, spec, path, info.n_features, verify=check)[3]
    if info.kind == "idx":
        from .idx import read_checked
        return read_checked(info, spec, path, verify=check)[1]
    from .integrity import check_digest, sentences_digest, text_digest
    from .text import read_labelled_sentences, read_text
    digest = (text_digest(read_text(path)) if info.kind == "chars"
              else sentences_digest(*read_labelled_sentences(path)))
    check_digest(info.name, spec, path, digest, verify=check)
    return digest


def fetch(name: str, *, force: bool = False, progress: bool | None = None,
          verify: bool | None = None) -> list[Path]:
    """Make the data set's files local: download what is missing into the cache and return the paths.

    Files already under ``$OPTLAB_DATA`` or in the cache are not downloaded again (unless ``force``,
    which re-downloads into the cache). Optional files (official test files, MNIST's training files) are
    fetched too; one that cannot be obtained is skipped with a warning. Sets without files return ``[]``.
    Each download is checked against the published byte checksum (where one exists) and, unless
    ``verify`` is False (None: ``$OPTLAB_VERIFY``), parsed and checked like :func:`load` does (finite
    values, labels in range, content digest); a download that fails is deleted and the error raised.
    Raises DataNotFoundError when a required file cannot be obtained.
    """
    info = get_info(name)
    check = verify_enabled(verify)
    paths: list[Path] = []
    for i, spec in enumerate(_specs(info)):
        try:
            path, downloaded = obtain_tracked(info.name, spec, progress=progress, force=force)
        except DataNotFoundError as exc:
            if i < len(info.files):  # a required file
                raise
            warnings.warn(f"optional file {spec.rel!r} of {info.name!r} was not obtained: "
                          f"{str(exc).splitlines()[-2].strip()}", stacklevel=2)
            continue
        if downloaded and check:
            with discard_if_invalid(path, downloaded):
                _check_file(info, spec, path, check)
        paths.append(path)
    return paths


def verify(name: str) -> dict[str, str]:
    """Check every local file of the set (required and optional) as :func:`load` would, with verification on.

    Returns ``{relative name: content digest}`` of the files found (files without a pinned digest are
    parsed and checked for valid values; their digest is reported for the record). Raises
    :class:`DataNotFoundError` when a required file is not local, InvalidDataError or ContentMismatchError
    for a bad file. Never downloads.
    """
    info = get_info(name)
    out: dict[str, str] = {}
    for i, spec in enumerate(_specs(info)):
        path = locate(spec)
        if path is None:
            if i < len(info.files):
                from .download import not_found_error
                raise not_found_error(info.name, spec)
            continue
        out[spec.rel] = _check_file(info, spec, path, True)
    return out


def describe(name: str) -> str:
    """A readable summary of a registry entry: what it is, its source, files, split and notes."""
    info = get_info(name)
    lines = [f"{info.name}: {info.description}", f"  source: {info.source}", f"  task: {info.task}"]
    if info.shape:
        lines.append(f"  shape: {info.shape[0]:,} x {info.shape[1]:,}")
    if info.n_features:
        lines.append(f"  n_features: {info.n_features}")
    lines.append(f"  split='paper': {info.split_doc}")
    for i, spec in enumerate(_specs(info)):
        where = locate(spec)
        tag = "required" if i < len(info.files) else "optional"
        lines.append(f"  file ({tag}): {spec.rel}  [{'found at ' + str(where) if where else 'not found'}]"
                     + (f"  <- {spec.url}" if spec.url else "")
                     + ("  (content digest pinned)" if spec.content_sha256 else ""))
    if info.options:
        lines.append(f"  options: {', '.join(info.options)}")
    if info.used_by:
        lines.append(f"  used by: {info.used_by}")
    if info.notes:
        lines.append(f"  notes: {info.notes}")
    if info.files:
        lines.append(f"  cache: {cache_dir()}")
    return "\n".join(lines)
