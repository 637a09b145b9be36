"""Keeping the process's memory to what it uses: the C allocator's side of a long read.

A full synchronization reads pages of up to 20,000 records one after another on several threads
(the slice being decided, two being written, one settled, the API clients' parallel requests).
Two glibc habits (glibc being the allocator of the Functions Linux workers) made the process
keep far more than it held: every thread that finds an arena busy gets one of its own (up to
eight per core), and memory freed in one arena serves only that arena; and what a page freed
stays with the allocator unless it is asked to give it back. ``limit_allocator_arenas`` caps the
arenas at two, once, before the worker threads start; ``release_freed_memory`` returns whole free
pages after each large page. Measured in ``docs/benchmarks.md``. On any other C library both do
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from typing import Any

__all__ = ["limit_allocator_arenas", "release_freed_memory"]

_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
_ARENAS = 2


@functools.cache
def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        library = ctypes.CDLL(name)
        # Both exist only in glibc: a C library without them is left to its own ways.
        return library if hasattr(library, "mallopt") and hasattr(library, "malloc_trim") else None
    except OSError:
        return None


@functools.cache
def limit_allocator_arenas() -> None:
    """Cap glibc's malloc arenas at two for the threads started from now on (once per process)."""
    library = _glibc()
    if library is not None:
        library.mallopt(_M_ARENA_MAX, _ARENAS)


def release_freed_memory() -> None:
    """Collect unreachable cycles, then let the allocator return its free pages (glibc only)."""
    gc.collect()
    library = _glibc()
    if library is not None:
        library.malloc_trim(0)
