"""Process-wide JAX settings made at ``import optlab``: the persistent compilation cache, on by default.

Compiling dominates short runs (the README quick start: about 1.3 s of compilation for a 0.03 s solve). JAX can
store compiled programs on disk and load them in later processes; optlab turns that on in a per-user folder,

* ``$XDG_CACHE_HOME/optlab/jax-cache`` (``~/.cache/optlab/jax-cache`` when ``XDG_CACHE_HOME`` is unset),

and caches every program that took at least :data:`MIN_COMPILE_TIME_S` to compile (JAX's own default, 1 s, would
skip most of optlab's programs: the quick start's 1.3 s are about fifteen programs). Measured on the README quick start
(2 shared cores, load ≈ 9.6): compile time 1.5 s in a first process, 0.14 s in a second one that loads the cache.

The environment variable ``OPTLAB_COMPILATION_CACHE`` controls it: ``0`` (or ``false``/``no``/``off``) turns it
off, a folder path uses that folder, unset or ``1`` uses the default folder. A cache folder the user set for JAX
itself (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config.update("jax_compilation_cache_dir", ...)`` before
``import optlab``) is kept as it is. The cache is safe to delete at any time; JAX does not bound its size.
Entries are keyed by the program, the JAX/jaxlib version and the device, so upgrading JAX or changing devices
recompiles rather than loading a wrong program.
"""
from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["ENV_VAR", "MIN_COMPILE_TIME_S", "default_cache_dir", "enable_compilation_cache"]

ENV_VAR = "OPTLAB_COMPILATION_CACHE"
MIN_COMPILE_TIME_S = 0.05
_OFF = {"0", "false", "no", "off"}
_ON = {"", "1", "true", "yes", "on"}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/optlab/jax-cache``, or ``~/.cache/optlab/jax-cache`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "optlab" / "jax-cache"


def enable_compilation_cache(environ=None) -> Path | None:
    """Point JAX's persistent compilation cache at the optlab folder unless ``OPTLAB_COMPILATION_CACHE`` says no.

    Returns the cache folder in use, or ``None`` when the cache is off. Called once by ``import optlab``;
    calling it again is harmless. It must run before the first compilation of the process to take effect
    (JAX reads the setting once).
    """
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "").strip()
    if value.lower() in _OFF:
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:  # the user configured JAX's cache themselves: keep it
        return Path(current)
    path = default_cache_dir() if value.lower() in _ON else Path(value).expanduser()
    jax.config.update("jax_compilation_cache_dir", str(path))
    user_threshold = ("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" in env
                      or jax.config.jax_persistent_cache_min_compile_time_secs != 1.0)   # 1.0: JAX's default
    if not user_threshold:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    return path


CACHE_DIR = enable_compilation_cache()
