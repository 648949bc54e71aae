"""Stand-in data: generated data sets of the same shape as the real ones, for runs where a file is missing.

``optlab reproduce all --quick`` on a machine without the data files and without network access still runs every
experiment, on these stand-ins; every table, figure and CSV of such a run says "stand-in". They exercise the code
paths (shapes, sparsity, label coding, splits) and give curves of the same kind, **not** the papers' numbers. Real
data is always preferred: :func:`load_or_standin` generates a stand-in only when :func:`optlab.data.load` raises
:class:`~optlab.data.DataNotFoundError` (the file is neither under ``$OPTLAB_DATA`` nor in the cache and cannot be
downloaded). A file that is present but invalid is still an error.

Each stand-in is drawn from a fixed seed per data set (:func:`generator_seed`: the same arrays in every process and
on every machine); the ``seed`` argument seeds only the train/test split, as for the real data. What each one is:

* **LIBSVM sets** (a9a, w8a, mushrooms, splice, svmguide3, heart_scale, 20news_100word, real-sim, news20.binary,
  rcv1.binary, covtype.binary and the official test halves): a noisy linear model. X has the registry's shape
  (rows x ``n_features``) and roughly the real sparsity pattern: the mean number of nonzeros per row of the real
  file (:data:`LIBSVM_PROFILES`; Poisson-distributed per row, columns drawn without replacement with a skewed column
  popularity) and its kind of values (0/1 indicators, levels 1..4, values in [-1, 1] or [0, 1], Gaussian values,
  or row-normalised tf-idf-like weights). Labels: ``y = +1`` where ``X w + 0.5 ε`` (``w``, ``ε`` standard normal,
  ``X w`` standardised) exceeds the quantile that gives the real set's fraction of positives, else ``-1``. CSR
  float64, as the loader returns; the paper splits (first k rows, official test file) are mirrored.
* **MNIST / Fashion-MNIST**: 10,000 (``split="official"``: 60,000 + 10,000) 28 x 28 grey images that look like
  blurred pen strokes: per class three prototypes of three random Bézier strokes each, every image a prototype
  shifted by up to 2 pixels with its intensity scaled and a little noise, quantised to k/255 as the IDX files are;
  labels 0..9 balanced. ``split="paper"`` is the loader's t10k-only split (stratified 8,000 / 2,000).
* **metamorphosis**: a character stream of the excerpt's length (118,564 characters) over 61 symbols (letters,
  space, newline, ``. , ! ? ; ' -``): Zipf-distributed words from a random lexicon, capitalised sentences, lines of
  about 70 characters, and a few planted phrases that recur, so a character model has something to learn.
* **imdb_sentences**: 1,000 short sentences (500 labelled 1, 500 labelled 0) of filler words with one or two
  sentiment cue words of their class (and, in 10 % of the sentences, one of the other class).

scikit-learn's bundled sets and the synthetic generators are always available and have no stand-in.
"""
from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .base import DataNotFoundError, Dataset
from .registry import REGISTRY, DatasetInfo, get_info
from .splits import check_split, densify, random_split, split_description, split_sentences

__all__ = ["LIBSVM_PROFILES", "StandinProfile", "make_standin", "load_or_standin", "is_standin", "has_standin",
           "generator_seed", "on_standin"]

#: The word every stand-in carries in its ``meta["data"]`` and that experiments print in their outputs.
STANDIN = "stand-in"


@dataclasses.dataclass(frozen=True)
class StandinProfile:
    """What a LIBSVM stand-in imitates: nonzeros per row, the kind of values, the fraction of positive labels.

    ``values``: ``binary`` (1.0), ``levels`` (integers 1..4), ``scaled`` (uniform in [-1, 1]), ``unit`` (uniform in
    [0, 1]), ``gaussian`` (standard normal) or ``tfidf`` (exponential weights, rows scaled to unit norm).
    ``used_columns``: only the first this many columns carry values (svmguide3's 22nd column is all zero).
    """

    nnz_per_row: float
    values: str
    positive_fraction: float
    used_columns: int | None = None


#: Measured on the shared copies (a9a ... 20news_100word) or taken from the LIBSVM site's statistics (the rest).
LIBSVM_PROFILES: dict[str, StandinProfile] = {
    "a9a": StandinProfile(13.87, "binary", 0.241),
    "w8a": StandinProfile(11.65, "binary", 0.030),
    "mushrooms": StandinProfile(21.0, "binary", 0.482),
    "splice": StandinProfile(60.0, "levels", 0.517),
    "svmguide3": StandinProfile(17.71, "gaussian", 0.238, used_columns=21),
    "heart_scale": StandinProfile(12.51, "scaled", 0.444),
    "20news_100word": StandinProfile(4.03, "binary", 0.500),
    "real-sim": StandinProfile(51.3, "tfidf", 0.307),
    "news20.binary": StandinProfile(455.0, "tfidf", 0.500),
    "rcv1.binary": StandinProfile(74.1, "tfidf", 0.518),
    "covtype.binary": StandinProfile(11.9, "unit", 0.365),
}
#: Rows of the official test files (the stand-in of ``split="official"`` draws them from the same model).
OFFICIAL_TEST_ROWS = {"a9a": 16281, "w8a": 14951, "svmguide3": 41}

N_CHARS = 118_564
N_SENTENCES = 1_000
N_IMAGES_T10K, N_IMAGES_TRAIN = 10_000, 60_000


def generator_seed(name: str) -> int:
    """The fixed seed of a data set's stand-in (CRC-32 of its canonical name): the same data everywhere."""
    return zlib.crc32(get_info(name).name.encode())


def has_standin(name: str) -> bool:
    """True for the data sets with files (LIBSVM, images, text); bundled and synthetic sets need none."""
    info = get_info(name)
    return info.kind in ("libsvm", "idx", "chars", "sentences")


def is_standin(ds: Dataset) -> bool:
    """True when ``ds`` was generated here rather than read from the data set's files."""
    return ds.meta.get("data") == STANDIN


# ------------------------------------------------------------------------------------------- LIBSVM sets
def _row_counts(rng, n: int, d: int, mean: float) -> np.ndarray:
    if mean >= d:
        return np.full(n, d, dtype=np.int64)
    return np.clip(rng.poisson(mean, size=n), 1, d).astype(np.int64)


def _columns(rng, counts: np.ndarray, d: int) -> np.ndarray:
    """Column indices, row after row, ``counts[i]`` distinct ones for row i, with a skewed column popularity."""
    popularity = rng.permutation(1.0 / np.arange(1, d + 1) ** 0.8)
    n = len(counts)
    if n * d <= 4e7:   # exact: per-row sampling without replacement (Gumbel top-k)
        keys = -(np.log(popularity)[None, :] + rng.gumbel(size=(n, d)))
        k_max = int(counts.max())
        top = np.argpartition(keys, k_max - 1, axis=1)[:, :k_max] if k_max < d else np.tile(np.arange(d), (n, 1))
        top = np.take_along_axis(top, np.argsort(np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
        return top[np.arange(k_max)[None, :] < counts[:, None]]
    # very wide sets: with replacement (duplicates are merged by the caller; rare when d is large)
    return rng.choice(d, size=int(counts.sum()), p=popularity / popularity.sum())


def _values(rng, kind: str, size: int) -> np.ndarray:
    if kind == "binary":
        return np.ones(size)
    if kind == "levels":
        return rng.integers(1, 5, size=size).astype(np.float64)
    if kind == "scaled":
        return np.round(rng.uniform(-1.0, 1.0, size=size), 6)
    if kind == "unit":
        return np.round(rng.uniform(0.0, 1.0, size=size), 6)
    if kind in ("gaussian", "tfidf"):
        return rng.standard_normal(size) if kind == "gaussian" else rng.exponential(1.0, size=size)
    raise ValueError(f"unknown value kind {kind!r}")  # pragma: no cover - profiles are fixed above


@functools.lru_cache(maxsize=4)
def _libsvm_model(name: str, n: int, d: int, n_extra: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``n + n_extra`` rows from the set's linear model (the extra rows: the official test file's stand-in).
    Cached: callers slice copies out of it (row slices of a CSR matrix and ``y[...].copy()``)."""
    prof = LIBSVM_PROFILES[name]
    rng = np.random.default_rng(generator_seed(name))
    rows_total = n + n_extra
    used = min(d, prof.used_columns or d)
    counts = _row_counts(rng, rows_total, used, prof.nnz_per_row)
    cols = _columns(rng, counts, used)
    rows = np.repeat(np.arange(rows_total), counts)
    X = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(rows_total, d))
    X.sum_duplicates()
    X.data = _values(rng, prof.values, X.nnz)
    if prof.values == "tfidf":
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        X = sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ X)
    X.sort_indices()
    margin = np.asarray(X @ rng.standard_normal(d)).ravel()
    margin = (margin - margin.mean()) / (margin.std() or 1.0)
    noisy = margin + 0.5 * rng.standard_normal(rows_total)
    threshold = np.quantile(noisy, 1.0 - prof.positive_fraction)
    y = np.where(noisy > threshold, 1.0, -1.0)
    return X, y


def _libsvm(info: DatasetInfo, split, dense: bool, seed: int, n_features: int | None = None) -> Dataset:
    owner = REGISTRY[info.part_of] if info.part_of else info
    d = owner.n_features if n_features is None else int(n_features)
    if d <= 0:
        raise ValueError(f"n_features must be a positive int, got {n_features}")
    n_main = owner.shape[0]
    n_test = OFFICIAL_TEST_ROWS.get(owner.name, 0)
    # always the training rows and the official test rows together, so that the training rows are the same for
    # every split
    X_all, y_all = _libsvm_model(owner.name, n_main, d, n_test)
    if info.part_of:   # a9a.t, w8a.t: the official test half of the owner's model
        X, y = X_all[n_main:], y_all[n_main:].copy()
        test_needed = False
    else:
        test_needed = split == "official"
        if test_needed and not n_test:
            raise ValueError(f"{info.name!r} has no official test file; use split='paper', 'none' or a fraction")
        X, y = X_all[:n_main], y_all[:n_main].copy()
    X_te = y_te = None
    extra: dict = {}
    n = X.shape[0]
    if isinstance(split, float):
        X, y, X_te, y_te, i_tr, i_te = random_split(X, y, split, seed, stratify=True)
        desc = split_description(split, seed, True, X.shape[0], X_te.shape[0]) + f" of the {n} stand-in rows"
        extra = {"train_index": i_tr, "test_index": i_te}
    elif split == "none" or info.part_of:
        desc = f"no split: all {n} stand-in rows as training data"
    elif test_needed:
        X_te, y_te = X_all[n_main:], y_all[n_main:].copy()
        desc = f"official split (stand-in): {n} rows train, {X_te.shape[0]} rows test from the same model"
    elif info.paper_split.startswith("first:"):
        k = int(info.paper_split.split(":", 1)[1])
        X, X_te, y, y_te = X[:k], X[k:], y[:k], y[k:]
        desc = f"paper split: first {k} rows train, last {n - k} rows test (stand-in rows)"
    else:
        desc = f"no test split: all {n} stand-in rows as training data"
    if dense:
        X, X_te = densify(X, info.name), densify(X_te, info.name)
    meta = {"n_features": d, "n_rows": n, "split": desc, "task": info.task, "dense": bool(dense),
            "classes": [-1.0, 1.0], "label_map": {1.0: 1.0, -1.0: -1.0},
            "what": (f"noisy linear model, {LIBSVM_PROFILES[owner.name].nnz_per_row:g} nonzeros per row on average, "
                     f"{LIBSVM_PROFILES[owner.name].values} values, "
                     f"{LIBSVM_PROFILES[owner.name].positive_fraction:.1%} positives"), **extra}
    return Dataset(X, y, X_te, y_te, info.name, meta)


# ------------------------------------------------------------------------------------------------ images
def _stroke_image(rng) -> np.ndarray:
    """Three quadratic Bézier strokes in the central 20 x 20 pixels, blurred, peak 1."""
    from scipy.ndimage import gaussian_filter

    img = np.zeros((28, 28))
    t = np.linspace(0.0, 1.0, 80)[:, None]
    for _ in range(3):
        p0, p1, p2 = rng.uniform(5, 23, size=(3, 2))
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        r, c = np.clip(np.round(pts).astype(int), 0, 27).T
        img[r, c] = 1.0
    img = gaussian_filter(img, 0.9)
    return img / img.max()


@functools.lru_cache(maxsize=2)
def _images(name: str, n: int, seed_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images (n, 28, 28) and balanced labels 0..9 (a fixed permutation); cached, read-only."""
    base = np.random.default_rng(generator_seed(name))
    protos = np.stack([[_stroke_image(base) for _ in range(3)] for _ in range(10)])   # (10, 3, 28, 28)
    rng = np.random.default_rng(generator_seed(name) + seed_offset)
    y = rng.permutation(np.arange(n) % 10)
    variant = rng.integers(0, 3, size=n)
    shift = rng.integers(-2, 3, size=(n, 2))
    images = protos[y, variant] * rng.uniform(0.8, 1.2, size=(n, 1, 1))
    for dr in range(-2, 3):
        for dc in range(-2, 3):
            sel = np.nonzero((shift[:, 0] == dr) & (shift[:, 1] == dc))[0]
            images[sel] = np.roll(images[sel], (dr, dc), axis=(1, 2))
    images += 0.05 * rng.standard_normal(images.shape)
    images[images < 0.1] = 0.0
    images = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    y = y.astype(np.int64)
    images.flags.writeable = y.flags.writeable = False
    return images, y


def _idx(info: DatasetInfo, split, dense: bool, seed: int, flatten: bool = True) -> Dataset:
    if not isinstance(flatten, (bool, np.bool_)):
        raise TypeError(f"flatten must be True or False, got {flatten!r}")
    X_t10k, y_t10k = _images(info.name, N_IMAGES_T10K, 0)
    X_te = y_te = None
    extra: dict = {}
    if split == "official":
        X, y = _images(info.name, N_IMAGES_TRAIN, 1)
        X_te, y_te = X_t10k, y_t10k.copy()
        y = y.copy()
        desc = f"official split (stand-in): {len(y)} training images / {len(y_te)} test images"
    elif split == "none":
        X, y = X_t10k, y_t10k.copy()
        desc = f"no split: the {len(y)} stand-in images as training data"
    else:
        frac = 0.2 if split == "paper" else split
        X, y, X_te, y_te, i_tr, i_te = random_split(X_t10k, y_t10k, frac, seed, stratify=True)
        desc = split_description(frac, seed, True, len(y), len(y_te)) + f" of {N_IMAGES_T10K} stand-in images"
        extra = {"train_index": i_tr, "test_index": i_te}

    def prep(images):
        out = images.astype(np.float32) / np.float32(255.0)
        return out.reshape(out.shape[0], -1) if flatten else out

    meta = {"n_features": 784, "image_shape": (28, 28), "split": desc, "task": info.task,
            "classes": list(range(10)), "scaling": "pixel / 255 as float32",
            "what": "blurred random pen strokes, three prototypes per class, shifted and scaled", **extra}
    return Dataset(prep(X), y, None if X_te is None else prep(X_te), y_te, info.name, meta)


# -------------------------------------------------------------------------------------------------- text
_LETTER_WEIGHTS = dict(zip("etaoinshrdlcumwfgypbvkjxqz", 0.9 ** np.arange(26)))


def _lexicon(rng, size: int) -> list[str]:
    """``size`` distinct pseudo-words; the first 26 start with a, b, ..., z (so every letter occurs)."""
    letters = np.array(list(_LETTER_WEIGHTS))
    p = np.array(list(_LETTER_WEIGHTS.values()))
    p /= p.sum()
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        k = len(words)
        length = int(rng.integers(1, 9))
        body = "".join(rng.choice(letters, size=length, p=p))
        word = (chr(ord("a") + k) + body[1:]) if k < 26 else body
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _char_text(name: str) -> str:
    rng = np.random.default_rng(generator_seed(name))
    lexicon = _lexicon(rng, 400)
    zipf = 1.0 / np.arange(1, len(lexicon) + 1)
    zipf[:26] = zipf[26]   # the alphabet words are as frequent as a mid-frequency word
    zipf /= zipf.sum()
    phrases = [" ".join(rng.choice(lexicon[26:60], size=3)) for _ in range(4)]   # the planted patterns
    parts: list[str] = []
    line = 0
    total = 0
    while total < N_CHARS:
        words = list(rng.choice(lexicon, size=int(rng.integers(4, 18)), p=zipf))
        if rng.random() < 0.25:
            words[:0] = phrases[int(rng.integers(len(phrases)))].split()
        for i in range(len(words) - 1):
            if not words[i]:
                continue
            u = rng.random()
            if u < 0.08:
                words[i] += ","
            elif u < 0.10:
                words[i] += ";"
            elif u < 0.12:
                words[i] = f"{words[i]}-{words[i + 1]}"
                words[i + 1] = ""
            elif u < 0.13:
                words[i] = f"'{words[i]}'"
        words = [w for w in words if w]
        words[0] = words[0][0].upper() + words[0][1:] if words[0][0] != "'" else "'" + words[0][1:].capitalize()
        sentence = " ".join(words) + str(rng.choice([".", ".", ".", ".", "!", "?"]))
        sep = "\n" if line + len(sentence) > 70 else (" " if parts else "")
        line = len(sentence) if sep == "\n" else line + len(sentence) + len(sep)
        parts.append(sep + sentence)
        total += len(sep) + len(sentence)
    return "".join(parts)[:N_CHARS]


def _chars(info: DatasetInfo, split, dense: bool, seed: int) -> Dataset:
    from .text import encode_chars, unigram_entropy_bits

    text = _char_text(info.name)
    X, vocab = encode_chars(text)
    n = len(X)
    X_te = None
    if split == "official":
        raise ValueError(f"{info.name!r} has no official test split; use 'paper', 'none' or a fraction")
    if isinstance(split, float):
        n_tr = n - int(round(split * n))
        X, X_te = X[:n_tr], X[n_tr:]
        desc = f"contiguous split (text order kept): first {n_tr} characters train, last {n - n_tr} test"
    else:
        desc = f"no split: the whole stand-in text ({n} characters) as X"
    meta = {"format": "text", "vocab": vocab, "n_symbols": len(vocab), "n_chars": n, "n_features": len(vocab),
            "unigram_entropy_bits": unigram_entropy_bits(text), "split": desc, "task": info.task,
            "what": "Zipf words from a random lexicon, capitalised sentences, four planted recurring phrases"}
    return Dataset(X, None, X_te, None, info.name, meta)


_POSITIVE = ("great", "good", "loved", "wonderful", "excellent", "brilliant", "enjoyed", "beautiful", "best", "fun")
_NEGATIVE = ("bad", "awful", "boring", "terrible", "worst", "waste", "poor", "dull", "hated", "stupid")


def _sentences(name: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(generator_seed(name))
    filler = _lexicon(rng, 300)
    y = rng.permutation(np.arange(N_SENTENCES) % 2).astype(np.int64)
    out = []
    for label in y:
        words = list(rng.choice(filler, size=int(rng.integers(4, 16))))
        cues = (_POSITIVE, _NEGATIVE) if label == 1 else (_NEGATIVE, _POSITIVE)
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(cues[0])))
        if rng.random() < 0.1:
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(cues[1])))
        out.append(" ".join(words).capitalize() + ".")
    return np.asarray(out, dtype=str), y


def _sentiment(info: DatasetInfo, split, dense: bool, seed: int) -> Dataset:
    X, y, X_te, y_te, desc, extra = split_sentences(info.name, *_sentences(info.name), split, seed,
                                                    what="stand-in sentences")
    meta = {"format": "text", "classes": [0, 1], "split": desc, "task": info.task,
            "what": "filler words with one or two sentiment cue words of the sentence's class", **extra}
    return Dataset(X, y, X_te, y_te, info.name, meta)


# ------------------------------------------------------------------------------------------------ public
_MAKERS: dict[str, Callable[..., Dataset]] = {"libsvm": _libsvm, "idx": _idx, "chars": _chars,
                                              "sentences": _sentiment}
_OPTIONS = {"libsvm": ("n_features",), "idx": ("flatten",), "chars": (), "sentences": ()}


def make_standin(name: str, *, split="paper", dense: bool = False, seed: int = 0, **kwargs) -> Dataset:
    """The stand-in of data set ``name``: same shape, label coding and split as :func:`optlab.data.load` gives.

    Takes the arguments of :func:`optlab.data.load` (``split``, ``dense``, ``seed`` and the set's options such as
    ``flatten`` or ``n_features``; ``verify`` and ``progress`` are accepted and ignored). The arrays come from
    the set's fixed :func:`generator_seed`; ``seed`` seeds only random splits. ``meta["data"]`` is
    ``"stand-in"`` and ``meta["source"]`` says what was generated.

    Raises ValueError for a set without files (scikit-learn's bundled sets, the synthetic generators: they are
    always available) and the errors of :func:`optlab.data.load` for bad arguments.
    """
    info = get_info(name)
    if not has_standin(info.name):
        raise ValueError(f"{info.name!r} needs no stand-in: it is always available ({info.source}); "
                         f"load it with optlab.data.load({info.name!r})")
    split = check_split(split)
    if not isinstance(dense, bool):
        raise TypeError(f"dense must be True or False, got {dense!r}")
    kwargs.pop("verify", None)
    kwargs.pop("progress", None)
    unknown = sorted(set(kwargs) - set(_OPTIONS[info.kind]))
    if unknown:
        raise TypeError(f"make_standin({info.name!r}) got unexpected keyword argument(s) {unknown}; "
                        f"accepted: split, dense, seed{''.join(', ' + o for o in _OPTIONS[info.kind])}")
    ds = _MAKERS[info.kind](info, split, dense, seed, **kwargs)
    ds.meta.update({"data": STANDIN, "seed": seed, "generator_seed": generator_seed(info.name),
                    "description": info.description,
                    "source": f"stand-in generated by optlab.data.standin ({ds.meta['what']}); NOT the real "
                              f"{info.name} data ({info.source})"})
    return ds


_LISTENERS: list[Callable[[str, Exception | None], None]] = []


def on_standin(callback: Callable[[str, Exception | None], None]) -> Callable[[], None]:
    """Call ``callback(name, error)`` whenever :func:`load_or_standin` returns a stand-in (``error``: why the real
    data could not be loaded; None when ``standin="always"`` asked for it); returns a function that removes the
    callback again (the command line uses this to say so once on the console and to list them per experiment)."""
    _LISTENERS.append(callback)
    return lambda: _LISTENERS.remove(callback) if callback in _LISTENERS else None


def load_or_standin(name: str, *, standin: str = "auto", **kwargs) -> Dataset:
    """:func:`optlab.data.load` when the data is available, otherwise :func:`make_standin` with the same arguments.

    ``standin``: ``"auto"`` (real data when found or downloadable, else the stand-in), ``"never"`` (real data
    only: the loader's DataNotFoundError propagates) or ``"always"`` (the stand-in, without looking for files).
    A stand-in made because the data is missing records the reason in ``meta["standin_reason"]``.
    """
    from .api import load

    if standin not in ("auto", "never", "always"):
        raise ValueError(f"standin={standin!r}: use 'auto' (real data if found, else a stand-in), 'never' or "
                         "'always'")
    info = get_info(name)
    if standin == "always" and has_standin(info.name):
        ds = make_standin(info.name, **kwargs)
        ds.meta["standin_reason"] = "stand-in data asked for (standin='always')"
        for callback in list(_LISTENERS):
            callback(info.name, None)
        return ds
    if standin == "never" or not has_standin(info.name):
        return load(info.name, **kwargs)
    try:
        return load(info.name, **kwargs)
    except DataNotFoundError as exc:
        ds = make_standin(info.name, **kwargs)
        ds.meta["standin_reason"] = str(exc).splitlines()[0]
        for callback in list(_LISTENERS):
            callback(info.name, exc)
        return ds
