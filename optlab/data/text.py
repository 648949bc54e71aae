"""Text corpora: the *Metamorphosis* character corpus and the IMDb labelled sentences.

Both are checked against the content digest pinned in the registry (:mod:`optlab.data.integrity`): the
decoded text, and the sentences with their labels.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .base import Dataset, InvalidDataError
from .download import discard_if_invalid, obtain_tracked
from .integrity import check_digest, sentences_digest, text_digest
from .registry import DatasetInfo
from .splits import split_sentences

__all__ = ["read_text", "encode_chars", "decode_chars", "unigram_entropy_bits", "read_labelled_sentences",
           "load_chars", "load_sentences"]


def read_text(path: str | Path) -> str:
    """The file as UTF-8 text, line endings untouched (``newline=""``); InvalidDataError if it is not UTF-8."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise InvalidDataError(f"{path} is not UTF-8 text ({exc}); is this the right file?") from exc


def encode_chars(text: str, vocab: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Characters -> int32 indices into ``vocab`` (default: the sorted set of characters of ``text``)."""
    if vocab is None:
        vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    missing = set(text) - index.keys()
    if missing:
        raise ValueError(f"characters {sorted(missing)!r} are not in the vocabulary")
    return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text)), list(vocab)


def decode_chars(indices, vocab: list[str]) -> str:
    """Inverse of :func:`encode_chars`."""
    return "".join(vocab[int(i)] for i in np.asarray(indices).ravel())


def unigram_entropy_bits(text: str) -> float:
    """Entropy of the character frequencies, in bits: ``-sum p log2 p``."""
    counts = np.array(list(Counter(text).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def load_chars(info: DatasetInfo, split, dense: bool, seed: int, *, progress: bool | None = None,
               verify: bool = True) -> Dataset:
    spec = info.files[0]
    path, fresh = obtain_tracked(info.name, spec, progress=progress)
    with discard_if_invalid(path, fresh):
        text = read_text(path)
        digest = text_digest(text)
        check_digest(info.name, spec, path, digest, verify=verify)
    X, vocab = encode_chars(text)
    n = len(X)
    X_te = None
    if isinstance(split, float):
        n_tr = n - int(round(split * n))
        X, X_te = X[:n_tr], X[n_tr:]
        desc = f"contiguous split (text order kept): first {n_tr} characters train, last {n - n_tr} test"
    elif split == "official":
        raise ValueError(f"{info.name!r} has no official test split; use 'paper', 'none' or a fraction")
    else:
        desc = f"no split: the whole text ({n} characters) as X"
    meta = {
        "source": info.source, "description": info.description, "format": "text", "files": [str(path)],
        "vocab": vocab, "n_symbols": len(vocab), "n_chars": n, "n_features": len(vocab),
        "unigram_entropy_bits": unigram_entropy_bits(text), "split": desc, "seed": seed, "task": info.task,
        "content_sha256": {spec.rel: digest}, "verified": [spec.rel] if verify and spec.content_sha256 else [],
    }
    return Dataset(X, None, X_te, None, info.name, meta)


def read_labelled_sentences(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read ``sentence<TAB>label`` lines (label 0 or 1). Only ``\\n`` ends a line.

    Each sentence is the text before the line's last tab, unchanged (trailing spaces included). The IMDb
    file contains U+0085 (NEL; a Windows-1252 ellipsis decoded as Latin-1 upstream) inside two sentences,
    which ``str.splitlines`` would treat as a line break; it is kept as part of the sentence here. A line
    without a tab or with another label is a ValueError naming the line.
    """
    text = read_text(path)
    sentences: list[str] = []
    labels: list[int] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("\t")
        if not sep or label.strip() not in ("0", "1"):
            raise InvalidDataError(f"{path}, line {lineno}: expected 'sentence<TAB>0|1' (label out of range or "
                                   f"no tab), got {line[-40:]!r}")
        sentences.append(sentence)
        labels.append(int(label))
    return sentences, np.asarray(labels, dtype=np.int64)


def load_sentences(info: DatasetInfo, split, dense: bool, seed: int, *, progress: bool | None = None,
                   verify: bool = True) -> Dataset:
    spec = info.files[0]
    path, fresh = obtain_tracked(info.name, spec, progress=progress)
    with discard_if_invalid(path, fresh):
        sentences, y = read_labelled_sentences(path)
        digest = sentences_digest(sentences, y)
        check_digest(info.name, spec, path, digest, verify=verify)
    X, y, X_te, y_te, desc, extra = split_sentences(info.name, np.asarray(sentences, dtype=str), y, split, seed)
    meta = {
        "source": info.source, "description": info.description, "format": "text", "files": [str(path)],
        "classes": [0, 1], "split": desc, "seed": seed, "task": info.task,
        "content_sha256": {spec.rel: digest}, "verified": [spec.rel] if verify and spec.content_sha256 else [],
        **extra,
    }
    return Dataset(X, y, X_te, y_te, info.name, meta)
