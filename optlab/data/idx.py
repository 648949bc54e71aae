"""IDX files (MNIST, Fashion-MNIST): a NumPy reader and the image loaders.

The IDX format: a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the data in row-major order, big-endian. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64. Files may be gzip-compressed (recognised by their first bytes).

The image loaders check every file they read (:func:`read_checked`): the magic number of an image or a
label file, 28 x 28 images, labels 0..9, equal counts, and the content digest pinned in the registry
(:mod:`optlab.data.integrity`; the digest ignores compression).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .base import DataNotFoundError, Dataset, IDXFormatError, InvalidDataError
from .download import discard_if_invalid, locate, obtain_tracked
from .integrity import check_digest, idx_digest
from .registry import DatasetInfo, FileSpec
from .splits import random_split, split_description

__all__ = ["read_idx", "read_idx_header", "read_checked", "load_idx_images", "IMAGES_MAGIC", "LABELS_MAGIC",
           "IMAGE_SHAPE", "N_CLASSES"]

IMAGE_SHAPE = (28, 28)
N_CLASSES = 10

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC = 0x00000803   # 2051: uint8, 3 dimensions
LABELS_MAGIC = 0x00000801   # 2049: uint8, 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: str | Path) -> bytes:
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == _GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        except (OSError, EOFError) as exc:
            raise IDXFormatError(f"{path}: corrupt gzip stream ({exc})") from exc
    return path.read_bytes()


def read_idx_header(data: bytes, source: str = "IDX data") -> tuple[int, np.dtype, tuple[int, ...], int]:
    """Parse the header: ``(magic, dtype, dims, header_bytes)``; IDXFormatError when malformed."""
    if len(data) < 4:
        raise IDXFormatError(f"{source}: {len(data)} bytes is too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    zero, type_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or type_code not in _TYPES or ndim == 0:
        raise IDXFormatError(
            f"{source}: bad IDX magic number 0x{magic:08X} (expected 0x0000TTNN with type TT in "
            f"{{08, 09, 0B, 0C, 0D, 0E}} and NN >= 1 dimensions, e.g. 0x00000803 for MNIST images); "
            "is this an IDX file?")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{source}: truncated header ({len(data)} bytes, {ndim} dimensions declared)")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return magic, np.dtype(_TYPES[type_code]), dims, header


def read_idx(path: str | Path, *, expect_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (plain or gzipped) into a native-endian NumPy array of its declared shape.

    ``expect_magic`` (e.g. :data:`IMAGES_MAGIC`) makes a file of another kind an IDXFormatError. A file
    whose data is shorter or longer than its dimensions say is an IDXFormatError too.
    """
    data = _read_bytes(path)
    magic, dtype, dims, header = read_idx_header(data, str(path))
    if expect_magic is not None and magic != expect_magic:
        raise IDXFormatError(f"{path}: IDX magic number 0x{magic:08X}, expected 0x{expect_magic:08X} "
                             f"({expect_magic}); wrong file?")
    count = int(np.prod(dims, dtype=np.int64))
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        raise IDXFormatError(f"{path}: {len(data)} bytes, but the header {dims} of {dtype.str} needs {expected}"
                             f" ({'truncated' if len(data) < expected else 'trailing data'})")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_checked(info: DatasetInfo, spec: FileSpec, path: Path, *, verify: bool) -> tuple[np.ndarray, str]:
    """Read one image or label file of ``info`` and check it: ``(array, content_digest)``.

    Images must be ``(n, 28, 28)`` uint8, labels ``(n,)`` uint8 in 0..9 (InvalidDataError naming the file
    and the fix); a digest pinned for ``spec`` must match (ContentMismatchError, unless not ``verify``).
    """
    images = "images" in spec.basename
    arr = read_idx(path, expect_magic=IMAGES_MAGIC if images else LABELS_MAGIC)
    fix = (f"  fix: replace the file with the original (delete it, then optlab.data.fetch({info.name!r}) "
           "downloads it where it has a URL).")
    if images and arr.shape[1:] != IMAGE_SHAPE:
        raise InvalidDataError(f"data set {info.name!r}: {path} holds images of shape {arr.shape[1:]}, expected "
                               f"{IMAGE_SHAPE}.\n{fix}")
    if not images and arr.size and int(arr.max()) >= N_CLASSES:
        row = int(np.flatnonzero(arr >= N_CLASSES)[0])
        raise InvalidDataError(
            f"data set {info.name!r}: {path} has {int((arr >= N_CLASSES).sum())} label(s) out of range 0..9 "
            f"(first: {int(arr[row])} at position {row}).\n{fix}")
    digest = idx_digest(arr)
    check_digest(info.name, spec, path, digest, verify=verify)
    return arr, digest


def _pair_counts(images: np.ndarray, labels: np.ndarray, paths) -> None:
    if images.shape[0] != labels.shape[0]:
        raise IDXFormatError(f"{paths[0]} has {images.shape[0]} images but {paths[1]} has {labels.shape[0]} labels")


def load_idx_images(info: DatasetInfo, split, dense: bool, seed: int, *, flatten: bool = True,
                    progress: bool | None = None, verify: bool = True) -> Dataset:
    if not isinstance(flatten, (bool, np.bool_)):
        raise TypeError(f"flatten must be True or False, got {flatten!r}")
    test_specs, train_specs = info.files, info.optional
    fresh: set[Path] = set()
    digests: dict[str, str] = {}

    def get(spec: FileSpec) -> Path:
        path, downloaded = obtain_tracked(info.name, spec, progress=progress)
        if downloaded:
            fresh.add(path)
        return path

    def get_train() -> list:
        return [p or get(s) for p, s in zip(train_local, train_specs, strict=True)]

    def read_pair(paths, specs):
        arrays = []
        for path, spec in zip(paths, specs, strict=True):
            with discard_if_invalid(path, path in fresh):
                arr, digests[spec.rel] = read_checked(info, spec, path, verify=verify)
            arrays.append(arr)
        _pair_counts(*arrays, paths)
        return arrays

    test_local = [locate(s) for s in test_specs]
    train_local = [locate(s) for s in train_specs]
    if not all(test_local):
        # nothing (or not all) here: download the whole distribution, test files first
        test_local = [p or get(s) for p, s in zip(test_local, test_specs, strict=True)]
        try:
            train_local = get_train()
        except DataNotFoundError:
            train_local = [None] * len(train_specs)
    elif split == "official" and not all(train_local):
        train_local = get_train()
    have_train = all(train_local)

    X_t10k, y_t10k = read_pair(test_local, test_specs)
    files = [str(p) for p in test_local]
    if have_train:
        X_tr60, y_tr60 = read_pair(train_local, train_specs)
        files = [str(p) for p in train_local] + files

    def prep(images: np.ndarray) -> np.ndarray:
        out = images.astype(np.float32) / np.float32(255.0)
        return out.reshape(out.shape[0], -1) if flatten else out

    X_te = y_te = None
    extra: dict = {}
    if split in ("paper", "official") and have_train:
        X, y, X_te, y_te = X_tr60, y_tr60, X_t10k, y_t10k
        desc = f"official split: {len(y)} training images (train-*) / {len(y_te)} test images (t10k-*)"
    else:
        if have_train:
            X_all, y_all = np.concatenate([X_tr60, X_t10k]), np.concatenate([y_tr60, y_t10k])
            what = f"train-* ({len(y_tr60)}) followed by t10k-* ({len(y_t10k)})"
        else:
            X_all, y_all = X_t10k, y_t10k
            what = f"the {len(y_t10k)} t10k-* images (the train-* files are not present)"
        if split == "none":
            X, y = X_all, y_all
            desc = f"no split: {what} as training data"
        else:
            frac = 0.2 if split == "paper" else split
            X, y, X_te, y_te, i_tr, i_te = random_split(X_all, y_all, frac, seed, stratify=True)
            desc = split_description(frac, seed, True, len(y), len(y_te)) + f" of {what}"
            if split == "paper":
                desc = "t10k-only fallback of the paper split: " + desc
            extra = {"train_index": i_tr, "test_index": i_te}

    meta = {
        "source": info.source, "description": info.description, "format": "idx", "files": files,
        "n_features": 784, "image_shape": (28, 28), "split": desc, "seed": seed, "task": info.task,
        "classes": list(range(10)), "scaling": "pixel / 255 as float32", "content_sha256": digests,
        "verified": [s.rel for s in (*test_specs, *train_specs) if verify and s.content_sha256 and s.rel in digests],
        **extra,
    }
    return Dataset(prep(X), y.astype(np.int64), None if X_te is None else prep(X_te),
                   None if y_te is None else y_te.astype(np.int64), info.name, meta)
