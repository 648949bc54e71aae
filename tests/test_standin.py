"""Stand-in data (issue 17): same shape, dtype and label coding as the real sets, deterministic, and only used when the
real data is missing. Shapes are checked against the registry's documented sizes; the sparsity against the real
files where ``$OPTLAB_DATA`` has them (marked ``data``)."""
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import optlab.data as data
import optlab.data.download as dl
from optlab.data import standin

REAL_DATA = os.environ.get("OPTLAB_DATA", "")   # read before the fixture below empties it


@pytest.fixture(autouse=True)
def no_data(tmp_path, monkeypatch):
    """No data anywhere: an empty $OPTLAB_DATA and cache, downloads off (a connection attempt fails the test)."""
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("OPTLAB_OFFLINE", "1")

    def no_network(url, *a, **k):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(dl, "urlopen", no_network)
    return tmp_path / "empty"


@pytest.mark.parametrize("name", ["a9a", "w8a", "mushrooms", "splice", "svmguide3", "heart_scale", "20news_100word"])
def test_libsvm_standin_has_the_documented_shape_and_labels(name):
    info = data.get_info(name)
    ds = data.make_standin(name, split="none")
    assert sp.isspmatrix_csr(ds.X) and ds.X.dtype == np.float64
    assert ds.X.shape == (info.shape[0], info.n_features) == info.shape
    assert ds.y.dtype == np.float64 and set(np.unique(ds.y)) == {-1.0, 1.0}
    prof = standin.LIBSVM_PROFILES[name]
    assert np.mean(np.diff(ds.X.indptr)) == pytest.approx(prof.nnz_per_row, rel=0.12)
    assert np.mean(ds.y > 0) == pytest.approx(prof.positive_fraction, abs=0.01)
    assert ds.meta["data"] == "stand-in" and data.is_standin(ds) and "stand-in" in ds.meta["source"]
    assert np.all(np.isfinite(ds.X.data))


def test_libsvm_value_kinds_and_unused_column():
    assert set(np.unique(data.make_standin("splice").X.data)) == {1.0, 2.0, 3.0, 4.0}
    assert set(np.unique(data.make_standin("a9a").X.data)) == {1.0}
    hs = data.make_standin("heart_scale", split="none").X.data
    assert hs.min() >= -1.0 and hs.max() <= 1.0
    sg = data.make_standin("svmguide3", split="none").X
    assert sg.shape[1] == 22 and sg[:, 21].nnz == 0          # column 22 is all zero, as in the real file


def test_paper_and_official_splits_mirror_the_loader():
    mush = data.make_standin("mushrooms")                      # paper: first 6,499 rows train
    assert mush.X.shape == (6499, 112) and mush.X_test.shape == (1625, 112)
    hs = data.make_standin("heart_scale")
    assert hs.X.shape[0] == 243 and hs.X_test.shape[0] == 27
    a9a = data.make_standin("a9a")                             # paper: no test file locally -> no test split
    assert a9a.X.shape == (32561, 123) and a9a.X_test is None
    off = data.make_standin("a9a", split="official")
    assert off.X_test.shape == (16281, 123) and (off.X != a9a.X).nnz == 0
    part = data.make_standin("a9a.t")
    assert part.X.shape == (16281, 123) and (part.X != off.X_test).nnz == 0
    sp_ = data.make_standin("splice", split=0.2, seed=3)
    assert sp_.X.shape == (800, 60) and sp_.X_test.shape == (200, 60)
    assert np.mean(sp_.y > 0) == pytest.approx(np.mean(sp_.y_test > 0), abs=0.01)   # stratified
    dense = data.make_standin("heart_scale", dense=True)
    assert isinstance(dense.X, np.ndarray) and np.array_equal(dense.X, hs.X.toarray())
    assert data.make_standin("svmguide3", n_features=21, split="none").X.shape == (1243, 21)


def test_mnist_standin():
    ds = data.make_standin("mnist", flatten=False)
    assert ds.X.shape == (8000, 28, 28) and ds.X_test.shape == (2000, 28, 28)
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.X.min() >= 0.0 and ds.X.max() <= 1.0
    assert np.allclose(ds.X * 255, np.round(ds.X * 255), atol=1e-3)      # k/255, as the IDX bytes give
    assert np.array_equal(np.bincount(ds.y, minlength=10), np.full(10, 800))
    assert 0.05 < np.mean(ds.X > 0) < 0.4                                  # mostly background, as MNIST
    flat = data.make_standin("mnist", seed=0)
    assert flat.X.shape == (8000, 784) and np.array_equal(flat.X, ds.X.reshape(8000, 784))
    # the classes differ: a nearest-class-mean classifier fit on the train part separates the test part
    means = np.stack([flat.X[flat.y == c].mean(0) for c in range(10)])
    pred = np.argmin(((flat.X_test[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == flat.y_test) > 0.3                              # chance: 0.1


def test_text_standins():
    ch = data.make_standin("metamorphosis")
    assert ch.X.shape == (118_564,) and ch.X.dtype == np.int32 and ch.y is None
    assert ch.meta["n_symbols"] == len(ch.meta["vocab"]) == 61
    text = data.text.decode_chars(ch.X, ch.meta["vocab"])
    assert ch.meta["unigram_entropy_bits"] == pytest.approx(data.text.unigram_entropy_bits(text))
    im = data.make_standin("imdb_sentences")
    assert im.X.shape == (800,) and im.X_test.shape == (200,) and im.y.dtype == np.int64
    assert np.bincount(im.y).tolist() == [400, 400] and all(isinstance(s, str) and s for s in im.X)


@pytest.mark.parametrize("name,kw", [("20news_100word", {"split": "none"}), ("mnist", {}), ("metamorphosis", {}),
                                     ("imdb_sentences", {"split": 0.3})])
def test_deterministic_and_seed_only_moves_the_split(name, kw):
    a = data.make_standin(name, **kw)
    standin._libsvm_model.cache_clear()      # generate again rather than reuse the cached arrays
    standin._images.cache_clear()
    b = data.make_standin(name, **kw)
    for x, y in ((a.X, b.X), (a.y, b.y), (a.X_test, b.X_test)):
        if sp.issparse(x):
            assert (x != y).nnz == 0
        elif x is not None:
            assert np.array_equal(x, y)
    whole = data.make_standin(name, split="none")
    other = data.make_standin(name, split="none", seed=7)
    assert (whole.X != other.X).nnz == 0 if sp.issparse(whole.X) else np.array_equal(whole.X, other.X)


def test_load_or_standin_falls_back_once_per_call_and_says_why():
    calls = []
    remove = standin.on_standin(lambda name, err: calls.append((name, type(err).__name__)))
    try:
        ds = data.load_or_standin("splice", split=0.2, seed=0)
    finally:
        remove()
    assert data.is_standin(ds) and ds.X.shape == (800, 60)
    assert calls == [("splice", "DataNotFoundError")]
    assert "not found" in ds.meta["standin_reason"]
    with pytest.raises(data.DataNotFoundError):
        data.load_or_standin("splice", standin="never")
    with pytest.raises(ValueError, match="standin="):
        data.load_or_standin("splice", standin="sometimes")
    assert not data.is_standin(data.load_or_standin("diabetes"))   # bundled: always real


def test_real_data_is_preferred(no_data):
    (no_data / "libsvm").mkdir(parents=True)
    (no_data / "libsvm" / "heart_scale").write_text("+1 1:0.5 3:-1\n-1 2:0.25\n")
    ds = data.load_or_standin("heart_scale", split="none", verify=False)
    assert not data.is_standin(ds) and ds.X.shape == (2, 13)
    forced = data.load_or_standin("heart_scale", split="none", standin="always")
    assert data.is_standin(forced) and forced.X.shape == (270, 13)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="needs no stand-in"):
        data.make_standin("diabetes")
    with pytest.raises(TypeError, match="unexpected keyword"):
        data.make_standin("a9a", flatten=False)
    with pytest.raises(ValueError, match="no official test"):
        data.make_standin("splice", split="official")
    with pytest.raises(ValueError, match="unknown data set"):
        data.make_standin("spliced")


@pytest.mark.data
@pytest.mark.parametrize("name", ["a9a", "mushrooms", "heart_scale", "svmguide3"])
def test_standin_matches_the_real_files_shape_and_sparsity(name, monkeypatch):
    """Against the real file (independent of the profiles' numbers): same shape, nonzeros per row within 15 %."""
    roots = [r for r in REAL_DATA.split(os.pathsep) if r.strip() and (Path(r) / "libsvm" / name).is_file()]
    if not roots:
        pytest.skip(f"needs the real libsvm/{name} under $OPTLAB_DATA")
    monkeypatch.setenv("OPTLAB_DATA", roots[0])
    real = data.load(name, split="none")
    fake = data.make_standin(name, split="none")
    assert fake.X.shape == real.X.shape
    assert np.mean(np.diff(fake.X.indptr)) == pytest.approx(np.mean(np.diff(real.X.indptr)), rel=0.15)
    assert np.mean(fake.y > 0) == pytest.approx(np.mean(real.y > 0), abs=0.02)
