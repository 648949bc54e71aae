"""Finding data files and downloading them into the cache.

Lookup order for a file with relative path ``rel`` (e.g. ``libsvm/a9a``):

1. ``$OPTLAB_DATA/<rel>`` and ``$OPTLAB_DATA/<basename>`` (plus the accepted variants, e.g. a ``.bz2`` or a
   non-gzipped IDX file). ``OPTLAB_DATA`` may hold several folders separated by ``os.pathsep``; a
   relative folder is taken relative to the current working directory.
2. The cache ``$XDG_CACHE_HOME/optlab/<rel>`` (default ``~/.cache/optlab/<rel>``).
3. A download from the file's public URL (then its mirrors, in order) into the cache (progress bar;
   ``.bz2`` files from the LIBSVM site are decompressed; size and published byte checksums verified when
   known), unless ``OPTLAB_OFFLINE=1``. The loaders then check the parsed content
   (:mod:`optlab.data.integrity`); a fresh download that fails that check is deleted again
   (:func:`discard_if_invalid`), so a bad file is never left in the cache.
   Connections time out after ``OPTLAB_DOWNLOAD_TIMEOUT`` seconds (default 10).

When all three fail, :class:`~optlab.data.DataNotFoundError` says which file is missing, where it was
looked for, the URL, and where to put the file.
"""
from __future__ import annotations

import bz2
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen  # module attribute, so tests can replace it

from .base import ChecksumError, DataNotFoundError
from .registry import REGISTRY, FileSpec

__all__ = ["data_roots", "cache_dir", "offline", "locate", "obtain", "obtain_tracked", "download",
           "not_found_error", "discard_if_invalid"]

DEFAULT_TIMEOUT = 10.0
_CHUNK = 1 << 20


def data_roots() -> list[Path]:
    """The folders named by ``$OPTLAB_DATA`` (absolute; relative ones resolved against the cwd)."""
    value = os.environ.get("OPTLAB_DATA", "")
    return [Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p.strip()]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/optlab`` or ``~/.cache/optlab`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return (root / "optlab").resolve()


def offline() -> bool:
    """True when ``OPTLAB_OFFLINE`` is set to a true value (1, true, yes, on): never download."""
    return os.environ.get("OPTLAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _timeout() -> float:
    try:
        return float(os.environ.get("OPTLAB_DOWNLOAD_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def _shared_basenames() -> set[str]:
    """Basenames used by more than one registered file (e.g. MNIST and Fashion-MNIST share theirs)."""
    seen: dict[str, set[str]] = {}
    for info in REGISTRY.values():
        for spec in (*info.files, *info.optional):
            for rel in (spec.rel, *spec.alternates):
                seen.setdefault(rel.rsplit("/", 1)[-1], set()).add(spec.rel)
    return {base for base, rels in seen.items() if len(rels) > 1}


_AMBIGUOUS = _shared_basenames()


def _candidates_in_root(root: Path, spec: FileSpec) -> Iterable[Path]:
    rels = (spec.rel, *spec.alternates)
    for rel in rels:
        yield root / rel
    for rel in rels:  # flat layout: $OPTLAB_DATA/<basename>, unless another data set uses the same name
        base = rel.rsplit("/", 1)[-1]
        if base not in _AMBIGUOUS:
            yield root / base


def locate(spec: FileSpec) -> Path | None:
    """Where ``spec`` is found under ``$OPTLAB_DATA`` or in the cache; None if nowhere."""
    for root in data_roots():
        for cand in _candidates_in_root(root, spec):
            if cand.is_file():
                return cand
    cache = cache_dir()
    for rel in (spec.rel, *spec.alternates):
        cand = cache / rel
        if cand.is_file():
            return cand
    return None


def cache_path(spec: FileSpec) -> Path:
    """Where a download of ``spec`` is stored."""
    return cache_dir() / spec.rel


def download(url: str, dest: Path, *, compression: str | None = None, md5: str | None = None,
             sha256: str | None = None, size: int | None = None, progress: bool | None = None,
             timeout: float | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically (via a temporary file in the same folder).

    The size and checksums, when given, are checked on the downloaded bytes (before decompression);
    a mismatch deletes the download and raises :class:`ChecksumError`. ``compression="bz2"`` stores the
    decompressed file. Network errors propagate (``urllib.error.URLError``, ``TimeoutError``, ``OSError``).
    ``progress=None`` shows a tqdm bar only on a terminal.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h_md5, h_sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        received = 0
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=_timeout() if timeout is None else timeout) as resp:
            length = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
            total = int(length) if length and str(length).isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                      disable=(not progress) if progress is not None else None, leave=False) as bar:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    h_md5.update(chunk)
                    h_sha.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise ChecksumError(f"download of {url} is truncated: {received} of {total} bytes")
        if size is not None and received != size:
            raise ChecksumError(f"download of {url} has {received} bytes, expected {size}")
        if md5 is not None and h_md5.hexdigest() != md5:
            raise ChecksumError(f"md5 of the download of {url} is {h_md5.hexdigest()}, expected {md5}")
        if sha256 is not None and h_sha.hexdigest() != sha256:
            raise ChecksumError(f"sha256 of the download of {url} is {h_sha.hexdigest()}, expected {sha256}")
        if compression == "bz2":
            fd2, tmp2_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
            try:
                with os.fdopen(fd2, "wb") as out, bz2.open(tmp, "rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
                os.replace(tmp2_name, dest)
            finally:
                Path(tmp2_name).unlink(missing_ok=True)
        elif compression is None:
            os.replace(tmp, dest)
        else:
            raise ValueError(f"unknown compression {compression!r}")
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def not_found_error(name: str, spec: FileSpec, reason: str | None = None) -> DataNotFoundError:
    """The error for a missing file: what is missing, where it was looked for, and how to fix it."""
    roots = data_roots()
    cache = cache_dir()
    where_data = (", ".join(str(r) for r in roots) if roots else "OPTLAB_DATA is not set")
    variants = ", ".join(repr(v) for v in spec.alternates)
    lines = [
        f"data set {name!r}: file {spec.rel!r} not found"
        + (f" (also tried {variants})" if variants else "") + ".",
        f"  looked under $OPTLAB_DATA ({where_data}) and in the cache {cache}",
    ]
    if spec.url:
        lines.append(f"  source URL: {spec.url}")
    if spec.hint:
        lines.append(f"  {spec.hint}")
    if reason:
        lines.append(f"  {reason}")
    example_root = roots[0] if roots else Path("/path/to/data")
    lines.append(f"  fix: put the file at <dir>/{spec.rel} (e.g. {example_root / spec.rel}) and set "
                 f"OPTLAB_DATA=<dir>, or put it at {cache / spec.rel}"
                 + (", or run optlab.data.fetch(" + repr(name) + ") where the network is reachable"
                    if spec.url else "") + ".")
    return DataNotFoundError("\n".join(lines))


def obtain_tracked(name: str, spec: FileSpec, *, allow_download: bool = True, progress: bool | None = None,
                   force: bool = False) -> tuple[Path, bool]:
    """``(path, downloaded)``: the local path of ``spec`` and whether it was downloaded by this call.

    Found under ``$OPTLAB_DATA``/cache, else downloaded into the cache from ``spec.url`` and then each of
    ``spec.mirrors`` until one succeeds. ``force=True`` skips the lookup and downloads into the cache
    again (when the file has a URL). Raises :class:`ChecksumError` when every source failed and at least
    one served bytes that failed the size/checksum test, :class:`DataNotFoundError` otherwise.
    """
    found = None if (force and spec.url is not None) else locate(spec)
    if found is not None:
        return found, False
    if spec.url is None:
        raise not_found_error(name, spec, "no download URL is known for this file.")
    if not allow_download:
        raise not_found_error(name, spec, "downloading was not attempted.")
    if offline():
        raise not_found_error(name, spec, "downloading is disabled (OPTLAB_OFFLINE is set).")
    failures: list[str] = []
    bad_bytes = None
    for url in (spec.url, *spec.mirrors):
        try:
            return download(url, cache_path(spec), compression=spec.compression, md5=spec.md5,
                            sha256=spec.sha256, size=spec.size, progress=progress), True
        except ChecksumError as exc:
            bad_bytes = exc
            failures.append(f"download failed verification: {exc}")
        except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, disk errors, bad URLs
            failures.append(f"download from {url} failed: {exc}")
    err = not_found_error(name, spec, "; ".join(failures))
    if bad_bytes is not None:
        raise ChecksumError(str(err)) from bad_bytes
    raise err


def obtain(name: str, spec: FileSpec, *, allow_download: bool = True, progress: bool | None = None,
           force: bool = False) -> Path:
    """The local path of ``spec``: found under ``$OPTLAB_DATA``/cache, else downloaded into the cache.

    See :func:`obtain_tracked` (this is its path only).
    """
    return obtain_tracked(name, spec, allow_download=allow_download, progress=progress, force=force)[0]


@contextmanager
def discard_if_invalid(path: Path, downloaded: bool) -> Iterator[None]:
    """Delete ``path`` when the block raises and the file was downloaded just now (a bad download is not kept).

    Files found locally are never touched: the error says how to replace them.
    """
    try:
        yield
    except Exception as exc:
        if downloaded:
            Path(path).unlink(missing_ok=True)
            exc.add_note(f"the download {path} was deleted again; nothing bad is left in the cache.")
        raise
