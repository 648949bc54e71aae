"""Data integrity: content digests, bad values, tampered and re-formatted files, bad downloads.

The reference digests here come from an independent pure-Python implementation of the documented canonical
form (text parsing by hand, rounding with :mod:`decimal`), not from :mod:`optlab.data.integrity`. Small
files are generated in ``tmp_path``; a registry entry's pinned digest is pointed at the generated data with
``monkeypatch`` so the real verification path runs. Real-data tests (``data``, ``slow``) check the pinned
digests of the shared copies and that a re-formatted copy still matches.

Every case runs under a time limit (SIGALRM; a hang fails the test instead of blocking the suite).
"""
from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import io
import os
import struct
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
from _time_limit import time_limit

import optlab.data as od
from optlab.data import download as dl
from optlab.data import registry

CASE_TIMEOUT_S = 60
TAG = b"optlab-content-v1\0"
LIBSVM_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"


@pytest.fixture(autouse=True)
def _case_time_limit(request):
    with time_limit(CASE_TIMEOUT_S, request.node.name):
        yield


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty cache, verification on, downloads off, and no network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("OPTLAB_OFFLINE", "1")
    monkeypatch.delenv("OPTLAB_VERIFY", raising=False)

    def no_network(url, *a, **k):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(dl, "urlopen", no_network)
    return tmp_path / "xdg-cache" / "optlab"


# ------------------------------------------------------------------- independent reference implementation
def ref_round12(token: str) -> tuple[int, int]:
    """(exponent, mantissa) of the float in ``token`` rounded to 12 significant digits, with Decimal."""
    d = Decimal(float(token))        # the exact binary value the parser produces
    if d == 0:
        return 0, 0
    e = d.adjusted()
    m = int(d.scaleb(11 - e).to_integral_value(rounding=ROUND_HALF_EVEN))
    if abs(m) >= 10**12:
        e, m = e + 1, int((Decimal(m) / 10).to_integral_value(rounding=ROUND_HALF_EVEN))
    return e, m


def ref_svmlight_digest(text: str, positive: float = 1.0) -> str:
    """The documented svmlight content digest, from the file text, parsed by hand."""
    indptr, indices, exps, mans, labels = [0], [], [], [], []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        label, *pairs = line.split()
        entries = {}
        for pair in pairs:
            i, v = pair.split(":")
            entries[int(i) - 1] = entries.get(int(i) - 1, 0.0) + float(v)
        for i in sorted(entries):
            if entries[i] != 0.0:
                e, m = ref_round12(repr(entries[i]))
                indices.append(i)
                exps.append(e)
                mans.append(m)
        indptr.append(len(indices))
        labels.append(1.0 if float(label) == positive else -1.0)
    n = len(labels)
    out = hashlib.sha256(TAG + b"svmlight\0")
    out.update(struct.pack(f"<{2}q", n, 12))
    for arr in (indptr, indices, exps, mans):
        out.update(struct.pack(f"<{len(arr)}q", *arr))
    out.update(struct.pack(f"<{n}d", *labels))
    return out.hexdigest()


def ref_idx_digest(raw: bytes) -> str:
    """The documented IDX digest from the uncompressed bytes of a uint8 IDX file."""
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return hashlib.sha256(TAG + b"idx\0|u1\0" + struct.pack(f"<{ndim}q", *dims) + raw[4 + 4 * ndim:]).hexdigest()


def ref_text_digest(data: bytes) -> str:
    return hashlib.sha256(TAG + b"text\0" + data).hexdigest()


def ref_sentences_digest(text: str) -> str:
    rows = [ln.rsplit("\t", 1) for ln in text.split("\n") if ln.strip()]
    out = hashlib.sha256(TAG + b"sentences\0" + struct.pack("<q", len(rows)))
    for sentence, _ in rows:
        b = sentence.encode()
        out.update(struct.pack("<q", len(b)) + b)
    out.update(struct.pack(f"<{len(rows)}d", *[float(label) for _, label in rows]))
    return out.hexdigest()


# values next to powers of ten and next to (not within an ulp of) a 12-digit rounding midpoint; at a midpoint
# itself the float64 scaling may round the other way than exact decimal arithmetic (documented)
EDGE_VALUES = [1.0, -1.0, 0.001, 0.0009999999999999998, 1000.0, 999.9999999999999, 9.99999999999951, 9.9999999999949,
               -9.9999999999951, 123456789012.4, 0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, -2.5e-5,
               0.8301596999999999, 3.0000000000005, 1e22, 2.0**-1074 * 3]


def test_round_significant_equals_decimal_rounding():
    from optlab.data.integrity import round_significant

    exp, man = round_significant(np.array(EDGE_VALUES + [0.0]))
    for v, e, m in zip(EDGE_VALUES + [0.0], exp.tolist(), man.tolist(), strict=True):
        assert (e, m) == ref_round12(repr(v)), v
        assert m == 0 or 10**11 <= abs(m) < 10**12


# ----------------------------------------------------------------------------------------------- helpers
HEART_ROWS = [  # label, {index: value}: like heart_scale (13 features, labels ±1)
    (1, {1: 0.708333, 2: 1, 3: 1, 4: -0.320755, 13: -1}),
    (-1, {1: 0.583333, 2: -1, 5: -0.0091, 9: 1.0}),
    (1, {3: 0.3333333333, 7: 2.5e-05, 12: -0.5}),
    (-1, {1: 0.125, 13: 1}),
]


def svmlight_text(rows, fmt="{!r}", label_fmt="{:+d}", sep=" ", eol="\n", zeros=()) -> str:
    lines = []
    for r, (label, feats) in enumerate(rows):
        items = dict(feats)
        for (zr, zi) in zeros:  # explicit zero entries (same data)
            if zr == r:
                items[zi] = 0.0
        pairs = [f"{i}:{fmt.format(float(v))}" for i, v in sorted(items.items())]
        lines.append(sep.join([label_fmt.format(label), *pairs]))
    return eol.join(lines) + eol


def pin(monkeypatch, name: str, rel: str, digest: str | None, **changes):
    """Point the registry's pinned digest (and other FileSpec fields) of ``rel`` in ``name`` at ``digest``."""
    info = registry.REGISTRY[name]

    def fix(specs):
        return tuple(dataclasses.replace(s, content_sha256=digest, **changes) if s.rel == rel else s for s in specs)

    monkeypatch.setitem(registry.REGISTRY, name, dataclasses.replace(info, files=fix(info.files),
                                                                    optional=fix(info.optional)))


def put(root: Path, rel: str, data: bytes | str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


@pytest.fixture
def heart(tmp_path, monkeypatch):
    """A generated heart_scale under $OPTLAB_DATA with its digest pinned (the reference implementation)."""
    root = tmp_path / "data"
    monkeypatch.setenv("OPTLAB_DATA", str(root))
    text = svmlight_text(HEART_ROWS)
    pin(monkeypatch, "heart_scale", "libsvm/heart_scale", ref_svmlight_digest(text))
    return root


def idx_bytes(arr: np.ndarray, magic_type: int = 0x08) -> bytes:
    return bytes([0, 0, magic_type, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + \
        np.ascontiguousarray(arr, dtype=">u1").tobytes()


def tiny_mnist(root: Path, n: int = 20, seed: int = 0, labels=None, shape=(28, 28), folder="mnist"):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    labels = np.tile(np.arange(10, dtype=np.uint8), n // 10) if labels is None else np.asarray(labels, np.uint8)
    put(root, f"{folder}/t10k-images-idx3-ubyte.gz", gzip.compress(idx_bytes(images)))
    put(root, f"{folder}/t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels)))
    return images, labels


@pytest.fixture
def mnist(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("OPTLAB_DATA", str(root))
    images, labels = tiny_mnist(root)
    pin(monkeypatch, "mnist", "mnist/t10k-images-idx3-ubyte.gz", ref_idx_digest(idx_bytes(images)))
    pin(monkeypatch, "mnist", "mnist/t10k-labels-idx1-ubyte.gz", ref_idx_digest(idx_bytes(labels)))
    return root, images, labels


# --------------------------------------------------------------------- svmlight: the digest and formatting
def test_digest_of_the_loader_equals_the_independent_reference(heart):
    put(heart, "libsvm/heart_scale", svmlight_text(HEART_ROWS))
    ds = od.load("heart_scale", split="none")
    assert ds.meta["content_sha256"]["libsvm/heart_scale"] == ref_svmlight_digest(svmlight_text(HEART_ROWS))
    assert ds.meta["verified"] == ["libsvm/heart_scale"]
    assert ds.X.shape == (4, 13) and list(ds.y) == [1.0, -1.0, 1.0, -1.0]


REFORMATS = {
    "plain": dict(),
    "repr17": dict(fmt="{:.17g}"),
    "scientific": dict(fmt="{:.9e}"),
    "trailing-zeros": dict(fmt="{:.10f}"),
    "no-plus-sign": dict(label_fmt="{:d}"),
    "tabs-and-crlf": dict(sep="\t", eol="\r\n"),
    "explicit-zeros": dict(zeros=[(0, 6), (3, 2)]),
}


@pytest.mark.parametrize("style", list(REFORMATS))
def test_reformatted_file_with_the_same_values_is_accepted(heart, style):
    put(heart, "libsvm/heart_scale", svmlight_text(HEART_ROWS, **REFORMATS[style]))
    ds = od.load("heart_scale", split="none")  # verification on: must match the pinned digest
    assert ds.meta["verified"] == ["libsvm/heart_scale"]


def test_labels_coded_1_2_match_the_same_set_coded_pm1(heart):
    """mushrooms on the LIBSVM site codes 1/2, the shared copy ±1: the digest uses the ±1 labels."""
    rows = [(1 if lab == 1 else 2, f) for lab, f in HEART_ROWS]
    put(heart, "libsvm/heart_scale", svmlight_text(rows, label_fmt="{:d}"))
    od.load("heart_scale", split="none")


def test_one_ulp_noise_is_accepted_but_a_1e9_change_is_not(heart):
    """The copies were re-printed through float64 (0.8301596999999999 for 0.8301597): 12 digits absorb that."""
    noisy = [(lab, {i: np.nextafter(float(v), np.inf) for i, v in f.items()}) for lab, f in HEART_ROWS]
    put(heart, "libsvm/heart_scale", svmlight_text(noisy, fmt="{!r}"))
    od.load("heart_scale", split="none")
    changed = [(lab, dict(f)) for lab, f in HEART_ROWS]
    changed[1][1][5] = -0.0091 * (1 + 1e-9)
    put(heart, "libsvm/heart_scale", svmlight_text(changed, fmt="{!r}"))
    with pytest.raises(od.ContentMismatchError):
        od.load("heart_scale", split="none")


def _tampered(kind: str):
    rows = [(lab, dict(f)) for lab, f in HEART_ROWS]
    if kind == "value":
        rows[2][1][12] = -0.6
    elif kind == "label":
        rows[3] = (1, rows[3][1])
    elif kind == "added-entry":
        rows[0][1][5] = 0.25
    elif kind == "removed-entry":
        del rows[1][1][9]
    elif kind == "moved-entry":
        rows[3][1][2] = rows[3][1].pop(1)
    elif kind == "removed-row":
        rows = rows[:-1]
    elif kind == "swapped-rows":
        rows[0], rows[2] = rows[2], rows[0]
    elif kind == "duplicated-row":
        rows = rows + rows[-1:]
    return rows


@pytest.mark.parametrize("kind", ["value", "label", "added-entry", "removed-entry", "moved-entry", "removed-row",
                                  "swapped-rows", "duplicated-row"])
def test_tampered_file_is_rejected_with_both_digests_and_the_opt_out(heart, kind):
    path = put(heart, "libsvm/heart_scale", svmlight_text(_tampered(kind)))
    expected = registry.REGISTRY["heart_scale"].files[0].content_sha256
    with pytest.raises(od.ContentMismatchError) as ei:
        od.load("heart_scale")
    msg = str(ei.value)
    actual = ref_svmlight_digest(svmlight_text(_tampered(kind)))
    assert str(path) in msg and expected in msg and actual in msg
    assert "verify=False" in msg and "OPTLAB_VERIFY=0" in msg and LIBSVM_URL + "heart_scale" in msg
    assert path.is_file()  # a local file is reported, never deleted


def test_opt_out_by_argument_and_by_environment(heart, monkeypatch):
    put(heart, "libsvm/heart_scale", svmlight_text(_tampered("value")))
    ds = od.load("heart_scale", split="none", verify=False)
    assert ds.X[2, 11] == -0.6 and ds.meta["verified"] == []
    monkeypatch.setenv("OPTLAB_VERIFY", "0")
    od.load("heart_scale", split="none")
    with pytest.raises(od.ContentMismatchError):  # an explicit verify=True wins over the environment
        od.load("heart_scale", split="none", verify=True)


@pytest.mark.parametrize("value, exc", [("maybe", ValueError), ("2", ValueError)])
def test_bad_optlab_verify_value(heart, monkeypatch, value, exc):
    put(heart, "libsvm/heart_scale", svmlight_text(HEART_ROWS))
    monkeypatch.setenv("OPTLAB_VERIFY", value)
    with pytest.raises(exc, match="OPTLAB_VERIFY"):
        od.load("heart_scale")


@pytest.mark.parametrize("verify", ["yes", 1, 0.0])
def test_bad_verify_argument(heart, verify):
    put(heart, "libsvm/heart_scale", svmlight_text(HEART_ROWS))
    with pytest.raises(TypeError, match="verify"):
        od.load("heart_scale", verify=verify)


# ---------------------------------------------------------------------------- svmlight: invalid values
BAD_VALUES = {
    "nan-feature": ("-1 1:nan 2:1\n1 1:0.5\n", "non-finite feature"),
    "inf-feature": ("-1 1:0.5\n1 3:inf\n", "non-finite feature"),
    "minus-inf-feature": ("1 13:-inf\n-1 1:1\n", "non-finite feature"),
    "nan-label": ("nan 1:1\n1 1:0.5\n", "out of range"),
    "inf-label": ("1 1:1\ninf 1:0.5\n", "out of range"),
    "label-3": ("1 1:1\n3 2:0.5\n", "out of range"),
    "label-0.5": ("0.5 1:1\n1 2:0.5\n", "out of range"),
    "three-classes": ("1 1:1\n-1 2:0.5\n2 3:1\n", "3 classes"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
@pytest.mark.parametrize("verify", [True, False])
def test_invalid_svmlight_values_are_rejected_even_without_verification(heart, case, verify):
    text, match = BAD_VALUES[case]
    path = put(heart, "libsvm/heart_scale", text)
    with pytest.raises(od.InvalidDataError, match=match) as ei:
        od.load("heart_scale", split="none", verify=verify)
    assert str(path) in str(ei.value) and "fix:" in str(ei.value)
    assert isinstance(ei.value, ValueError)


@pytest.mark.parametrize("n_features, exc, match", [(0, ValueError, "positive"), (-3, ValueError, "positive"),
                                                    (1.5, TypeError, "n_features"), ("13", TypeError, "n_features"),
                                                    (True, TypeError, "n_features"), (5, ValueError, "n_features=5")])
def test_bad_n_features(heart, n_features, exc, match):
    put(heart, "libsvm/heart_scale", svmlight_text(HEART_ROWS))
    with pytest.raises(exc, match=match):
        od.load("heart_scale", n_features=n_features)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(dense="yes"), TypeError, "dense"), (dict(seed=1.5), TypeError, "seed"), (dict(split="train"), ValueError,
                                                                                   "split"),
    (dict(split=1.0), ValueError, "split"), (dict(flatten=False), TypeError, "unexpected keyword")])
def test_bad_load_arguments(heart, kwargs, exc, match):
    put(heart, "libsvm/heart_scale", svmlight_text(HEART_ROWS))
    with pytest.raises(exc, match=match):
        od.load("heart_scale", **kwargs)


def test_unreadable_svmlight_names_the_file(heart):
    path = put(heart, "libsvm/heart_scale", "1 1:abc\n")
    with pytest.raises(ValueError, match=str(path)):
        od.load("heart_scale")


@pytest.mark.parametrize("name", ["heart-scal", "a9a.tt", "", "mnist2"])
def test_unknown_names(name):
    with pytest.raises(ValueError, match="unknown data set"):
        od.load(name)


def test_missing_file_is_a_data_not_found_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(od.DataNotFoundError, match="libsvm/heart_scale.*\n.*"):
        od.load("heart_scale")
    with pytest.raises(od.DataNotFoundError, match="heart_scale"):
        od.verify("heart_scale")
    assert od.local_files("heart_scale") == {"libsvm/heart_scale": None}


# ------------------------------------------------------------------------------------------- IDX (MNIST)
def test_idx_digest_ignores_compression(mnist):
    root, images, labels = mnist
    od.load("mnist", split="none")
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    put(root, "mnist/t10k-images-idx3-ubyte", idx_bytes(images))  # the uncompressed variant
    put(root, "mnist/t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels), compresslevel=1))
    ds = od.load("mnist", split="none")
    assert len(ds.meta["verified"]) == 2


@pytest.mark.parametrize("which", ["pixel", "label"])
def test_idx_tampered_pixel_or_label_is_rejected(mnist, which):
    root, images, labels = mnist
    if which == "pixel":
        images = images.copy()
        images[7, 14, 14] ^= 1
        put(root, "mnist/t10k-images-idx3-ubyte.gz", gzip.compress(idx_bytes(images)))
    else:
        labels = labels.copy()
        labels[3] = (labels[3] + 1) % 10
        put(root, "mnist/t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels)))
    with pytest.raises(od.ContentMismatchError, match=which == "pixel" and "images" or "labels"):
        od.load("mnist")
    od.load("mnist", split="none", verify=False)


@pytest.mark.parametrize("case, match", [
    ("label-10", "out of range 0..9"), ("label-255", "out of range 0..9"), ("shape-28x27", r"\(28, 27\)"),
    ("count-mismatch", "20 images but"), ("labels-as-images", "expected 0x00000803"),
    ("truncated-gzip", "corrupt gzip|truncated"), ("not-idx", "magic number")])
def test_invalid_idx_files(tmp_path, monkeypatch, case, match):
    root = tmp_path / "data"
    monkeypatch.setenv("OPTLAB_DATA", str(root))
    labels = np.tile(np.arange(10, dtype=np.uint8), 2)
    if case == "label-10":
        labels[5] = 10
    if case == "label-255":
        labels[0] = 255
    # fashion_mnist: no pinned digest, so the value checks are what fails (MNIST's digest would fail first)
    images, _ = tiny_mnist(root, labels=labels, shape=(28, 27) if case == "shape-28x27" else (28, 28),
                           folder="fashion_mnist")
    img = root / "fashion_mnist" / "t10k-images-idx3-ubyte.gz"
    if case == "count-mismatch":
        put(root, "fashion_mnist/t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels[:19])))
    if case == "labels-as-images":
        img.write_bytes(gzip.compress(idx_bytes(labels)))
    if case == "truncated-gzip":
        img.write_bytes(img.read_bytes()[: len(img.read_bytes()) // 2])
    if case == "not-idx":
        img.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    for verify in (True, False):
        with pytest.raises(od.InvalidDataError, match=match):
            od.load("fashion_mnist", verify=verify)


# --------------------------------------------------------------------------------------------------- text
def test_text_corpus_digest_and_tampering(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("OPTLAB_DATA", str(root))
    text = "One morning, when Gregor Samsa woke from troubled dreams,\nhe found himself transformed.\n"
    pin(monkeypatch, "metamorphosis", "text/metamorphosis_excerpt.txt", ref_text_digest(text.encode()))
    put(root, "text/metamorphosis_excerpt.txt", text)
    assert od.load("metamorphosis").meta["verified"] == ["text/metamorphosis_excerpt.txt"]
    put(root, "text/metamorphosis_excerpt.txt", text.replace("Gregor", "Gregory"))
    with pytest.raises(od.ContentMismatchError, match="metamorphosis"):
        od.load("metamorphosis")
    put(root, "text/metamorphosis_excerpt.txt", b"\xff\xfe not utf-8")
    with pytest.raises(od.InvalidDataError, match="UTF-8"):
        od.load("metamorphosis", verify=False)


@pytest.mark.parametrize("case, exc, match", [
    ("flip-label", od.ContentMismatchError, "imdb_sentences"), ("label-2", od.InvalidDataError, "line 2"),
    ("no-tab", od.InvalidDataError, "line 3"), ("ok", None, None)])
def test_labelled_sentences(tmp_path, monkeypatch, case, exc, match):
    root = tmp_path / "data"
    monkeypatch.setenv("OPTLAB_DATA", str(root))
    good = "A very good film.\t1\nDull.\t0\nI loved \x85 it.\t1\nNot for me.\t0\n" * 5
    pin(monkeypatch, "imdb_sentences", "text/imdb_labelled.txt", ref_sentences_digest(good))
    lines = good.split("\n")
    if case == "flip-label":
        lines[0] = "A very good film.\t0"
    if case == "label-2":
        lines[1] = "Dull.\t2"
    if case == "no-tab":
        lines[2] = "I loved it. 1"
    put(root, "text/imdb_labelled.txt", "\n".join(lines))
    if exc is None:
        assert od.load("imdb_sentences", split="none").meta["verified"] == ["text/imdb_labelled.txt"]
        return
    with pytest.raises(exc, match=match):
        od.load("imdb_sentences")


# ------------------------------------------------------------------------------------------------- downloads
def online(monkeypatch, files: dict[str, bytes], calls: list):
    monkeypatch.delenv("OPTLAB_OFFLINE", raising=False)

    class Response(io.BytesIO):
        def __init__(self, data):
            super().__init__(data)
            self.headers = {"Content-Length": str(len(data))}

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        if url not in files:
            raise URLError(f"test network has no {url}")
        return Response(files[url])

    monkeypatch.setattr(dl, "urlopen", fake_urlopen)


@pytest.mark.parametrize("served, exc", [(_tampered("value"), od.ContentMismatchError),
                                         (_tampered("label"), od.ContentMismatchError),
                                         ("nan", od.InvalidDataError)])
@pytest.mark.parametrize("entry", ["load", "fetch"])
def test_a_bad_download_is_deleted_again(heart, monkeypatch, isolated, tmp_path, served, exc, entry):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "nothing"))
    body = BAD_VALUES["nan-feature"][0] if served == "nan" else svmlight_text(served)
    calls: list = []
    online(monkeypatch, {LIBSVM_URL + "heart_scale": body.encode()}, calls)
    with pytest.raises(exc) as ei:
        od.load("heart_scale") if entry == "load" else od.fetch("heart_scale", progress=False)
    assert calls == [LIBSVM_URL + "heart_scale"]
    assert any("deleted again" in n for n in getattr(ei.value, "__notes__", []))
    assert not any(p.is_file() for p in isolated.rglob("*"))


def test_a_good_download_is_kept_and_verified(heart, monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "nothing"))
    calls: list = []
    online(monkeypatch, {LIBSVM_URL + "heart_scale": svmlight_text(HEART_ROWS, fmt="{:.12g}").encode()}, calls)
    assert od.fetch("heart_scale", progress=False) == [isolated / "libsvm" / "heart_scale"]
    assert od.load("heart_scale", split="none").meta["verified"] == ["libsvm/heart_scale"]
    assert len(calls) == 1


def test_fashion_mnist_is_fetched_over_https_with_md5_and_an_http_mirror():
    for spec in (*registry.REGISTRY["fashion_mnist"].files, *registry.REGISTRY["fashion_mnist"].optional):
        assert spec.url.startswith("https://") and spec.md5 and len(spec.md5) == 32
        assert spec.mirrors and all(m.startswith("http") for m in spec.mirrors)
    for info in registry.REGISTRY.values():
        for spec in (*info.files, *info.optional):
            assert spec.url is None or spec.url.startswith("https://"), spec.rel


@pytest.mark.parametrize("primary", ["unreachable", "wrong-bytes"])
def test_mirror_is_used_when_the_primary_fails_and_bytes_are_md5_checked(monkeypatch, isolated, tmp_path, primary):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "nothing"))
    images = np.random.default_rng(0).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    labels = np.tile(np.arange(10, dtype=np.uint8), 2)
    blobs = {"images": gzip.compress(idx_bytes(images)), "labels": gzip.compress(idx_bytes(labels))}
    info = registry.REGISTRY["fashion_mnist"]
    files, specs = {}, []
    for spec in info.files:
        blob = blobs["images" if "images" in spec.rel else "labels"]
        specs.append(dataclasses.replace(spec, md5=hashlib.md5(blob).hexdigest()))
        files[spec.mirrors[0]] = blob
        if primary == "wrong-bytes":
            files[spec.url] = blob + b"x"
    monkeypatch.setitem(registry.REGISTRY, "fashion_mnist", dataclasses.replace(info, files=tuple(specs)))
    calls: list = []
    online(monkeypatch, files, calls)
    ds = od.load("fashion_mnist", split="none")
    np.testing.assert_array_equal(ds.y, labels)
    assert calls[:2] == [specs[0].url, specs[0].mirrors[0]]
    # both sources wrong: ChecksumError naming md5, nothing kept
    for spec in specs:
        files[spec.mirrors[0]] = files[spec.url] = b"garbage"
        (isolated / spec.rel).unlink()
    with pytest.raises(od.ChecksumError, match="md5"):
        od.load("fashion_mnist")
    assert not any(p.is_file() for p in isolated.rglob("*"))


def test_bz2_download_is_content_checked(monkeypatch, isolated, tmp_path):
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "nothing"))
    text = "1 1:0.5 20958:1\n-1 3:0.25\n"
    pin(monkeypatch, "real-sim", "libsvm/real-sim", ref_svmlight_digest(text))
    calls: list = []
    online(monkeypatch, {LIBSVM_URL + "real-sim.bz2": bz2.compress(text.replace("0.5", "0.7").encode())}, calls)
    with pytest.raises(od.ContentMismatchError):
        od.load("real-sim", split="none", progress=False)
    assert not any(p.is_file() for p in isolated.rglob("*"))
    online(monkeypatch, {LIBSVM_URL + "real-sim.bz2": bz2.compress(text.encode())}, calls)
    assert od.load("real-sim", split="none", progress=False).X.shape == (2, 20958)


# ----------------------------------------------------------------------------------- real data (shared copies)
def shared_root() -> Path:
    value = os.environ.get("OPTLAB_DATA", "")
    for root in value.split(os.pathsep):
        if root.strip() and (Path(root).expanduser().resolve() / "libsvm").is_dir():
            return Path(root).expanduser().resolve()
    pytest.skip("OPTLAB_DATA does not point at the shared data folder")


def _owner(rel: str) -> str:
    return next(i.name for i in registry.REGISTRY.values() for s in (*i.files, *i.optional) if s.rel == rel)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("rel", sorted(registry.CONTENT_SHA256))
def test_every_shared_file_matches_its_pinned_digest(rel, monkeypatch):
    root = shared_root()
    monkeypatch.setenv("OPTLAB_DATA", str(root))
    if not (root / rel).is_file():
        pytest.skip(f"{rel} is not in the shared data folder")
    assert od.verify(_owner(rel))[rel] == registry.CONTENT_SHA256[rel]


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("rel", ["libsvm/heart_scale", "libsvm/svmguide3", "libsvm/splice",
                                 "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz",
                                 "text/metamorphosis_excerpt.txt", "text/imdb_labelled.txt"])
def test_pinned_digests_equal_the_independent_reference(rel):
    path = shared_root() / rel
    if not path.is_file():
        pytest.skip(f"{rel} is not in the shared data folder")
    data = path.read_bytes()
    if rel.startswith("libsvm/"):
        ref = ref_svmlight_digest(data.decode())
    elif rel.startswith("mnist/"):
        ref = ref_idx_digest(gzip.decompress(data))
    elif rel.endswith("imdb_labelled.txt"):
        ref = ref_sentences_digest(data.decode())
    else:
        ref = ref_text_digest(data)
    assert registry.CONTENT_SHA256[rel] == ref


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("style", ["shortest", "fixed-12", "one-ulp-off"])
def test_svmguide3_reprinted_still_matches(tmp_path, monkeypatch, style):
    """Re-print the shared svmguide3 (which prints 0.8301596999999999 for the double 0.8301597) another way:
    the shortest repr, 12 fixed significant digits, or every value one ulp away: the same content."""
    src = shared_root() / "libsvm" / "svmguide3"
    out = []
    for line in src.read_text().splitlines():
        label, *pairs = line.split()
        new = []
        for pair in pairs:
            i, v = pair.split(":")
            x = float(v)
            short = {"shortest": repr(x), "fixed-12": f"{x:.12g}",
                     "one-ulp-off": repr(float(np.nextafter(x, np.inf)))}[style]
            new.append(f"{i}:{short}")
        out.append(" ".join([label, *new]))
    text = "\n".join(out) + "\n"
    assert text != src.read_text()          # really re-formatted
    root = tmp_path / "data"
    put(root, "libsvm/svmguide3", text)
    monkeypatch.setenv("OPTLAB_DATA", str(root))
    assert od.load("svmguide3", split="none").meta["verified"] == ["libsvm/svmguide3"]
    label, first, *rest = out[10].split()
    i, v = first.split(":")
    out[10] = " ".join([label, f"{i}:{float(v) + 0.5!r}", *rest])  # one value changed
    put(root, "libsvm/svmguide3", "\n".join(out) + "\n")
    with pytest.raises(od.ContentMismatchError, match="svmguide3"):
        od.load("svmguide3")


@pytest.mark.slow
@pytest.mark.data
def test_verification_cost_is_small_against_parsing(monkeypatch):
    """The digest is computed at every load: it must stay a fraction of the parse time (measured on w8a)."""
    import time

    from sklearn.datasets import load_svmlight_file

    from optlab.data.integrity import svmlight_digest

    path = shared_root() / "libsvm" / "w8a"
    if not path.is_file():
        pytest.skip("w8a is not in the shared data folder")
    t0 = time.perf_counter()
    X, y = load_svmlight_file(str(path), n_features=300, zero_based=False)
    parse = time.perf_counter() - t0
    t0 = time.perf_counter()
    svmlight_digest(X, np.where(y == 1, 1.0, -1.0))
    digest = time.perf_counter() - t0
    assert digest < 0.6 * parse, (digest, parse)
