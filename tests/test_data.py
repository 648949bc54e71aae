"""Tests of optlab.data: loaders against independent readers, splits, lookup order, errors, generators.

Real-data tests are marked ``data`` and skip when ``$OPTLAB_DATA`` is unset or lacks the file (a relative
``OPTLAB_DATA`` is taken relative to the working directory: CI runs from the repository root with
``OPTLAB_DATA=../shared/data``). Every test runs with an empty cache and with the network replaced by a
stub, so nothing is downloaded.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import math
import os
import re
import struct
from collections import Counter
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

import optlab.data as od
from optlab.data import download as dl
from optlab.data.idx import IMAGES_MAGIC, LABELS_MAGIC

LIBSVM_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"

# the data README's table (rows x columns used by the file); svmguide3: see test_svmguide3_width
README_SHAPES = {
    "a9a": (32561, 123), "w8a": (49749, 300), "mushrooms": (8124, 112), "splice": (1000, 60),
    "svmguide3": (1243, 21), "20news_100word": (16242, 100), "heart_scale": (270, 13),
}
N_FEATURES = {"a9a": 123, "w8a": 300, "mushrooms": 112, "splice": 60, "svmguide3": 22, "20news_100word": 100,
              "heart_scale": 13}
MNIST_IMAGES_MD5 = "2646ac647ad5339dbf082846283269ea"   # uncompressed t10k images (data README)
MNIST_T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # published class counts


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty cache, downloads off, and a network stub that fails the test if anything tries to connect."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("OPTLAB_OFFLINE", "1")

    def no_network(url, *a, **k):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(dl, "urlopen", no_network)
    return tmp_path / "xdg-cache" / "optlab"


def real_file(rel: str) -> Path:
    """The file ``rel`` under $OPTLAB_DATA, or skip."""
    value = os.environ.get("OPTLAB_DATA", "")
    if not value.strip():
        pytest.skip("OPTLAB_DATA is not set (real data sets live in the shared data folder)")
    for root in value.split(os.pathsep):
        p = Path(root).expanduser().resolve() / rel
        if p.is_file():
            return p
    pytest.skip(f"{rel} is not under OPTLAB_DATA={value}")


def online(monkeypatch, files: dict[str, bytes], calls: list | None = None):
    """Turn downloads on and serve ``files`` (URL -> bytes) through a fake urlopen."""
    monkeypatch.delenv("OPTLAB_OFFLINE", raising=False)

    class Response(io.BytesIO):
        def __init__(self, data, length):
            super().__init__(data)
            self.headers = {"Content-Length": str(length)}

    def fake_urlopen(url, timeout=None):
        if calls is not None:
            calls.append((url, timeout))
        if url not in files:
            raise URLError(f"test network has no {url}")
        data = files[url]
        return Response(data, len(data))

    monkeypatch.setattr(dl, "urlopen", fake_urlopen)


def svmlight_bytes(X, y) -> bytes:
    buf = io.BytesIO()
    dump_svmlight_file(X, y, buf, zero_based=False)
    return buf.getvalue()


def idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=dt).tobytes()


def same_csr(A, B) -> bool:
    return (A.shape == B.shape and A.dtype == B.dtype and np.array_equal(A.indptr, B.indptr)
            and np.array_equal(A.indices, B.indices) and np.array_equal(A.data, B.data))


# ------------------------------------------------------------------------------------------ registry, input
def test_list_datasets_has_every_documented_name():
    names = od.list_datasets()
    for n in ["a9a", "w8a", "mushrooms", "splice", "svmguide3", "20news_100word", "heart_scale", "real-sim",
              "news20.binary", "rcv1.binary", "covtype.binary", "mnist", "fashion_mnist",
              "metamorphosis", "imdb_sentences", "digits", "breast_cancer", "iris", "wine", "diabetes",
              "synthetic_regression", "synthetic_classification"]:
        assert n in names
    assert len(names) == len(set(names))
    # the official test halves belong to their set: not listed, but loadable by name
    assert "a9a.t" not in names and "w8a.t" not in names
    assert {"a9a.t", "w8a.t"} <= set(od.list_datasets(include_parts=True))
    assert od.get_info("a9a.t").part_of == "a9a"
    for n in od.list_datasets(include_parts=True):
        assert n in od.describe(n)


def test_unknown_name_lists_names_and_suggests():
    with pytest.raises(ValueError) as ei:
        od.load("a9b")
    msg = str(ei.value)
    assert "'a9b'" in msg and "Did you mean 'a9a'" in msg
    assert all(n in msg for n in od.list_datasets())
    with pytest.raises(ValueError, match="Did you mean 'mushrooms'"):
        od.load("mushroom")
    with pytest.raises(ValueError, match="Known data sets"):
        od.path("no-such-set")


def test_aliases_and_spelling_variants():
    assert od.get_info("RCV1").name == "rcv1.binary"
    assert od.get_info("fashion-mnist").name == "fashion_mnist"
    assert od.get_info("Real_Sim").name == "real-sim"
    assert od.get_info("imdb").name == "imdb_sentences"


@pytest.mark.parametrize("split, exc", [("train", ValueError), (1.5, ValueError), (0.0, ValueError),
                                        (True, TypeError), (None, TypeError)])
def test_bad_split(split, exc):
    with pytest.raises(exc, match="split"):
        od.load("iris", split=split)


def test_bad_options():
    with pytest.raises(TypeError, match="flatten"):
        od.load("iris", flatten=False)
    with pytest.raises(TypeError, match="unexpected keyword"):
        od.load("synthetic_regression", m=3)
    with pytest.raises(ValueError, match="no official test"):
        od.load("splice", split="official")


def test_path_of_fileless_sets_is_an_error():
    with pytest.raises(ValueError, match="no data file"):
        od.path("digits")
    assert od.fetch("digits") == []


# -------------------------------------------------------------------------------------------- LIBSVM (real)
@pytest.mark.data
@pytest.mark.parametrize("name", list(README_SHAPES))
def test_libsvm_equals_sklearn_reader(name):
    f = real_file(f"libsvm/{name}")
    ds = od.load(name, split="none")
    assert ds.meta["files"] == [str(f)]
    X_ref, y_ref = load_svmlight_file(str(f), n_features=N_FEATURES[name])
    assert sp.issparse(ds.X) and ds.X.format == "csr" and ds.X.dtype == np.float64
    assert same_csr(ds.X, sp.csr_matrix(X_ref))
    assert (ds.X != X_ref).nnz == 0
    classes = np.unique(y_ref)
    assert len(classes) == 2 and 1 in classes
    np.testing.assert_array_equal(ds.y, np.where(y_ref == 1, 1.0, -1.0))
    assert ds.y.dtype == np.float64 and set(np.unique(ds.y)) == {-1.0, 1.0}
    assert ds.meta["classes"] == [int(c) for c in classes]
    rows, used_cols = README_SHAPES[name]
    assert ds.X.shape[0] == rows
    assert ds.X.indices.max() + 1 == used_cols
    assert ds.X.shape[1] == N_FEATURES[name] == ds.meta["n_features"]
    assert ds.X_test is None and ds.y_test is None


@pytest.mark.data
def test_libsvm_label_counts():
    # counted from the files with shell tools (independent of any Python reader)
    expected = {"heart_scale": 120, "mushrooms": 3916, "splice": 517, "svmguide3": 296, "20news_100word": 8124}
    for name, n_pos in expected.items():
        real_file(f"libsvm/{name}")
        assert int((od.load(name, split="none").y == 1).sum()) == n_pos, name


@pytest.mark.data
def test_svmguide3_width():
    """n_features=22 (the official test file uses index 22); the training file leaves column 22 empty."""
    real_file("libsvm/svmguide3")
    ds = od.load("svmguide3")
    assert ds.X.shape == (1243, 22)
    assert ds.X[:, 21].nnz == 0
    assert ds.X[:, 20].nnz > 0
    narrow = od.load("svmguide3", n_features=21)
    assert narrow.X.shape == (1243, 21)
    assert (narrow.X != ds.X[:, :21]).nnz == 0
    with pytest.raises(ValueError, match="n_features=20"):
        od.load("svmguide3", n_features=20)


@pytest.mark.data
def test_paper_splits_heart_scale_and_mushrooms():
    real_file("libsvm/heart_scale")
    real_file("libsvm/mushrooms")
    for name, n_train, n_test in [("heart_scale", 243, 27), ("mushrooms", 6499, 1625)]:
        full = od.load(name, split="none")
        ds = od.load(name)  # split="paper"
        assert (ds.X.shape[0], ds.X_test.shape[0]) == (n_train, n_test)
        assert (ds.X != full.X[:n_train]).nnz == 0 and (ds.X_test != full.X[n_train:]).nnz == 0
        np.testing.assert_array_equal(np.concatenate([ds.y, ds.y_test]), full.y)
        assert f"first {n_train}" in ds.meta["split"]


@pytest.mark.data
def test_a9a_paper_split_without_test_file():
    f = real_file("libsvm/a9a")
    ds = od.load("a9a")
    if (f.parent / "a9a.t").is_file():
        assert ds.X_test.shape == (16281, 123)
    else:
        assert ds.X_test is None and ds.X.shape == (32561, 123)
        assert "a9a.t not found" in ds.meta["split"]
        with pytest.raises(od.DataNotFoundError, match="a9a.t"):
            od.load("a9a", split="official")


@pytest.mark.data
def test_random_split_is_seeded_and_stratified():
    real_file("libsvm/splice")
    full = od.load("splice", split="none")
    a = od.load("splice", split=0.2, seed=3)
    b = od.load("splice", split=0.2, seed=3)
    c = od.load("splice", split=0.2, seed=4)
    assert (a.X.shape[0], a.X_test.shape[0]) == (800, 200)
    np.testing.assert_array_equal(a.meta["train_index"], b.meta["train_index"])
    assert not np.array_equal(a.meta["test_index"], c.meta["test_index"])
    assert sorted(np.concatenate([a.meta["train_index"], a.meta["test_index"]])) == list(range(1000))
    assert (a.X != full.X[a.meta["train_index"]]).nnz == 0
    np.testing.assert_array_equal(a.y_test, full.y[a.meta["test_index"]])
    pos_rate = (full.y == 1).mean()
    assert abs((a.y_test == 1).mean() - pos_rate) <= 1 / 200 + 1e-12
    assert "random_state=3" in a.meta["split"]


@pytest.mark.data
def test_dense_option():
    real_file("libsvm/heart_scale")
    sparse = od.load("heart_scale")
    dense = od.load("heart_scale", dense=True)
    assert isinstance(dense.X, np.ndarray) and isinstance(dense.X_test, np.ndarray)
    np.testing.assert_array_equal(dense.X, sparse.X.toarray())
    np.testing.assert_array_equal(dense.X_test, sparse.X_test.toarray())


# --------------------------------------------------------------------------------------------- MNIST (real)
@pytest.mark.data
def test_mnist_t10k_only_split():
    real_file("mnist/t10k-images-idx3-ubyte.gz")
    real_file("mnist/t10k-labels-idx1-ubyte.gz")
    ds = od.load("mnist", seed=0)
    if ds.meta["split"].startswith("official"):
        pytest.skip("the full MNIST training files are present; the t10k-only split does not apply")
    assert ds.X.shape == (8000, 784) and ds.X_test.shape == (2000, 784)
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0 and ds.X.max() == 1.0
    counts_train, counts_test = np.bincount(ds.y, minlength=10), np.bincount(ds.y_test, minlength=10)
    np.testing.assert_array_equal(counts_train + counts_test, MNIST_T10K_COUNTS)
    assert np.all(np.abs(counts_test - 0.2 * np.array(MNIST_T10K_COUNTS)) <= 1)  # stratified
    assert "8000 train / 2000 test" in ds.meta["split"] and "t10k" in ds.meta["split"]
    again, other = od.load("mnist", seed=0), od.load("mnist", seed=1)
    np.testing.assert_array_equal(again.meta["test_index"], ds.meta["test_index"])
    assert not np.array_equal(other.meta["test_index"], ds.meta["test_index"])
    square = od.load("mnist", flatten=False)
    assert square.X.shape == (8000, 28, 28)
    np.testing.assert_array_equal(square.X.reshape(8000, -1), ds.X)


@pytest.mark.data
def test_mnist_bytes_reproduce_the_canonical_md5():
    f = real_file("mnist/t10k-images-idx3-ubyte.gz")
    raw = od.read_idx(f, expect_magic=IMAGES_MAGIC)
    assert raw.shape == (10000, 28, 28) and raw.dtype == np.uint8
    header = struct.pack(">IIII", IMAGES_MAGIC, 10000, 28, 28)
    assert hashlib.md5(header + raw.tobytes()).hexdigest() == MNIST_IMAGES_MD5
    ds = od.load("mnist", split="none")
    if ds.X.shape[0] != 10000:
        pytest.skip("full MNIST present: split='none' holds 70,000 images")
    pixels = np.rint(ds.X * 255).astype(np.uint8)
    assert hashlib.md5(header + pixels.tobytes()).hexdigest() == MNIST_IMAGES_MD5
    np.testing.assert_array_equal(np.bincount(ds.y), MNIST_T10K_COUNTS)
    labels = od.read_idx(real_file("mnist/t10k-labels-idx1-ubyte.gz"), expect_magic=LABELS_MAGIC)
    np.testing.assert_array_equal(ds.y, labels)


# ---------------------------------------------------------------------------------------------- text (real)
@pytest.mark.data
def test_metamorphosis():
    f = real_file("text/metamorphosis_excerpt.txt")
    ds = od.load("metamorphosis")
    text = f.read_bytes().decode("utf-8")
    assert ds.X.shape == (118564,) and ds.X.dtype == np.int32 and ds.y is None
    vocab = ds.meta["vocab"]
    assert len(vocab) == 61 and vocab == sorted(vocab) and ds.meta["n_symbols"] == 61
    assert "".join(vocab[i] for i in ds.X) == text
    counts = Counter(text)
    h = -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())
    assert ds.meta["unigram_entropy_bits"] == pytest.approx(h, rel=1e-12)
    assert 3.0 < h < 5.0
    cut = od.load("metamorphosis", split=0.1)
    assert cut.X.shape[0] + cut.X_test.shape[0] == 118564
    np.testing.assert_array_equal(np.concatenate([cut.X, cut.X_test]), ds.X)


@pytest.mark.data
def test_imdb_sentences():
    f = real_file("text/imdb_labelled.txt")
    everything = od.load("imdb_sentences", split="none")
    assert len(everything.X) == 1000 and everything.y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(everything.y), [500, 500])
    lines = f.read_bytes().decode("utf-8").split("\n")
    assert [s for s in everything.X] == [ln.rsplit("\t", 1)[0] for ln in lines if ln]
    assert sum("\x85" in s for s in everything.X) == 2  # NEL inside sentences is not a line break
    ds = od.load("imdb_sentences")  # paper: seeded stratified 80/20
    assert (len(ds.X), len(ds.X_test)) == (800, 200)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [100, 100])
    np.testing.assert_array_equal(ds.X_test, everything.X[ds.meta["test_index"]])


# ------------------------------------------------------------------------------------- scikit-learn bundled
def test_bundled_sets():
    shapes = {"digits": (1797, 64), "breast_cancer": (569, 30), "iris": (150, 4), "wine": (178, 13),
              "diabetes": (442, 10)}
    for name, shape in shapes.items():
        ds = od.load(name)
        assert ds.X.shape == shape and ds.X_test is None, name
    bc = od.load("breast_cancer")
    assert set(np.unique(bc.y)) == {-1.0, 1.0} and int((bc.y == 1).sum()) == 357  # benign
    digits = od.load("digits", split=0.25, seed=0)
    assert digits.X_test.shape[0] == 450 and set(np.unique(digits.y_test)) == set(range(10))
    diab = od.load("diabetes", split=0.2)
    assert diab.y.dtype == np.float64 and diab.X_test.shape[0] == 89


# -------------------------------------------------------------------------------------------------- synthetic
def test_sparse_regression_generator():
    a = od.make_sparse_regression(120, 40, 5, noise=0.1, seed=7)
    b = od.make_sparse_regression(120, 40, 5, noise=0.1, seed=7)
    c = od.make_sparse_regression(120, 40, 5, noise=0.1, seed=8)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    w, support = a.meta["w_true"], a.meta["support"]
    assert a.X.shape == (120, 40) and a.y.shape == (120,) and w.shape == (40,)
    assert len(support) == 5 and np.all(np.diff(support) > 0)
    np.testing.assert_array_equal(np.flatnonzero(w), support)
    assert np.all(np.abs(w[support]) >= 1.0)
    resid = a.y - a.X @ w
    assert 0.05 < resid.std() < 0.2  # the noise level
    f32 = od.make_sparse_regression(50, 10, 3, seed=1, dtype=np.float32)
    assert f32.X.dtype == f32.y.dtype == f32.meta["w_true"].dtype == np.float32
    via_load = od.load("synthetic_regression", n=120, d=40, k=5, noise=0.1, seed=7)
    np.testing.assert_array_equal(via_load.X, a.X)
    with pytest.raises(ValueError, match="k=50"):
        od.make_sparse_regression(10, 20, 50)


def test_sparse_regression_correlation():
    ds = od.make_sparse_regression(20000, 6, 2, correlation=0.6, seed=0)
    C = np.corrcoef(ds.X, rowvar=False)
    assert C[0, 1] == pytest.approx(0.6, abs=0.03) and C[2, 4] == pytest.approx(0.36, abs=0.03)
    assert np.allclose(ds.X.std(axis=0), 1.0, atol=0.03)


def test_sparse_classification_generator():
    a = od.make_sparse_classification(300, 50, 4, seed=2)
    b = od.make_sparse_classification(300, 50, 4, seed=2)
    np.testing.assert_array_equal(a.y, b.y)
    assert set(np.unique(a.y)) == {-1.0, 1.0} and a.y.dtype == np.float64
    assert len(a.meta["support"]) == 4
    agree = np.mean(np.sign(a.X @ a.meta["w_true"]) == a.y)
    assert agree == pytest.approx(1 - a.meta["flip_rate"]) and agree > 0.9
    s = od.make_sparse_classification(200, 1000, 10, density=0.01, seed=0, dtype=np.float32, n_test=50)
    assert sp.issparse(s.X) and s.X.format == "csr" and s.X.dtype == np.float32
    assert s.X.shape == (200, 1000) and s.X_test.shape == (50, 1000)
    assert s.X.nnz + s.X_test.nnz == round(0.01 * 250 * 1000)
    split = od.load("synthetic_classification", n=200, d=30, k=3, split=0.25, seed=1)
    assert split.X_test.shape == (50, 30)
    with pytest.raises(ValueError, match="density"):
        od.make_sparse_classification(10, 10, 2, density=1.5)


# ----------------------------------------------------------------------------- lookup order, cache, network
def test_missing_file_without_network_names_file_url_and_variable(tmp_path, monkeypatch, isolated):
    empty = tmp_path / "empty-data"
    empty.mkdir()
    monkeypatch.setenv("OPTLAB_DATA", str(empty))
    calls: list = []
    online(monkeypatch, {}, calls)  # downloads on, but the network has nothing
    url = LIBSVM_URL + "real-sim.bz2"
    with pytest.raises(od.DataNotFoundError) as ei:
        od.load("real-sim")
    msg = str(ei.value)
    assert isinstance(ei.value, FileNotFoundError)
    assert "real-sim" in msg and url in msg and "OPTLAB_DATA" in msg and str(isolated) in msg
    assert calls and calls[0][0] == url and calls[0][1] <= 10
    assert not any(p.is_file() for p in isolated.rglob("*"))


def test_offline_never_connects(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path))
    # OPTLAB_OFFLINE=1 and the no-network stub come from the autouse fixture
    with pytest.raises(od.DataNotFoundError, match="OPTLAB_OFFLINE"):
        od.load("covtype.binary")
    monkeypatch.delenv("OPTLAB_DATA")
    with pytest.raises(od.DataNotFoundError, match="OPTLAB_DATA is not set"):
        od.load("news20.binary")


def test_files_without_url_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path))
    with pytest.raises(od.DataNotFoundError, match="No canonical URL"):
        od.load("metamorphosis")
    with pytest.raises(od.DataNotFoundError, match="Sentiment Labelled Sentences"):
        od.load("imdb_sentences")


def test_file_in_cache_is_found(monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "nothing-here"))
    rng = np.random.default_rng(0)
    X = sp.random(6, 20958, density=0.001, format="csr", random_state=1)
    X.data = np.round(X.data * 64) / 64 + 1  # exactly representable in the text format
    y = rng.choice([-1.0, 1.0], size=6)
    target = isolated / "libsvm" / "real-sim"
    target.parent.mkdir(parents=True)
    dump_svmlight_file(X, y, str(target), zero_based=False)
    ds = od.load("real-sim", split="none")
    assert ds.meta["files"] == [str(target)] and od.path("real-sim") == target
    assert ds.X.shape == (6, 20958) and (ds.X != X).nnz == 0
    np.testing.assert_array_equal(ds.y, y)
    with pytest.raises(ValueError, match="57847"):  # the paper split refuses a truncated file
        od.load("real-sim")


def test_optlab_data_wins_over_cache_and_flat_layout_and_relative_path(tmp_path, monkeypatch, isolated):
    X = sp.csr_matrix(np.arange(26, dtype=float).reshape(2, 13) / 26)
    (isolated / "libsvm").mkdir(parents=True)
    dump_svmlight_file(X * 2, [1, -1], str(isolated / "libsvm" / "heart_scale"), zero_based=False)
    flat = tmp_path / "flat"
    flat.mkdir()
    dump_svmlight_file(X, [1, -1], str(flat / "heart_scale"), zero_based=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPTLAB_DATA", "flat")  # relative: against the working directory
    ds = od.load("heart_scale", split="none", verify=False)  # made-up content: digest check off
    assert ds.meta["files"] == [str(flat / "heart_scale")]
    np.testing.assert_allclose(ds.X.toarray(), X.toarray())
    monkeypatch.setenv("OPTLAB_DATA", "does-not-exist")
    monkeypatch.setenv("OPTLAB_VERIFY", "0")
    assert od.load("heart_scale", split="none").meta["files"] == [str(isolated / "libsvm" / "heart_scale")]


def _tiny_mnist(root: Path, folder: str, n: int, with_train: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, count in [("t10k", n)] + ([("train", 2 * n)] if with_train else []):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = np.tile(np.arange(10, dtype=np.uint8), count // 10)
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (d / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))  # plain variant accepted
        out[prefix] = (images, labels)
    return out


def test_idx_loader_on_small_files(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path))
    made = _tiny_mnist(tmp_path, "fashion_mnist", 50, with_train=False)
    ds = od.load("fashion_mnist", split="none")
    np.testing.assert_array_equal(ds.X, made["t10k"][0].reshape(50, -1).astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.y, made["t10k"][1])
    paper = od.load("fashion_mnist")
    assert paper.X.shape == (40, 784) and paper.X_test.shape == (10, 784)
    np.testing.assert_array_equal(np.bincount(paper.y_test), np.ones(10))
    made = _tiny_mnist(tmp_path, "fashion_mnist", 50, with_train=True, seed=1)
    official = od.load("fashion_mnist", flatten=False)
    assert official.X.shape == (100, 28, 28) and official.X_test.shape == (50, 28, 28)
    np.testing.assert_array_equal(official.X, made["train"][0].astype(np.float32) / 255)
    assert official.meta["split"].startswith("official")
    assert od.load("fashion_mnist", split="none").X.shape == (150, 784)


def test_mnist_files_are_not_mixed_up_with_fashion(tmp_path, monkeypatch):
    """The two sets share file names, so a flat folder cannot be used for either."""
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path))
    _tiny_mnist(tmp_path, "mnist", 20, with_train=False)
    for p in (tmp_path / "mnist").iterdir():
        p.rename(tmp_path / p.name)
    with pytest.raises(od.DataNotFoundError, match="fashion_mnist/t10k-images"):
        od.load("fashion_mnist")


def test_download_decompresses_into_cache_and_is_reused(monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "none"))
    X = sp.random(5, 20958, density=0.002, format="csr", random_state=0)
    X.data = np.round(X.data * 64) / 64 + 1
    y = np.array([1.0, -1, 1, -1, 1])
    calls: list = []
    online(monkeypatch, {LIBSVM_URL + "real-sim.bz2": bz2.compress(svmlight_bytes(X, y))}, calls)
    ds = od.load("real-sim", split="none", progress=False)
    target = isolated / "libsvm" / "real-sim"
    assert target.is_file() and ds.meta["files"] == [str(target)]
    assert sorted(p.name for p in target.parent.iterdir()) == ["real-sim"]  # no .bz2, no .part left
    assert (ds.X != X).nnz == 0
    np.testing.assert_array_equal(ds.y, y)
    assert calls == [(LIBSVM_URL + "real-sim.bz2", 10.0)]
    online(monkeypatch, {}, calls)
    od.load("real-sim", split="none")
    assert len(calls) == 1  # found in the cache, no second download


def test_fetch_gets_the_official_test_file(monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_VERIFY", "0")  # the served files are made up
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "none"))
    tr = sp.csr_matrix(np.eye(4, 123))
    te = sp.csr_matrix(np.eye(2, 122))  # like a9a.t: the last index is missing
    online(monkeypatch, {LIBSVM_URL + "a9a": svmlight_bytes(tr, [1, -1, 1, -1]),
                         LIBSVM_URL + "a9a.t": svmlight_bytes(te, [-1, 1])})
    paths = od.fetch("a9a", progress=False)
    assert paths == [isolated / "libsvm" / "a9a", isolated / "libsvm" / "a9a.t"]
    ds = od.load("a9a")
    assert ds.X.shape == (4, 123) and ds.X_test.shape == (2, 123)
    np.testing.assert_array_equal(ds.y_test, [-1.0, 1.0])
    assert ds.meta["split"].startswith("official")


def test_fetch_offline_and_partial(monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_VERIFY", "0")  # the served files are made up
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "none"))
    with pytest.raises(od.DataNotFoundError, match="OPTLAB_OFFLINE"):
        od.fetch("w8a")
    online(monkeypatch, {LIBSVM_URL + "w8a": svmlight_bytes(sp.csr_matrix(np.eye(2, 300)), [1, -1])})
    with pytest.warns(UserWarning, match="w8a.t"):
        paths = od.fetch("w8a", progress=False)
    assert paths == [isolated / "libsvm" / "w8a"]
    assert od.load("w8a").X_test is None
    with pytest.raises(od.DataNotFoundError, match="a9a"):  # required file missing online
        od.fetch("a9a")


def test_svmguide3_test_file_only_on_request(monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path))
    monkeypatch.setenv("OPTLAB_VERIFY", "0")  # made-up content
    (tmp_path / "libsvm").mkdir()
    dump_svmlight_file(sp.csr_matrix(np.eye(4, 21)), [1, -1, 1, -1], str(tmp_path / "libsvm" / "svmguide3"),
                       zero_based=False)
    dump_svmlight_file(sp.csr_matrix(np.eye(2, 22)[:, ::-1]), [1, -1], str(tmp_path / "libsvm" / "svmguide3.t"),
                       zero_based=False)
    assert od.load("svmguide3").X_test is None  # the papers use no test split
    official = od.load("svmguide3", split="official")
    assert official.X.shape == (4, 22) and official.X_test.shape == (2, 22)
    assert official.X_test[0, 21] == 1.0  # index 22 in the test file: why n_features is 22


def test_checksum_mismatch_discards_the_download(monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "none"))
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz"
    online(monkeypatch, {url: b"not the real file"})
    with pytest.raises(od.ChecksumError, match="md5") as ei:
        od.load("mnist")
    assert isinstance(ei.value, od.DataNotFoundError)
    assert not any(p.is_file() for p in isolated.rglob("*"))


def test_truncated_download_is_rejected(monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "none"))
    monkeypatch.delenv("OPTLAB_OFFLINE")

    class Short(io.BytesIO):
        headers = {"Content-Length": "1000"}

    monkeypatch.setattr(dl, "urlopen", lambda url, timeout=None: Short(b"-1 1:1\n"))
    with pytest.raises(od.DataNotFoundError, match="truncated"):
        od.load("heart_scale")
    assert not any(p.is_file() for p in isolated.rglob("*"))


# ----------------------------------------------------------------------------------------------- IDX reader
@pytest.mark.parametrize("type_code, arr", [
    (0x08, np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
    (0x0C, np.array([-5, 7, 2**30], dtype=np.int32)),
    (0x0D, np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)),
    (0x0E, np.array([[np.pi, -np.e]])),
])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip(tmp_path, type_code, arr, compress):
    data = idx_bytes(arr, type_code)
    f = tmp_path / "x.idx"
    f.write_bytes(gzip.compress(data) if compress else data)
    out = od.read_idx(f)
    assert out.dtype.isnative and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_read_idx_rejects_bad_files(tmp_path):
    f = tmp_path / "bad"
    f.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(od.IDXFormatError, match="magic number 0x89504E47"):
        od.read_idx(f)
    f.write_bytes(idx_bytes(np.zeros((2, 2, 2), np.uint8))[:-1])
    with pytest.raises(od.IDXFormatError, match="truncated"):
        od.read_idx(f)
    f.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(od.IDXFormatError, match="expected 0x00000803"):
        od.read_idx(f, expect_magic=IMAGES_MAGIC)


# ------------------------------------------------------------------------------------------- hygiene checks
def test_package_source_has_no_pickle_and_no_machine_paths():
    src = Path(od.__file__).parent
    for f in src.glob("*.py"):
        text = f.read_text()
        assert not re.search(r"\bpickle\b|allow_pickle\s*=\s*True|\bjoblib\b", text), f.name
        assert not re.search(r"/work/|/home/|/root/|/Users/", text), f.name


def test_no_pickle_anywhere_in_the_library():
    """Loaders (and the rest of optlab) never unpickle: no pickle/joblib import, no allow_pickle=True."""
    import re
    from pathlib import Path

    import optlab

    offenders = []
    for path in Path(optlab.__file__).parent.rglob("*.py"):
        text = path.read_text()
        if re.search(r"^\s*(import|from)\s+(pickle|cPickle|joblib|dill)\b", text, re.M) or "allow_pickle=True" in text:
            offenders.append(path.name)
    assert not offenders
