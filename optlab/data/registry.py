"""The registry: every data set ``optlab.data.load`` knows, where its files live and how it is split.

Each entry records the file(s) relative to a data root (the layout of ``shared/data``:
``libsvm/<file>``, ``mnist/<file>``, ``fashion_mnist/<file>``, ``text/<file>``), the public URL,
the fixed number of features, the label convention and what ``split="paper"`` means.

Decisions (see also each entry's ``notes``):

* ``n_features`` is fixed per LIBSVM set so that the training file and its official test file load
  into the same column space even when one of them does not mention the highest index
  (``a9a.t`` stops at 122 of 123). For ``svmguide3`` the LIBSVM site's training file uses indices
  1..21 but its test file ``svmguide3.t`` uses index 22; we fix 22, the only value that loads every
  file. The training file therefore has an all-zero 22nd column (the data README counts 21 used
  features). Pass ``n_features=21`` to :func:`optlab.data.load` to drop it.
* Binary LIBSVM labels become ±1 floats: the class ``positive_label`` (1 for every set here: ±1, 0/1
  and 1/2 coded files) maps to +1 and the other class to -1. For ``mushrooms`` this agrees with the
  ±1 copy in ``shared/data``, whose rows carry +1 exactly where the LIBSVM site's file has 1.
  The original classes are kept in ``meta["classes"]`` and ``meta["label_map"]``.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

__all__ = ["FileSpec", "DatasetInfo", "REGISTRY", "get_info", "list_names"]

LIBSVM_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# Fashion-MNIST: the authors' repository over https first, their S3 website (http only) as the mirror;
# both are checked against the md5 sums the authors publish.
FASHION_URL = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"
FASHION_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
UCI_SENTIMENT = "https://archive.ics.uci.edu/dataset/331/sentiment+labelled+sentences"


# Content digests (optlab.data.integrity) of the parsed files, computed from the copies in the project's
# shared data folder (same values and labels as the original sites' files; byte checksums differ). Files
# that are not there (the official test files, the online-only LIBSVM sets, MNIST's training files,
# Fashion-MNIST) have none: their downloads are checked against the published byte checksums where one
# exists (MNIST, Fashion-MNIST md5) and fetched over https where the source offers it.
# ``meta["content_sha256"]`` of a loaded Dataset shows the digests of the files it read.
CONTENT_SHA256: dict[str, str] = {
    "libsvm/20news_100word": "fc416c120bd2a5d891c595be3e76e5acc39107da115f07babd42c7f8df6f7465",
    "libsvm/a9a": "22054bd1761e06265b0304f982b7e9aab94788879be6a1ef0604f25874e3a39a",
    "libsvm/heart_scale": "3899b29ffb401caec8cd43e5382d6acd6ab34b1cbdc3a8136016f72fe3670ecf",
    "libsvm/mushrooms": "a87faa2fb24947136ef71c811a42eaf0e74c22fe9dd73e7cd94cccd6070df0e8",
    "libsvm/splice": "9ba5cb64e93111de193cbdc551e0867d2b9501d82b0639e62df0de4d1dc657f4",
    "libsvm/svmguide3": "404ae41ce242d587796018c13ec87f2cc7498465e0343f0b3546d320025052d2",
    "libsvm/w8a": "0331acebbd8c7132e6677801f98d0cd8090e4e81481dd83c0219a304204ac730",
    "mnist/t10k-images-idx3-ubyte.gz": "892593a71e3c123e2d781edb0a5fcac97c561cb6c4b647f43e6cd88348c7c97e",
    "mnist/t10k-labels-idx1-ubyte.gz": "ee12b65da6c20764bae5f3c63182e99fd8aba8cde750b4dd5024ae6ab9df1f6a",
    "text/imdb_labelled.txt": "8026f71a24e7c8fdfe084573fbbf669dd42ab3db5a042e58e46f4fdab2d7ad81",
    "text/metamorphosis_excerpt.txt": "946b41fce4da72a4b850f8b98483c135a18159d9d7daf3b00dfab23561dc6a17",
}


@dataclass(frozen=True)
class FileSpec:
    """One file of a data set.

    ``rel`` is the path relative to a data root and to the cache (``libsvm/a9a``); ``alternates`` are
    other accepted relative names (a compressed or uncompressed variant); ``url`` is the public
    download address (None: no canonical URL, ``hint`` says where to get it); ``compression`` is how
    the downloaded bytes are compressed when the cache keeps them decompressed (``"bz2"``);
    ``md5``/``sha256``/``size`` are checked on the downloaded bytes when known (published byte checksums);
    ``mirrors`` are further URLs of the same bytes, tried in order when ``url`` fails (the byte checksums
    make a plain-http mirror safe); ``content_sha256`` is the content digest of the parsed file
    (:mod:`optlab.data.integrity`), checked at every load unless verification is turned off.
    """

    rel: str
    url: str | None = None
    alternates: tuple[str, ...] = ()
    compression: str | None = None
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    hint: str | None = None
    mirrors: tuple[str, ...] = ()
    content_sha256: str | None = None

    @property
    def basename(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry (documentation and loading recipe of one data set)."""

    name: str
    kind: str                        # libsvm | idx | chars | sentences | sklearn | synthetic
    description: str
    source: str
    task: str                        # binary | multiclass | regression | sequence
    files: tuple[FileSpec, ...] = ()     # required files
    optional: tuple[FileSpec, ...] = ()  # used when present (official test files, MNIST training files)
    n_features: int | None = None
    shape: tuple[int, int] | None = None   # (rows, columns) of the main file, as documented
    positive_label: float | None = None    # binary LIBSVM sets: this original class becomes +1
    paper_split: str = "none"              # none | first:<n> | official | official-or-t10k | stratified:<f>
    split_doc: str = "no test split (X_test is None)"
    options: tuple[str, ...] = ()          # extra keyword arguments accepted by load()
    used_by: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())
    part_of: str | None = None             # the test half of another set (a9a.t of a9a): not listed separately
    size_doc: str = ""                     # size in words when ``shape`` does not say it (images, text)
    origin: str = ""                       # the source in a few words (``optlab data list``)

    @property
    def size_text(self) -> str:
        """``rows x features`` (from ``shape``) or ``size_doc``; empty when unknown."""
        if self.size_doc:
            return self.size_doc
        return f"{self.shape[0]:,} x {self.shape[1]:,}" if self.shape else ""

    @property
    def short_source(self) -> str:
        """The source in a few words: ``origin``, else the download host and protocol, else ``source``."""
        if self.origin:
            return self.origin
        url = next((s.url for s in self.files if s.url), None)
        if url:
            scheme, _, rest = url.partition("://")
            return f"{rest.split('/', 1)[0]} ({scheme})"
        return self.source.split(";")[0]


def _libsvm(name: str, filename: str, *, n_features: int, shape=None, description: str,
            compressed: bool = False, url: bool = True, hint: str | None = None,
            optional: tuple[FileSpec, ...] = (), paper_split="none",
            split_doc="no test split (X_test is None)", used_by="", notes="", aliases=(),
            part_of: str | None = None) -> DatasetInfo:
    rel = f"libsvm/{filename}"
    digest = CONTENT_SHA256.get(rel)
    if compressed:
        spec = FileSpec(rel, LIBSVM_URL + filename + ".bz2", alternates=(rel + ".bz2",), compression="bz2",
                        content_sha256=digest)
    elif url:
        spec = FileSpec(rel, LIBSVM_URL + filename, content_sha256=digest)
    else:
        spec = FileSpec(rel, None, hint=hint, content_sha256=digest)
    return DatasetInfo(
        name=name, kind="libsvm", description=description, task="binary",
        source=(f"LIBSVM binary data sets, {LIBSVM_URL} (file {filename}{'.bz2' if compressed else ''})"
                if url else "svmlight file from the stochastic PDHG authors' experiments"),
        files=(spec,), optional=optional, n_features=n_features, shape=shape, positive_label=1.0,
        paper_split=paper_split, split_doc=split_doc, options=("n_features",), used_by=used_by,
        notes=notes, aliases=aliases, part_of=part_of,
        origin="LIBSVM site (https)" if url else "stochastic PDHG authors' copy (no download URL)")


def _idx_files(folder: str, url: str, md5s: dict[str, str], prefix: str,
               mirror: str | None = None) -> tuple[FileSpec, ...]:
    specs = []
    for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
        specs.append(FileSpec(f"{folder}/{stem}.gz", url + stem + ".gz", alternates=(f"{folder}/{stem}",),
                              md5=md5s[stem], mirrors=(mirror + stem + ".gz",) if mirror else (),
                              content_sha256=CONTENT_SHA256.get(f"{folder}/{stem}.gz")))
    return tuple(specs)


# MD5 of the official gzip files as published (MNIST mirror / Fashion-MNIST repository).
_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
_FASHION_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}

_A9A_T = FileSpec("libsvm/a9a.t", LIBSVM_URL + "a9a.t")
_W8A_T = FileSpec("libsvm/w8a.t", LIBSVM_URL + "w8a.t")
_SVMGUIDE3_T = FileSpec("libsvm/svmguide3.t", LIBSVM_URL + "svmguide3.t")

_OFFICIAL_DOC = ("the official test file {t} as X_test when it is present locally (under $OPTLAB_DATA or in "
                 "the cache; fetch() downloads it), otherwise no test split; split='official' requires it")

_ENTRIES: list[DatasetInfo] = [
    # ---- LIBSVM sets in shared/data --------------------------------------------------------------------
    _libsvm("a9a", "a9a", n_features=123, shape=(32561, 123), optional=(_A9A_T,), paper_split="official",
            description="Adult (census income > 50K), binarised features; LIBSVM training split",
            split_doc=_OFFICIAL_DOC.format(t="a9a.t (16,281 rows)"), used_by="SPDPEG, stochastic PDHG",
            notes="n_features=123 although a9a.t's highest index is 122."),
    _libsvm("w8a", "w8a", n_features=300, shape=(49749, 300), optional=(_W8A_T,), paper_split="official",
            description="w8a web page classification (Platt), training split",
            split_doc=_OFFICIAL_DOC.format(t="w8a.t (14,951 rows)"), used_by="SPDPEG, stochastic PDHG"),
    _libsvm("mushrooms", "mushrooms", n_features=112, shape=(8124, 112), paper_split="first:6499",
            description="UCI Mushroom (edible vs poisonous), one-hot features",
            split_doc="first 6,499 rows train, remaining 1,625 rows test (as in the SVM-ADMM authors' code)",
            used_by="SVM ADMM, SPDPEG, stochastic PDHG",
            notes="The LIBSVM site codes the classes 1/2; the shared copy codes them +1/-1. 1 -> +1, 2 -> -1."),
    _libsvm("splice", "splice", n_features=60, shape=(1000, 60),
            description="splice-junction DNA sequences (nucleotides coded 1..4), LIBSVM training split",
            used_by="SPDPEG, stochastic PDHG"),
    _libsvm("svmguide3", "svmguide3", n_features=22, shape=(1243, 22), optional=(_SVMGUIDE3_T,),
            description="svmguide3 (vehicle data from the LIBSVM practical guide), training split",
            split_doc="no test split (X_test is None); split='official' uses svmguide3.t (41 rows)",
            used_by="SPDPEG, stochastic PDHG",
            notes=("n_features=22: the training file uses indices 1..21 (the README's 21 columns) and the "
                   "official test file svmguide3.t uses 22, so 22 is the only value that loads every file; "
                   "column 22 of the training data is all zero. Pass n_features=21 to drop it.")),
    _libsvm("20news_100word", "20news_100word", n_features=100, shape=(16242, 100),
            description="20 Newsgroups, binary occurrence of 100 words, labels binarised to ±1",
            used_by="stochastic PDHG", url=False,
            hint=("This file is not on the LIBSVM site (the stochastic PDHG authors' svmlight copy of the "
                  "20 Newsgroups 100-word data); copy it from the project's shared data folder."),
            notes="Not a file of the LIBSVM site: there is no download URL.",
            aliases=("20news",)),
    _libsvm("heart_scale", "heart_scale", n_features=13, shape=(270, 13), paper_split="first:243",
            description="Statlog heart disease, features scaled to [-1, 1]",
            split_doc="first 243 rows train, last 27 rows test (as in the SVM-ADMM authors' code)",
            used_by="SVM ADMM"),
    # ---- official test files as sets of their own -------------------------------------------------------
    _libsvm("a9a.t", "a9a.t", n_features=123, shape=(16281, 123), description="a9a official test split",
            used_by="test set of a9a", part_of="a9a"),
    _libsvm("w8a.t", "w8a.t", n_features=300, shape=(14951, 300), description="w8a official test split",
            used_by="test set of w8a", part_of="w8a"),
    # ---- LIBSVM sets that are only online ---------------------------------------------------------------
    _libsvm("real-sim", "real-sim", n_features=20958, shape=(72309, 20958), compressed=True,
            paper_split="first:57847",
            description="real vs simulated (UseNet articles, McCallum), tf-idf features",
            split_doc="first 57,847 rows train, remaining 14,462 rows test (as in the SVM-ADMM authors' code)",
            used_by="SVM ADMM"),
    _libsvm("news20.binary", "news20.binary", n_features=1355191, shape=(19996, 1355191), compressed=True,
            description="20 Newsgroups binary (Keerthi & DeCoste), tf-idf features", used_by="SVM ADMM",
            aliases=("news20",)),
    _libsvm("rcv1.binary", "rcv1_train.binary", n_features=47236, shape=(20242, 47236), compressed=True,
            description="RCV1-v2 (Lewis et al.) binary, the LIBSVM training split (rcv1_train.binary)",
            used_by="SVM ADMM, stochastic PDHG", aliases=("rcv1",)),
    _libsvm("covtype.binary", "covtype.libsvm.binary.scale", n_features=54, shape=(581012, 54),
            compressed=True, description="UCI Covertype, binary (classes 1/2), features scaled to [0, 1]",
            used_by="stochastic PDHG", notes="Classes 1/2 in the file: 1 -> +1, 2 -> -1.",
            aliases=("covtype",)),
    # ---- images -----------------------------------------------------------------------------------------
    DatasetInfo(
        name="mnist", kind="idx", task="multiclass",
        description="MNIST handwritten digits, 28x28 grey images, labels 0..9",
        source=f"LeCun, Cortes, Burges; IDX files from the mirror {MNIST_URL}",
        files=_idx_files("mnist", MNIST_URL, _MNIST_MD5, "t10k"),
        optional=_idx_files("mnist", MNIST_URL, _MNIST_MD5, "train"),
        n_features=784, paper_split="official-or-t10k",
        size_doc="70,000 x 784 (60,000 train + 10,000 t10k)", origin="MNIST mirror on S3 (https, md5)",
        split_doc=("official 60,000/10,000 when the train-* files are present; otherwise the 10,000 t10k "
                   "images split 8,000 train / 2,000 test, stratified by label, seeded by `seed`"),
        options=("flatten",), used_by="iPDLAM, ADMMiRNN",
        notes="X float32 scaled to [0, 1] (pixel/255), shape (n, 784) or (n, 28, 28) with flatten=False; "
              "y int64. The uncompressed t10k image file's md5 is 2646ac647ad5339dbf082846283269ea."),
    DatasetInfo(
        name="fashion_mnist", kind="idx", task="multiclass",
        description="Fashion-MNIST (Zalando), 28x28 grey images of clothing, labels 0..9",
        source=f"Xiao, Rasul, Vollgraf 2017; IDX files from {FASHION_URL}",
        files=_idx_files("fashion_mnist", FASHION_URL, _FASHION_MD5, "t10k", FASHION_MIRROR),
        optional=_idx_files("fashion_mnist", FASHION_URL, _FASHION_MD5, "train", FASHION_MIRROR),
        n_features=784, paper_split="official-or-t10k",
        size_doc="70,000 x 784 (60,000 train + 10,000 t10k)",
        origin="Zalando's GitHub repository (https, md5; http mirror)",
        split_doc="as mnist: official 60,000/10,000, or 8,000/2,000 of t10k when only t10k is present",
        options=("flatten",), used_by="iPDLAM", aliases=("fmnist",)),
    # ---- text -------------------------------------------------------------------------------------------
    DatasetInfo(
        name="metamorphosis", kind="chars", task="sequence",
        description="Kafka, Metamorphosis (English, public domain), excerpt of 118,564 characters, 61 symbols",
        source="Project Gutenberg eBook #5200 (an excerpt prepared for this project)",
        files=(FileSpec("text/metamorphosis_excerpt.txt",
                        content_sha256=CONTENT_SHA256.get("text/metamorphosis_excerpt.txt"),
                        hint=("No canonical URL exists for this excerpt (cut for this project from the "
                              "public-domain Project Gutenberg eBook #5200); copy it from the project's "
                              "shared data folder.")),),
        paper_split="none", size_doc="118,564 characters (61 symbols)",
        origin="Project Gutenberg #5200, excerpt (no download URL)",
        split_doc=("whole text as X (no test split); split=f keeps the text in order: first (1-f) of the "
                   "characters train, last f test"),
        used_by="ADMMiRNN character-level language model",
        notes="X int32 indices into meta['vocab'] (sorted characters); y None; "
              "meta['unigram_entropy_bits'] is the entropy of the character frequencies."),
    DatasetInfo(
        name="imdb_sentences", kind="sentences", task="binary",
        description="Sentiment Labelled Sentences, IMDb part: 1,000 sentences labelled 0 (negative) / 1 (positive)",
        source=f"Kotzias, Denil, de Freitas, Smyth (KDD 2015); UCI Machine Learning Repository, {UCI_SENTIMENT}",
        files=(FileSpec("text/imdb_labelled.txt", content_sha256=CONTENT_SHA256.get("text/imdb_labelled.txt"),
                        hint=(f"Download the UCI 'Sentiment Labelled Sentences' archive ({UCI_SENTIMENT}); "
                              "the file is imdb_labelled.txt inside it (not downloaded automatically).")),),
        paper_split="stratified:0.2", size_doc="1,000 sentences", origin="UCI ML Repository (manual download)",
        split_doc="seeded stratified 80/20 split (800 train / 200 test), seeded by `seed`",
        used_by="ADMMiRNN text classification", aliases=("imdb",),
        notes="Lines end with LF only; sentences may contain U+0085, which is kept as part of the sentence. "
              "X is a NumPy array of str; y int64 in {0, 1}."),
    # ---- scikit-learn's bundled sets -----------------------------------------------------------------------
    DatasetInfo(name="digits", kind="sklearn", task="multiclass", n_features=64, shape=(1797, 64),
                description="8x8 handwritten digits (UCI optdigits test part), pixel counts 0..16",
                origin="scikit-learn (bundled)",
                source="sklearn.datasets.load_digits (bundled with scikit-learn)"),
    DatasetInfo(name="breast_cancer", kind="sklearn", task="binary", n_features=30, shape=(569, 30),
                description="Wisconsin diagnostic breast cancer; y = +1 benign, -1 malignant",
                origin="scikit-learn (bundled)",
                source="sklearn.datasets.load_breast_cancer (bundled with scikit-learn)",
                notes="scikit-learn codes malignant 0, benign 1; 1 -> +1, 0 -> -1."),
    DatasetInfo(name="iris", kind="sklearn", task="multiclass", n_features=4, shape=(150, 4),
                description="Fisher's iris, 3 classes", origin="scikit-learn (bundled)",
                source="sklearn.datasets.load_iris"),
    DatasetInfo(name="wine", kind="sklearn", task="multiclass", n_features=13, shape=(178, 13),
                description="UCI wine recognition, 3 classes", origin="scikit-learn (bundled)",
                source="sklearn.datasets.load_wine"),
    DatasetInfo(name="diabetes", kind="sklearn", task="regression", n_features=10, shape=(442, 10),
                description="diabetes progression (Efron et al. 2004), standardised features, regression",
                origin="scikit-learn (bundled)",
                source="sklearn.datasets.load_diabetes"),
    # ---- synthetic -------------------------------------------------------------------------------------
    DatasetInfo(name="synthetic_regression", kind="synthetic", task="regression",
                description="seeded sparse linear regression y = X w_true + noise (k-sparse w_true)",
                origin="generated (seeded)", size_doc="n x d (options)",
                source="optlab.data.synthetic.make_sparse_regression",
                split_doc="no test split unless n_test > 0 (then n_test extra rows from the same model)",
                options=("n", "d", "k", "noise", "correlation", "dtype", "n_test")),
    DatasetInfo(name="synthetic_classification", kind="synthetic", task="binary",
                description="seeded sparse linear classification y = sign(X w_true + noise), y in {-1, +1}",
                origin="generated (seeded)", size_doc="n x d (options)",
                source="optlab.data.synthetic.make_sparse_classification",
                split_doc="no test split unless n_test > 0 (then n_test extra rows from the same model)",
                options=("n", "d", "k", "noise", "correlation", "density", "dtype", "n_test")),
]

REGISTRY: dict[str, DatasetInfo] = {info.name: info for info in _ENTRIES}


def _key(name: str) -> str:
    return re.sub(r"[-_.\s]", "", name.lower())


_LOOKUP: dict[str, str] = {}
for _info in _ENTRIES:
    for _n in (_info.name, *_info.aliases):
        _k = _key(_n)
        assert _LOOKUP.get(_k, _info.name) == _info.name, f"ambiguous data set name {_n!r}"
        _LOOKUP[_k] = _info.name


def list_names() -> list[str]:
    """The canonical names, in registry order."""
    return list(REGISTRY)


def get_info(name: str) -> DatasetInfo:
    """The registry entry of ``name`` (case, '-', '_' and '.' are ignored; aliases are accepted).

    Raises ValueError naming the known data sets and the closest matches.
    """
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a str, got {type(name).__name__}")
    if name in REGISTRY:
        return REGISTRY[name]
    canonical = _LOOKUP.get(_key(name))
    if canonical is not None:
        return REGISTRY[canonical]
    close = difflib.get_close_matches(name, list(REGISTRY) + [a for i in _ENTRIES for a in i.aliases], n=3,
                                      cutoff=0.5)
    close = list(dict.fromkeys(REGISTRY[_LOOKUP[_key(c)]].name for c in close))
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listed = [n for n, i in REGISTRY.items() if i.part_of is None]
    raise ValueError(f"unknown data set {name!r}.{hint} Known data sets: {', '.join(listed)}.")
